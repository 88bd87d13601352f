"""`parquet`: an Apache Parquet table (read with pyarrow), with the csv source's column features: `target`
(one or more columns; text labels become classes), `features` (default: every other column), `exclude`,
`categorical` (one-hot, categories sorted) and `missing` (nulls, NaN and the csv missing markers in text
columns).

The table is turned into CSV text (pandas writes floats in their shortest exact form; booleans as 0/1, nulls
as empty cells) and read by the csv source's own code, so both sources encode, fill and diagnose columns alike
and `predict` reads new .parquet (or .csv) inputs by the column names a run was trained on. Row numbers in
messages count the table's rows from 1.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.data.csv_table import Table, read_text
from nnctl.data.sources.base import (
    DataInfo,
    DataSource,
    Raw,
    TargetFacts,
    data_source,
    existing_file,
    reject_unused,
    require,
)
from nnctl.data.sources.csv import inputs_of, read_examples, text_columns
from nnctl.errors import DataError

INSTALL = "reading parquet needs pyarrow: pip install 'nnctl[data]' (or pip install pyarrow)"


def _pq() -> Any:
    try:
        import pyarrow.parquet as pq  # lazy: an optional dependency, and slow to import
    except ImportError:
        raise DataError(INSTALL) from None
    return pq


def read_table(p: Path, columns: list[str] | None = None) -> Any:
    """The pyarrow Table of `p` (only `columns` when given)."""
    pq = _pq()
    try:
        return pq.read_table(p, columns=columns)
    except (OSError, ValueError) as e:  # ArrowInvalid and ArrowIOError derive from these
        raise DataError(f"{p}: not a readable parquet file ({e})") from None


def parquet_table(p: Path, data, as_text: tuple[str, ...], columns: list[str] | None = None) -> Table:
    """The parquet file `p` as the csv source's Table (what `csv_table.read_table` gives for a CSV file)."""
    frame = read_table(p, columns).to_pandas()
    if not len(frame):
        raise DataError(f"{p}: the table has no rows")
    for c in frame.columns:
        if frame[c].dtype == bool:
            frame[c] = frame[c].astype(np.int64)
    opts = data.model_copy(update={"delimiter": ",", "decimal": ".", "thousands": None, "encoding": None})
    t = read_text(p, frame.to_csv(index=False), opts, as_text)
    return replace(t, lines=t.lines - 1, text_lines=t.text_lines[1:])  # rows counted from the first data row


@data_source("parquet")
class ParquetSource(DataSource):
    order = 5
    suffixes = (".parquet", ".pq")

    def check(self, data) -> None:
        require(data, "path", "target")
        if data.delimiter is not None:
            raise ValueError("data.delimiter applies to csv sources only")
        reject_unused(data, "parquet", "x", "y", "test")

    def peek(self, data, base_dir: Path) -> DataInfo:
        raw = self.read(data, base_dir, 0)
        if raw.class_names is not None:
            return DataInfo((raw.layout.width,), len(raw.class_names))
        return DataInfo((raw.layout.width,), targets=TargetFacts.of(raw.y))

    def read(self, data, base_dir: Path, seed: int) -> Raw:
        p = existing_file(data, base_dir, "parquet")
        return read_examples(data, parquet_table(p, data, text_columns(data)))

    def read_inputs(self, p: Path, data, dataset) -> np.ndarray:
        """Columns by the names the run was trained on, categorical ones one-hot encoded the same way."""
        cats = tuple(dataset.layout.categories) if dataset.layout else ()
        return inputs_of(parquet_table(p, data, cats), data, dataset)
