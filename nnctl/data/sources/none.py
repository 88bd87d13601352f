"""`none`: no examples. A spec without a `data:` section gets it, so `nnctl inspect` and `validate` work from
`model.input_shape` alone (the notes' parameter counts need no data); training needs a real source."""

from __future__ import annotations

from pathlib import Path

from nnctl.data.sources.base import DataInfo, DataSource, Raw, data_source
from nnctl.errors import DataError

NO_DATA = "this spec has no data: training and evaluation need a data section (inspect and validate do not)"


@data_source("none")
class NoSource(DataSource):
    order = 9

    def check(self, data) -> None:
        used = [k for k in ("x", "y", "path", "target", "features", "test") if getattr(data, k) is not None]
        if used or data.categorical or data.delimiter is not None:
            raise ValueError(f"source none reads no examples, but {', '.join(used) or 'csv options'} are set")

    def peek(self, data, base_dir: Path) -> DataInfo:
        return DataInfo(None)

    def read(self, data, base_dir: Path, seed: int) -> Raw:
        raise DataError(NO_DATA)
