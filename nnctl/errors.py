"""User-facing errors. The CLI turns every NnctlError into a message and exit code 2, never a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """' Did you mean 'x'?' for near misses, else ''."""
    word, options = str(word), [str(c) for c in choices]
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close and len(word) >= 3:  # 'slope' -> 'negative_slope'
        close = [c for c in options if word.lower() in c.lower() or (len(c) >= 3 and c.lower() in word.lower())][:1]
    return f" Did you mean '{close[0]}'?" if close else ""


def choices_text(choices: Iterable[str], limit: int = 40) -> str:
    items = sorted(str(c) for c in choices)
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


@dataclass(frozen=True)
class Problem:
    """One mistake in a spec: where it is, what is wrong, how to fix it."""

    path: str  # key path, e.g. "model.layers[2].units"
    message: str
    file: str = "<spec>"
    line: int | None = None  # 1-based
    col: int | None = None  # 1-based

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}:{self.col or 1}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class NnctlError(Exception):
    """Base of errors caused by the user's input (spec, data, run directory, flags)."""

    exit_code = 2


@dataclass
class SpecError(NnctlError):
    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the spec:\n" if n > 1 else ""
        return head + "\n".join(str(p) for p in self.problems)


class DataError(NnctlError):
    """Bad or missing data: names the file, the row/column or array, and the fix. `key`: the spec key path the
    problem is reported at when found while checking a spec (default: data.path)."""

    def __init__(self, message: str, key: tuple = ()) -> None:
        super().__init__(message)
        self.key = key


class RunDirError(NnctlError):
    """A run directory or checkpoint that is missing, corrupt or does not match the spec."""


class TrainingInterrupted(NnctlError):
    """Raised after a checkpoint was written on SIGINT/SIGTERM."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code
