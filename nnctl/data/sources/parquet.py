"""`parquet`: an Apache Parquet table (read with pyarrow), with the csv source's column features: `target`
(one or more columns; text labels become classes), `features` (default: every other column), `categorical`
(one-hot, categories sorted) and `missing` (nulls, NaN and the csv missing markers in text columns).

The table is turned into the representation the csv source builds (a header and rows of cells) and goes
through the same layout code (`csv_layout`, `csv_features`), so both sources encode and fill columns alike and
`predict` reads new .parquet (or .csv) inputs by the column names a run was trained on. A table whose feature
and target columns are all numeric without nulls skips the cells and is read as arrays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nnctl.data.sources.base import DataInfo, DataSource, Raw, data_source, existing_file, reject_unused, require
from nnctl.data.sources.csv import CsvLayout, csv_features, csv_layout, csv_targets, is_missing
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


def header_of(p: Path) -> list[str]:
    try:
        return list(_pq().read_schema(p).names)
    except (OSError, ValueError) as e:
        raise DataError(f"{p}: not a readable parquet file ({e})") from None


def _cell(v: Any) -> str:
    """A table value as the csv source's cell text: null -> '' (missing), bools -> 0/1, numbers exactly."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, float):
        return repr(v)  # round-trips exactly through float()
    return str(v)


def table_rows(table: Any, header: list[str]) -> list[tuple[int, list[str]]]:
    """(row number from 1, cells) of every row: what the csv source reads from a file."""
    columns = [[_cell(v) for v in table.column(c).to_pylist()] for c in header]
    return [(i + 1, [col[i] for col in columns]) for i in range(table.num_rows)]


def _numeric(table: Any, names: list[str]) -> np.ndarray | None:
    """The columns as float64 when all are numeric (or bool) without nulls or non-finite values, else None."""
    import pyarrow.types as pt  # lazy: see _pq

    cols = []
    for c in names:
        col = table.column(c)
        if col.null_count or not (pt.is_integer(col.type) or pt.is_floating(col.type) or pt.is_boolean(col.type)):
            return None
        cols.append(col.to_numpy().astype(np.float64))
    a = np.stack(cols, 1) if cols else np.empty((table.num_rows, 0))
    return a if len(a) and np.isfinite(a).all() else None


def _targets(p: Path, data, raw_y: list[list[str]]) -> tuple[np.ndarray, list[str] | None]:
    """Numeric targets, or one text target's values as class indices (classes sorted)."""
    try:
        y = np.array([[float(v) for v in row] for row in raw_y], np.float64)
        return (y[:, 0] if y.shape[1] == 1 else y), None
    except ValueError:
        if len(raw_y[0]) != 1:
            raise DataError(
                f"{p}: target columns {csv_targets(data)} must be numeric (text labels need a single target)"
            ) from None
    names = sorted({row[0] for row in raw_y})
    index = {c: i for i, c in enumerate(names)}
    return np.array([index[row[0]] for row in raw_y], np.int64), names


def read_parquet(data, p: Path) -> Raw:
    header = header_of(p)
    targets = csv_targets(data)
    layout = None if data.categorical else csv_layout(data, p, header, None)  # checks the column names
    table = read_table(p)
    if layout is not None:
        a = _numeric(table, [*layout.features, *targets])
        if a is not None:
            y = a[:, len(layout.features) :]
            return Raw(
                a[:, : len(layout.features)].astype(np.float32),
                y[:, 0] if y.shape[1] == 1 else y,
                origin=str(p),
                layout=layout,
            )
    rows = table_rows(table, header)
    layout = layout or csv_layout(data, p, header, rows)
    if not rows:
        raise DataError(f"{p}: the table has no rows")
    ti = [header.index(c) for c in targets]
    kept = []
    for line, r in rows:
        gone = [header[k] for k in ti if is_missing(r[k])]
        if gone and data.missing == "error":
            raise DataError(
                f"{p}: row {line}, column '{gone[0]}': the target is missing (set data.missing: drop or mean to "
                "drop such rows)"
            )
        if not gone:
            kept.append((line, r))
    if not kept:
        raise DataError(f"{p}: every row's target is missing")
    x = csv_features(p, header, kept, layout, data.missing)
    y, class_names = _targets(p, data, [[r[k].strip() for k in ti] for _, r in kept])
    return Raw(x, y, class_names=class_names, origin=str(p), layout=layout, dropped=len(rows) - len(kept))


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
        p = existing_file(data, base_dir, "parquet")
        header = header_of(p)
        rows = table_rows(read_table(p, list(data.categorical)), list(data.categorical)) if data.categorical else None
        if rows is not None:  # only the categorical columns were read: give csv_layout full-width rows
            k = {c: i for i, c in enumerate(data.categorical)}
            rows = [(line, [r[k[c]] if c in k else "" for c in header]) for line, r in rows]
        return DataInfo((csv_layout(data, p, header, rows).width,))

    def read(self, data, base_dir: Path, seed: int) -> Raw:
        return read_parquet(data, existing_file(data, base_dir))

    def read_inputs(self, p: Path, data, dataset) -> np.ndarray:
        """Columns by the names the run was trained on, categorical ones one-hot encoded the same way."""
        header = header_of(p)
        layout = dataset.layout or CsvLayout(tuple(header), {})
        absent = [c for c in layout.features if c not in header]
        if absent:
            raise DataError(
                f"{p}: missing feature columns {absent} (the run was trained on {', '.join(layout.features)})"
            )
        table = read_table(p, list(layout.features))
        a = None if layout.categories else _numeric(table, list(layout.features))
        if a is not None:
            return a.astype(np.float32)
        rows = table_rows(table, list(layout.features))
        if not rows:
            raise DataError(f"{p}: the table has no rows")
        missing = "mean" if dataset.imputer.fill is not None else "error"
        return csv_features(
            p,
            list(layout.features),
            rows,
            layout,
            missing,
            "predictions need every value; a run trained with data.missing: mean fills missing ones and unknown "
            "categories",
        )
