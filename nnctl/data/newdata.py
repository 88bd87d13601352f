"""New labelled examples scored by a trained run (`nnctl eval RUN --data FILE`): read like its training data,
with its columns, categories, classes, imputer and scalers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnctl.data.prepare import Dataset, _clean, _reshape, _targets, check_finite
from nnctl.data.sources import Raw, read
from nnctl.data.sources.csv import read_labelled
from nnctl.errors import DataError


def prepare_new(spec, analysis, data: Dataset, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """New labelled examples (`nnctl eval --data`) read like the training data: the spec's source options,
    the run's columns, categories, classes, imputer and scalers; (x, y) in the model's form."""
    d = spec.data
    if not path.exists():
        raise DataError(f"no such data file: {path}")
    opts = d.model_copy(update={"path": str(path)})
    raw = read_labelled(opts, path, data.layout) if data.layout is not None else read(opts, path.parent, spec.seed)
    where = raw.origin or str(path)
    _clean(raw, d, where)
    if raw.x_test is not None:  # a file with its own fixed test split: every example is new
        assert raw.y_test is not None  # given together
        raw.x, raw.y = np.concatenate([raw.x, raw.x_test]), np.concatenate([raw.y, raw.y_test])
    y = _training_classes(raw, data, where)
    filled = data.imputer.apply(_reshape(raw.x, data.input_shape, f"{where} x"))
    assert filled is not None  # apply maps arrays to arrays
    x = data.scaler.apply(filled)
    check_finite(x, f"{where} x")
    (y, _, _), _ = _targets(
        data.task, (y, None, None), (x, None, None), analysis.output_shape, "none", data.target_scaler, where
    )
    return x, y


def _training_classes(raw: Raw, data: Dataset, where: str) -> np.ndarray:
    """Labels as the run's class indices, matched by name (text labels, or numbered classes such as 1..K)."""
    names = data.class_names
    if data.task != "classification" or not names or raw.y.ndim > 1 and raw.y.shape[1] > 1:
        return raw.y
    if raw.class_names is not None:
        labels = [raw.class_names[int(i)] for i in raw.y.reshape(-1)]
    else:
        labels = [str(int(v)) if float(v).is_integer() else str(v) for v in raw.y.reshape(-1)]
    index = {n: i for i, n in enumerate(names)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise DataError(f"{where}: labels {unknown[:5]} were not classes in training (classes: {', '.join(names)})")
    return np.array([index[v] for v in labels], np.int64)
