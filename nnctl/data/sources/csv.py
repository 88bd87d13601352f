"""`csv`: a delimited text file with a header row; the target and feature columns are named in the spec.

Everything CSV lives here: delimiter detection, the fast all-numbers parser and the row-by-row reader that
names the row and column of a problem, the feature layout (one-hot categorical columns), and the reading of
new inputs for `predict` by the column names a run was trained on.
"""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnctl.data.sources.base import DataInfo, DataSource, Raw, data_source, existing_file, require
from nnctl.errors import DataError, did_you_mean

MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})  # compared stripped and lower-cased
DELIMITERS = (",", ";", "\t", "|")


def is_missing(cell: str) -> bool:
    """Whether a cell is one of the MISSING markers."""
    return cell.strip().lower() in MISSING


def csv_delimiter(p: Path, given: str | None = None) -> str:
    """`given`, else the candidate that occurs most often in the header row (comma when none does)."""
    if given:
        return given
    try:
        with open(p, newline="", encoding="utf-8") as f:
            first = f.readline()
    except UnicodeDecodeError as e:
        raise _not_utf8(p, e) from None
    counts = {d: first.count(d) for d in DELIMITERS}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] else ","


def csv_header(p: Path, delimiter: str | None = None) -> list[str]:
    """The header row's column names, stripped."""
    with open(p, newline="", encoding="utf-8") as f:
        try:
            header = next(csv.reader(f, delimiter=csv_delimiter(p, delimiter)))
        except StopIteration:
            raise DataError(f"{p}: the file is empty (expected a header row)") from None
        except UnicodeDecodeError as e:
            raise _not_utf8(p, e) from None
    return [h.strip() for h in header]


def _not_utf8(p: Path, e: UnicodeDecodeError) -> DataError:
    return DataError(
        f"{p}: not UTF-8 text (byte {e.object[e.start : e.start + 1]!r} at offset {e.start}): save the CSV as UTF-8"
    )


def csv_numeric(p: Path, delimiter: str, usecols: list[int] | None = None) -> np.ndarray | None:
    """The data rows as float64 through numpy's C parser (a 60,000 x 785 file: ~8 s and one array, against
    ~1 min and ~3.5 GB for Python's csv module), or None when any cell is not a plain finite number, rows are
    ragged or there are none: the row-by-row reader then handles missing values and names the problem."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = np.loadtxt(
                p,
                delimiter=delimiter,
                skiprows=1,
                dtype=np.float64,
                usecols=usecols,
                ndmin=2,
                encoding="utf-8",
                quotechar='"',
                comments=None,
            )
    except (ValueError, UnicodeDecodeError, IndexError, TypeError):
        return None
    return a if len(a) and np.isfinite(a).all() else None


def csv_rows(p: Path, header: list[str], delimiter: str) -> list[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank data row; a row with the wrong number of fields is an error."""
    rows = []
    with open(p, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter=delimiter)
        next(reader, None)
        try:
            for r in reader:
                if not r or all(not c.strip() for c in r):
                    continue
                if len(r) != len(header):
                    raise DataError(
                        f"{p}: row {reader.line_num} has {len(r)} fields, the header has {len(header)}"
                        + ("" if delimiter != "," else " (a different separator? set data.delimiter)")
                    )
                rows.append((reader.line_num, r))
        except UnicodeDecodeError as e:
            raise _not_utf8(p, e) from None
        except csv.Error as e:
            raise DataError(f"{p}: row {reader.line_num}: {e}") from None
    return rows


@dataclass(frozen=True)
class CsvLayout:
    """Which columns feed the model, in order: a numeric column is one input, a categorical one is one
    input per category (one-hot, categories sorted)."""

    features: tuple[str, ...]
    categories: dict  # categorical column -> its categories, in input order

    def to_dict(self) -> dict:
        return {"features": list(self.features), "categories": self.categories}

    @property
    def width(self) -> int:
        return sum(len(self.categories[c]) if c in self.categories else 1 for c in self.features)


def csv_targets(data) -> list[str]:
    """The target column names (`data.target` is one name or a list)."""
    return [data.target] if isinstance(data.target, str) else list(data.target or [])


def csv_layout(data, p: Path, header: list[str], rows: list | None) -> CsvLayout:
    """The feature columns of a csv source; categories are read from `rows` (None: none declared)."""
    targets = csv_targets(data)
    for t in targets:
        if t not in header:
            raise DataError(
                f"{p}: no column '{t}'.{did_you_mean(t, header)} Columns: {', '.join(header)}", ("data", "target")
            )
    feats = data.features if data.features is not None else [c for c in header if c not in targets]
    for c in feats:
        if c not in header:
            raise DataError(
                f"{p}: no feature column '{c}'.{did_you_mean(c, header)} Columns: {', '.join(header)}",
                ("data", "features", feats.index(c)),
            )
    if not feats:
        raise DataError(f"{p}: no feature columns left besides the target")
    cats = {}
    for c in data.categorical:
        if c not in feats:
            where = "a target" if c in targets else ("not a feature" if c in header else "not a column")
            raise DataError(
                f"{p}: '{c}' is {where}.{did_you_mean(c, feats)} Feature columns: {', '.join(feats)}",
                ("data", "categorical", data.categorical.index(c)),
            )
        k = header.index(c)
        values = sorted({r[k].strip() for _, r in rows or [] if not is_missing(r[k])})
        if not values:
            raise DataError(
                f"{p}: categorical column '{c}' has no values", ("data", "categorical", data.categorical.index(c))
            )
        cats[c] = values
    return CsvLayout(tuple(feats), cats)


