"""Ctrl-C / SIGTERM before training starts: handled from the process's first instruction.

`at_start()` runs first thing in `nnctl` and `python -m nnctl` (nnctl/__main__.py, before the command line
is even imported): until a command's body runs, a SIGINT/SIGTERM ends the process at once with exit code
130/143 and `interrupted: SIGINT while nnctl was starting` (nothing has been written yet). `release()`,
called first thing by every command (`nnctl.cli.common.guard`, and `early()`), gives Python's
KeyboardInterrupt back.

`nnctl train` installs `early()` as the very first thing it does, before JAX is imported. From then on a
SIGINT or SIGTERM never raises KeyboardInterrupt at an arbitrary point (inside an XLA callback it would be
swallowed, inside a C extension it can crash): it is recorded, and `check()` at each phase boundary of the
start-up (spec loaded, data read, model built, run directory created) raises TrainingInterrupted with exit
code 130 (SIGINT) or 143 (SIGTERM). Once the training session starts, its own handler takes over and
`pending()` hands it any signal that arrived in between.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from nnctl.errors import TrainingInterrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_pending: list[int] = []


def _exit_now(signum: int, frame: Any) -> None:
    os.write(2, f"interrupted: {signal.Signals(signum).name} while nnctl was starting\n".encode())
    os._exit(exit_code(signum))


def at_start() -> None:
    for s in SIGNALS:
        signal.signal(s, _exit_now)


def release() -> None:
    """Python's own handling of SIGINT (KeyboardInterrupt) and SIGTERM again, if `at_start` had replaced it."""
    if signal.getsignal(signal.SIGINT) is _exit_now:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGTERM) is _exit_now:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _note(signum: int, frame: Any) -> None:
    _pending.append(signum)


def exit_code(signum: int) -> int:
    return 130 if signum == signal.SIGINT else 143


@contextmanager
def early() -> Iterator[None]:
    """Signals are noted, not raised, inside this block (the previous handlers come back after it)."""
    _pending.clear()
    release()  # the process-start handler (nnctl.entry) would end the process at once
    old = {s: signal.signal(s, _note) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        _pending.clear()


def pending() -> int | None:
    """The first signal noted since `early()` began, if any."""
    return _pending[0] if _pending else None


def check(state: str) -> None:
    """Raise TrainingInterrupted if a signal was noted; `state` says what is left on disk."""
    s = pending()
    if s is not None:
        raise TrainingInterrupted(f"{signal.Signals(s).name} before training started: {state}", exit_code(s))
