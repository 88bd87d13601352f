"""The built-in dataset registry: one `Builtin` entry per name, added by `register_builtin`.

Kept apart from the datasets themselves so the modules that define them (builtin, builtin_seq, builtin_gen)
import this one and never each other in a cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Builtin:
    name: str
    x_shape: tuple
    num_classes: int | None  # None: regression
    load: Callable  # (seed, n_samples, noise) -> (x, y)
    doc: str


BUILTINS: dict[str, Builtin] = {}


def register_builtin(name, x_shape, num_classes, doc):
    """Register a generator `fn(seed, n_samples, noise) -> (x, y)`; x_shape excludes the batch axis;
    num_classes None means regression (or unlabeled)."""

    def deco(fn):
        BUILTINS[name] = Builtin(name, x_shape, num_classes, fn, doc)
        return fn

    return deco
