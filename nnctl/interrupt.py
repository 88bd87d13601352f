"""Ctrl-C / SIGTERM before training starts: noted by a flag, acted on at the next phase boundary.

(Before a command runs, nnctl.startup handles them.)

`nnctl train` installs `early()` as the very first thing it does, before JAX is imported. From then on a
SIGINT or SIGTERM never raises KeyboardInterrupt at an arbitrary point (inside an XLA callback it would be
swallowed, inside a C extension it can crash): it is recorded, and `check()` at each phase boundary of the
start-up (spec loaded, data read, model built, run directory created) raises TrainingInterrupted with exit
code 130 (SIGINT) or 143 (SIGTERM). Once the training session starts, its own handler takes over and
`pending()` hands it any signal that arrived in between.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from nnctl.errors import TrainingInterrupted
from nnctl.startup import release

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_pending: list[int] = []


def _note(signum: int, frame: Any) -> None:
    _pending.append(signum)


def exit_code(signum: int) -> int:
    return 130 if signum == signal.SIGINT else 143


@contextmanager
def early() -> Iterator[None]:
    """Signals are noted, not raised, inside this block (the previous handlers come back after it)."""
    _pending.clear()
    release()  # the process-start handler (nnctl.startup) would end the process at once
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