def csv_features(
    p: Path, header: list[str], rows: list, layout: CsvLayout, missing: str, fix: str = "set data.missing: drop or mean"
) -> np.ndarray:
    """(rows, layout.width) float32; a missing value (or an unknown category) is NaN, or an error (ending in
    `fix`) when `missing` is "error"."""
    x = np.empty((len(rows), layout.width), np.float32)
    col = 0
    for c in layout.features:
        k = header.index(c)
        cats = layout.categories.get(c)
        if cats is None:
            for i, (line, r) in enumerate(rows):
                cell = r[k]
                try:
                    v = float(cell)
                except ValueError:
                    if not is_missing(cell):
                        raise DataError(
                            f"{p}: row {line}, column '{c}': {cell!r} is not a number (text "
                            f"categories: list the column in data.categorical)"
                        ) from None
                    v = math.nan
                if v != v and missing == "error":
                    raise DataError(f"{p}: row {line}, column '{c}': missing value {cell!r} ({fix})")
                x[i, col] = v
            col += 1
        else:
            index = {v: j for j, v in enumerate(cats)}
            block = x[:, col : col + len(cats)]
            block[:] = 0.0
            for i, (line, r) in enumerate(rows):
                v = r[k].strip()
                j = index.get(v)
                if j is not None:
                    block[i, j] = 1.0
                    continue
                if missing == "error":
                    what = (
                        f"missing value {v!r}"
                        if is_missing(v)
                        else (
                            f"unknown category {v!r} (known: {', '.join(cats[:10])}{', ...' if len(cats) > 10 else ''})"
                        )
                    )
                    raise DataError(f"{p}: row {line}, column '{c}': {what} ({fix})")
                block[i] = math.nan
            col += len(cats)
    return x


def _read_csv(data, p: Path) -> Raw:
    """Every example of the csv file `p`: the fast all-numbers path, else row by row."""
    delimiter = csv_delimiter(p, data.delimiter)
    header = csv_header(p, delimiter)
    layout = None if data.categorical else csv_layout(data, p, header, None)  # checks the column names
    ti = [header.index(c) for c in csv_targets(data)]
    if layout is not None:  # no categories: try the fast path (all numbers, nothing missing)
        a = csv_numeric(p, delimiter)
        if a is not None and a.shape[1] == len(header):
            y = a[:, ti]
            return Raw(
                a[:, [header.index(c) for c in layout.features]].astype(np.float32),
                y[:, 0] if y.shape[1] == 1 else y,
                origin=str(p),
                layout=layout,
            )
    rows = csv_rows(p, header, delimiter)
    layout = layout or csv_layout(data, p, header, rows)
    if not rows:
        raise DataError(f"{p}: no data rows after the header")
    kept = []
    for line, r in rows:
        gone = [header[k] for k in ti if is_missing(r[k])]
        if gone and data.missing == "error":
            raise DataError(
                f"{p}: row {line}, column '{gone[0]}': the target is missing (set data.missing: drop "
                f"or mean to drop such rows)"
            )
        if not gone:
            kept.append((line, r))
    if not kept:
        raise DataError(f"{p}: every row's target is missing")
    dropped, rows = len(rows) - len(kept), kept
    x = csv_features(p, header, rows, layout, data.missing)
    raw_y = [[r[k].strip() for k in ti] for _, r in rows]
    class_names = None
    try:
        y = np.array([[float(v) for v in row] for row in raw_y], np.float64)
    except ValueError:
        if len(ti) != 1:
            raise DataError(
                f"{p}: target columns {csv_targets(data)} must be numeric (text labels need a single target)"
            ) from None
        class_names = sorted({row[0] for row in raw_y})
        index = {c: i for i, c in enumerate(class_names)}
        y = np.array([index[row[0]] for row in raw_y], np.int64)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    return Raw(x, y, class_names=class_names, origin=str(p), layout=layout, dropped=dropped)


@data_source("csv")
class CsvSource(DataSource):
    order = 2
    suffixes = (".csv",)

    def check(self, data) -> None:
        require(data, "path", "target")

    def peek(self, data, base_dir: Path) -> DataInfo:
        p = existing_file(data, base_dir, "CSV")
        delimiter = csv_delimiter(p, data.delimiter)
        header = csv_header(p, delimiter)
        rows = csv_rows(p, header, delimiter) if data.categorical else None  # categories: read the column
        return DataInfo((csv_layout(data, p, header, rows).width,))

    def read(self, data, base_dir: Path, seed: int) -> Raw:
        return _read_csv(data, existing_file(data, base_dir))

    def read_inputs(self, p: Path, data, dataset) -> np.ndarray:
        """Columns by the names the run was trained on, categorical ones one-hot encoded the same way."""
        delimiter = csv_delimiter(p, data.delimiter if data.source == "csv" else None)
        header = csv_header(p, delimiter)
        layout = dataset.layout or CsvLayout(tuple(header), {})
        absent = [c for c in layout.features if c not in header]
        if absent:
            raise DataError(
                f"{p}: missing feature columns {absent} (the run was trained on {', '.join(layout.features)})"
            )
        a = None if layout.categories else csv_numeric(p, delimiter, [header.index(c) for c in layout.features])
        if a is not None:
            return a.astype(np.float32)
        rows = csv_rows(p, header, delimiter)
        if not rows:
            raise DataError(f"{p}: no data rows after the header")
        missing = "mean" if dataset.imputer.fill is not None else "error"
        return csv_features(
            p,
            header,
            rows,
            layout,
            missing,
            "predictions need every value; a run trained "
            "with data.missing: mean fills missing ones and unknown categories",
        )
