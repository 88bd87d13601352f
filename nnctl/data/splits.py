"""Which examples go to the test, validation and training splits: random, stratified (class proportions
kept), sequential (time order: the last rows are tested), and by group (every example of a group on one side).
Seeded: the same spec and data give the same split every time."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nnctl.data.sources import Raw
from nnctl.errors import DataError


def stratified_order(rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
    """A random order in which every prefix holds the classes in (nearly) their overall proportions."""
    keys = y.reshape(len(y), -1)
    labels = np.unique(keys, axis=0, return_inverse=True)[1].reshape(-1)
    rank = np.empty(len(y))
    for c in np.unique(labels):
        idx = rng.permutation(np.nonzero(labels == c)[0])
        rank[idx] = (np.arange(len(idx)) + rng.random()) / len(idx)
    return np.lexsort((rng.random(len(y)), rank))


def partition(spec, raw: Raw, task: str, labels: Callable[[], np.ndarray], where: str, own_test: bool) -> tuple:
    """(test, validation, train) example indices, seeded; `labels()`: the class labels, for stratifying."""
    d = spec.data
    rng = np.random.default_rng(spec.seed)
    n = len(raw.x)
    classes = task in ("classification", "binary")
    mode = d.split or ("stratified" if d.shuffle and d.stratify and classes and raw.groups is None else "random")
    if mode == "stratified" and not classes:
        raise DataError(f"{where}: data.split: stratified needs class labels (the task is {task}): use random")
    test_share = d.test_split if own_test else 0.0
    if raw.groups is not None:
        return _group_partition(raw.groups, rng, mode, test_share, d.validation_split, where)
    if mode == "sequential":
        order = np.arange(n)[::-1]
    elif mode == "stratified":
        order = stratified_order(rng, labels())
    else:
        order = rng.permutation(n) if d.shuffle or d.split == "random" else np.arange(n)
    n_test = int(round(n * test_share))
    test, rest = order[:n_test], order[n_test:]
    n_val = int(round(len(rest) * d.validation_split))
    parts = (test, rest[:n_val], rest[n_val:])
    return tuple(np.sort(p) for p in parts) if mode == "sequential" else parts


def _group_partition(groups: np.ndarray, rng, mode: str, test_share: float, val_share: float, where: str) -> tuple:
    """Whole groups to the test split until it holds its share of the examples, then to validation; the
    groups in random order, or in order of appearance from the end (sequential)."""
    names, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    if mode == "stratified":
        raise DataError(f"{where}: data.group_by splits whole groups: use data.split random or sequential")
    by_appearance = np.argsort(first)
    order = by_appearance[::-1] if mode == "sequential" else rng.permutation(len(names))
    sizes = np.bincount(inverse, minlength=len(names))
    n = len(groups)
    side = np.full(len(names), 2)  # 0 test, 1 validation, 2 train
    want_test = int(round(n * test_share))
    want_val = int(round((n - want_test) * val_share))
    have = [0, 0]
    for g in order:
        for s, want in ((0, want_test), (1, want_val)):
            if have[s] < want:
                side[g], have[s] = s, have[s] + sizes[g]
                break
    if len(names) < 2 and (want_test or want_val):
        raise DataError(f"{where}: data.group_by found only {len(names)} group: nothing to split by")
    row_side = side[inverse]
    return tuple(np.nonzero(row_side == s)[0] for s in (0, 1, 2))
