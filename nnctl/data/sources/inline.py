"""`inline`: feature rows and targets written in the spec itself (`data.x`, `data.y`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnctl.data.sources.base import DataInfo, DataSource, Raw, TargetFacts, data_source, reject_csv_options, require
from nnctl.errors import DataError


@data_source("inline")
class InlineSource(DataSource):
    order = 1

    def check(self, data) -> None:
        require(data, "x", "y")
        if not (isinstance(data.x, list) and isinstance(data.y, list)):
            raise ValueError("inline data needs x and y as lists")
        reject_csv_options(data)

    def peek(self, data, base_dir: Path) -> DataInfo:
        x = _numbers(data.x, np.float32, "inline x: rows must be numbers, all of the same length")
        if x.ndim < 1 or len(x) == 0:
            raise DataError("inline x is empty")
        try:
            facts = TargetFacts.of(np.asarray(data.y, dtype=np.float64))
        except (ValueError, TypeError, OverflowError):
            facts = None  # reported when read
        return DataInfo(tuple(x.shape[1:]) if x.ndim > 1 else (1,), targets=facts)

    def read(self, data, base_dir: Path, seed: int) -> Raw:
        what = "inline data: x and y must be numbers in rows of equal length"
        x, y = _numbers(data.x, np.float32, what), _numbers(data.y, np.float64, what)
        if x.ndim == 1:
            x = x[:, None]
        return Raw(x, y, origin="inline")


def _numbers(values: list, dtype: type, what: str) -> np.ndarray:
    """`values` as an array of `dtype`; a DataError saying `what` when they are not numbers in equal rows, and
    naming the first value too large for `dtype` (it would be inf, or not convert at all)."""
    a: np.ndarray | None
    try:
        with np.errstate(over="ignore"):
            a = np.asarray(values, dtype=dtype)
    except (ValueError, TypeError):
        raise DataError(what) from None
    except OverflowError:
        a = None
    if a is None or not np.isfinite(a[~np.isnan(a)]).all():
        big = next((v for v in np.asarray(values, dtype=object).ravel() if _too_big(v, dtype)), "a value")
        raise DataError(
            f"inline data: {str(big)[:40]} is too large for {np.dtype(dtype).name} (at most {np.finfo(dtype).max:.3g})"
        )
    return a


def _too_big(v: object, dtype: type) -> bool:
    try:
        return v is not None and abs(float(v)) > float(np.finfo(dtype).max)  # type: ignore[arg-type]
    except (OverflowError, TypeError, ValueError):
        return True
