"""From raw arrays to train/val/test splits the model can consume: checks, task, splits, scaling.

Splits are drawn from one permutation seeded by `seed` (the same examples every time); normalisation
statistics are fitted on the training split only and saved in the run directory.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nnctl.data.scaling import Imputer, Scaler
from nnctl.data.shards import Rows
from nnctl.data.sources import Raw, read
from nnctl.data.sources.csv import CsvLayout
from nnctl.data.splits import partition
from nnctl.errors import DataError


def kept_rows(x: np.ndarray, y: np.ndarray, features: bool) -> np.ndarray:
    """Which examples have a target (`data.missing: mean`) and, with `features`, every feature too (drop)."""
    keep = np.ones(len(x), bool)
    if features and x.dtype.kind == "f":
        keep &= ~np.isnan(x.reshape(len(x), -1)).any(1)
    if y.dtype.kind == "f":
        keep &= ~np.isnan(y.reshape(len(y), -1)).any(1)
    return keep


def drop_missing(x: np.ndarray, y: np.ndarray, features: bool) -> tuple[np.ndarray, np.ndarray]:
    """The examples `kept_rows` keeps."""
    keep = kept_rows(x, y, features)
    return x[keep], y[keep]


@dataclass
class Dataset:
    task: str
    input_shape: tuple
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    num_classes: int | None
    scaler: Scaler
    target_scaler: Scaler
    class_names: list[str] | None = None
    origin: str = ""
    sizes: dict = field(default_factory=dict)
    imputer: Imputer = field(default_factory=lambda: Imputer(None))
    layout: CsvLayout | None = None  # csv: feature columns and categories (one-hot order), for predict
    fingerprint: dict = field(default_factory=dict)  # {sha256, rows} of the examples as read (before splitting)
    indices: dict = field(default_factory=dict)  # split -> example indices (after dropping missing rows)
    test_raw: tuple | None = None  # the test split before imputing and scaling: (x, y), saved with a run

    def split(self, name: str) -> tuple[np.ndarray | None, np.ndarray | None]:
        return {
            "train": (self.x_train, self.y_train),
            "val": (self.x_val, self.y_val),
            "test": (self.x_test, self.y_test),
        }[name]


def check_finite(a: np.ndarray, what: str, allow_nan: bool = False) -> None:
    if a.dtype.kind != "f" or isinstance(a, Rows):  # rows on disk were checked finite when converted
        return
    bad = np.isinf(a) if allow_nan else ~np.isfinite(a)
    if bad.any():
        idx = np.argwhere(bad)[0]
        row = int(idx[0])
        col = f", column {int(idx[1])}" if len(idx) > 1 else ""
        v = a[tuple(idx)]
        fix = "remove the row or set data.missing: drop or mean" if v != v else "remove or replace infinite values"
        raise DataError(f"{what}: non-finite value {v} at row {row}{col} ({fix})")


def per_step_labels(y: np.ndarray, out_shape: tuple | None) -> bool:
    """Integer labels (N, T) for an output (T, classes): one class per time step (sequence tagging)."""
    return (
        out_shape is not None
        and len(out_shape) == 2
        and out_shape[-1] > 1
        and y.ndim == 2
        and y.shape[1] == out_shape[0]
        and y.shape[1] > 1
    )


def infer_task(y: np.ndarray, out_units: int, out_shape: tuple | None = None) -> str:
    integral = y.dtype.kind in "biu" or (y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0))
    if integral and per_step_labels(y, out_shape):
        return "classification"
    if integral and (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)):
        if out_units == 1:
            return "binary" if np.all((y == 0) | (y == 1)) else "regression"
        return "classification"
    if y.ndim == 2 and y.shape[1] == out_units > 1 and np.all((y == 0) | (y == 1)) and np.all(y.sum(1) == 1):
        return "classification"  # one-hot rows
    return "regression"


def targets_for(task: str, y: np.ndarray, out_shape: tuple, what: str) -> np.ndarray:
    """Targets in the form losses expect: class indices (N,), 0/1 floats (N, k) or values (N, *out)."""
    units = out_shape[-1] if out_shape else 1
    if task == "classification":
        if per_step_labels(y, out_shape):
            pass  # (N, T): one class per time step
        elif y.ndim == 2 and y.shape[1] > 1:
            y = np.argmax(y, 1).reshape(len(y))
        else:
            y = y.reshape(len(y))
        if y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0):
            raise DataError(f"{what}: classification labels must be whole numbers, got {y[np.mod(y, 1) != 0][0]}")
        y = y.astype(np.int64)
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= units:
            raise DataError(
                f"{what}: labels range {lo}..{hi} but the output layer has {units} units "
                f"(labels must be 0..{units - 1}): set the last layer's units to {hi + 1}" + _distinct_hint(y, units)
            )
        return y.astype(np.int32)
    if task == "binary":
        y = y.astype(np.float32).reshape(len(y), -1)
        if not np.all((y == 0) | (y == 1)):
            raise DataError(f"{what}: binary labels must be 0 or 1, found {np.unique(y)[:5].tolist()}")
        if y.shape[1] != units:
            raise DataError(f"{what}: {y.shape[1]} label(s) per example but the output layer has {units} units")
        return y
    y = y.astype(np.float32)
    per = math.prod(y.shape[1:]) if y.ndim > 1 else 1
    if per != math.prod(out_shape):
        raise DataError(
            f"{what}: targets have {per} value(s) per example but the model outputs "
            f"{list(out_shape)}: change the last layer"
        )
    return y.reshape((len(y), *out_shape))


def _number_classes(raw: Raw, units: int, forced: bool) -> None:
    """Whole-number labels outside 0..units-1 that name `units` classes (1..K; with data.task: classification
    any K <= units numbers) become class indices in sorted order, named by their values like text labels."""
    ys = [y for y in (raw.y, raw.y_test) if y is not None]
    if any(y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1) or y.dtype.kind not in "biuf" for y in ys):
        return
    flat = np.concatenate([y.reshape(len(y)) for y in ys])
    if not len(flat) or not np.all(np.mod(flat, 1) == 0) or (flat.min() >= 0 and flat.max() < units):
        return
    values = np.unique(flat)
    if len(values) > units or (len(values) != units and not forced):
        return
    raw.class_names = [str(int(v)) for v in values]
    raw.y = np.searchsorted(values, raw.y.reshape(len(raw.y))).astype(np.int64)
    if raw.y_test is not None:
        raw.y_test = np.searchsorted(values, raw.y_test.reshape(len(raw.y_test))).astype(np.int64)


def _distinct_hint(y: np.ndarray, units: int) -> str:
    k = len(np.unique(y))
    if k == units:
        return ""
    return f", or to {k} for the {k} distinct labels" + (
        " (or set data.task: classification to number them as classes)" if k < units else ""
    )


def _reshape(x: np.ndarray, shape: tuple, what: str) -> np.ndarray:
    if x.ndim == 1:
        x = x[:, None]
    if tuple(x.shape[1:]) == tuple(shape):
        return x
    if math.prod(x.shape[1:]) != math.prod(shape):
        raise DataError(f"{what}: examples have shape {list(x.shape[1:])} but the model expects {list(shape)}")
    if isinstance(x, Rows):
        return x.reshaped(tuple(shape))  # stays lazy
    return x.reshape((len(x), *shape))


def prepare(
    spec,
    analysis,
    base_dir: Path,
    scaler: Scaler | None = None,
    target_scaler: Scaler | None = None,
    imputer: Imputer | None = None,
) -> Dataset:
    """Load, check, split, impute and scale the data of a spec (scalers/imputer given: reuse a run's saved
    ones)."""
    d = spec.data
    raw: Raw = read(d, base_dir, spec.seed)
    where = raw.origin or d.source
    fingerprint = raw.fingerprint or fingerprint_of(raw)
    dropped = _clean(raw, d, where)
    shape = analysis.input_shape
    x = _reshape(raw.x, shape, f"{where} x")
    out_shape = analysis.output_shape
    task = analysis.task or raw.task or infer_task(raw.y, out_shape[-1], tuple(out_shape))

    if task == "classification" and raw.class_names is None:
        _number_classes(raw, out_shape[-1], d.task == "classification")
    x_train, y_train, x_val, y_val, x_test, y_test, indices = _split(spec, raw, x, task, out_shape, where)
    test_raw = None if x_test is None else (x_test, y_test)
    imputer = imputer or Imputer.fit(d.missing, x_train)
    filled = (
        sum(int(np.isnan(a).sum()) for a in (x_train, x_val, x_test) if a is not None and a.dtype.kind == "f")
        if imputer.fill is not None
        else 0
    )
    x_train, x_val, x_test = (imputer.apply(a) for a in (x_train, x_val, x_test))
    assert x_train is not None  # the training split is an array, and apply maps arrays to arrays
    (x_train, x_val, x_test), scaler = _scaled(d.normalize, scaler, (x_train, x_val, x_test))
    assert x_train is not None  # as above

    (y_train, y_val, y_test), target_scaler = _targets(
        task, (y_train, y_val, y_test), (x_train, x_val, x_test), out_shape, d.normalize_target, target_scaler, where
    )
    num_classes = out_shape[-1] if task == "classification" else (2 if task == "binary" else None)
    sizes = {
        "train": len(x_train),
        "val": 0 if x_val is None else len(x_val),
        "test": 0 if x_test is None else len(x_test),
    }
    if dropped or filled:
        sizes.update(dropped=dropped, filled=filled)  # examples dropped / values filled for missing values
    return Dataset(
        task,
        tuple(shape),
        x_train,
        y_train,
        x_val,
        y_val,
        x_test,
        y_test,
        num_classes,
        scaler,
        target_scaler,
        raw.class_names,
        where,
        sizes,
        imputer,
        raw.layout,
        fingerprint,
        indices,
        test_raw,
    )


def _scaled(kind: str, scaler: Scaler | None, xs: tuple) -> tuple[tuple, Scaler]:
    """The splits scaled by `scaler`, fitted on the training split when None. Rows on disk (Rows): the
    statistics in one pass over blocks, and the scaling applied to each block as it is read."""
    if not isinstance(xs[0], Rows):
        scaler = scaler or Scaler.fit(kind, xs[0])
        return tuple(None if a is None else scaler.apply(a) for a in xs), scaler
    if scaler is None:
        sample = xs[0][: None if kind != "none" else 1]  # "none" needs only the feature count
        scaler = Scaler.fit_blocks(kind, sample.chunks())
    affine = (scaler.shift, scaler.scale)
    return tuple(a if a is None or scaler.kind == "none" else a.scaled(*affine) for a in xs), scaler


def fingerprint_of(raw: Raw) -> dict:
    """{sha256, rows}: a hash of the examples as read (shapes, dtypes and bytes of x, y and any fixed test
    split) and their count; the same data gives the same fingerprint wherever its file lies."""
    h = hashlib.sha256()
    for a in (raw.x, raw.y, raw.x_test, raw.y_test):
        if a is not None:
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
    h.update(repr(raw.class_names).encode())
    return {"sha256": h.hexdigest(), "rows": int(len(raw.x) + (0 if raw.x_test is None else len(raw.x_test)))}


def _clean(raw: Raw, d, where: str) -> int:
    """Check the raw arrays, drop examples with missing values (data.missing); the number dropped."""
    if len(raw.x) != len(raw.y):
        raise DataError(f"{where}: x has {len(raw.x)} examples but y has {len(raw.y)}")
    if raw.x_test is not None:
        assert raw.y_test is not None  # sources give the test x and y together (npz's data.test) or neither
        if len(raw.x_test) != len(raw.y_test):
            raise DataError(f"{where}: test x has {len(raw.x_test)} examples but test y has {len(raw.y_test)}")
    n_before = len(raw.x) + (0 if raw.x_test is None else len(raw.x_test))
    if d.missing != "error":  # drop: examples with any missing value; mean: those without a target
        n0 = len(raw.x)
        if raw.groups is not None:
            raw.groups = raw.groups[kept_rows(raw.x, raw.y, features=d.missing == "drop")]
        raw.x, raw.y = drop_missing(raw.x, raw.y, features=d.missing == "drop")
        if len(raw.x) == 0 and n0:
            raise DataError(f"{where}: every example has a missing value (data.missing: {d.missing})")
        if raw.x_test is not None:
            assert raw.y_test is not None  # as above
            raw.x_test, raw.y_test = drop_missing(raw.x_test, raw.y_test, features=d.missing == "drop")
    if len(raw.x) == 0:
        raise DataError(f"{where}: no examples")
    dropped = raw.dropped + n_before - len(raw.x) - (0 if raw.x_test is None else len(raw.x_test))
    check_finite(raw.x, f"{where} x", allow_nan=d.missing == "mean")
    check_finite(np.asarray(raw.y, np.float64) if raw.y.dtype.kind in "biuf" else raw.y, f"{where} y")
    if raw.x_test is not None:
        check_finite(raw.x_test, f"{where} test x", allow_nan=d.missing == "mean")
    return dropped


def _split(spec, raw: Raw, x: np.ndarray, task: str, out_shape: tuple, where: str) -> tuple:
    """(x_train, y_train, x_val, y_val, x_test, y_test, indices) by data.split (random, stratified for
    classification, or sequential: the last rows are the test split, the ones before them validation) and
    data.group_by (every example of a group on one side)."""
    labels = lambda: targets_for(task, raw.y, out_shape, f"{where} y")
    test_idx, val_idx, train_idx = partition(spec, raw, task, labels, where, raw.x_test is None)
    x_test = y_test = None
    if raw.x_test is not None:
        x_test, y_test = _reshape(raw.x_test, x.shape[1:], f"{where} test x"), raw.y_test
    elif len(test_idx):
        x_test, y_test = x[test_idx], raw.y[test_idx]
    if len(train_idx) == 0:
        raise DataError(f"{where}: no training examples left after the validation/test splits ({len(x)} in all)")
    x_val, y_val = (x[val_idx], raw.y[val_idx]) if len(val_idx) else (None, None)
    indices = {"train": train_idx, "val": val_idx} | ({} if raw.x_test is not None else {"test": test_idx})
    return x[train_idx], raw.y[train_idx], x_val, y_val, x_test, y_test, indices


def _targets(
    task: str, ys: tuple, xs: tuple, out_shape: tuple, normalize: str, target_scaler: Scaler | None, where: str
) -> tuple[tuple, Scaler]:
    """The (train, val, test) targets in the model's form, and the target scaler (regression: fitted on the
    training targets unless given)."""
    if task == "autoencoder":
        return xs, Scaler.fit("none", np.asarray(xs[0][:1]))
    names = ("y", "y (validation)", "y (test)")
    ys = tuple(None if y is None else targets_for(task, y, out_shape, f"{where} {n}") for y, n in zip(ys, names))
    if task == "regression" and target_scaler is None:
        target_scaler = Scaler.fit(normalize, ys[0])
    target_scaler = target_scaler or Scaler.fit("none", ys[0][:1].astype(np.float32))
    if task == "regression":
        ys = tuple(None if a is None else target_scaler.apply(a) for a in ys)
    return ys, target_scaler
