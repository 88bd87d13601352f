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
        try:
            x = np.asarray(data.x, dtype=np.float32)
        except (ValueError, TypeError):
            raise DataError("inline x: rows must be numbers, all of the same length") from None
        if x.ndim < 1 or len(x) == 0:
            raise DataError("inline x is empty")
        try:
            facts = TargetFacts.of(np.asarray(data.y, dtype=np.float64))
        except (ValueError, TypeError):
            facts = None  # reported when read
        return DataInfo(tuple(x.shape[1:]) if x.ndim > 1 else (1,), targets=facts)

    def read(self, data, base_dir: Path, seed: int) -> Raw:
        try:
            x = np.asarray(data.x, dtype=np.float32)
            y = np.asarray(data.y, dtype=np.float64)
        except (ValueError, TypeError):
            raise DataError("inline data: x and y must be numbers in rows of equal length") from None
        if x.ndim == 1:
            x = x[:, None]
        return Raw(x, y, origin="inline")
