"""Signals from the first instruction of `nnctl` (imported by nnctl/__main__.py before anything else; only
the standard library's os and signal, so there is almost no window before it).

Until a command's body runs, a SIGINT/SIGTERM ends the process at once with exit code 130/143 and
`interrupted: SIGINT while nnctl was starting` (nothing has been written yet). `release()`, called first thing
by every command (`nnctl.cli.common.guard`, and `nnctl.interrupt.early`), gives Python's KeyboardInterrupt
back.
"""

import os
import signal


def _exit_now(signum, frame):
    name = "SIGINT" if signum == signal.SIGINT else "SIGTERM"
    os.write(2, f"interrupted: {name} while nnctl was starting\n".encode())
    os._exit(130 if signum == signal.SIGINT else 143)


def at_start() -> None:
    signal.signal(signal.SIGINT, _exit_now)
    signal.signal(signal.SIGTERM, _exit_now)


def release() -> None:
    """Python's own handling of SIGINT (KeyboardInterrupt) and SIGTERM again, if `at_start` had replaced it."""
    if signal.getsignal(signal.SIGINT) is _exit_now:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGTERM) is _exit_now:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
