"""`csv`: a delimited text file with a header row; the target and feature columns are named in the spec.

The file is read by `csv_table` (pandas: encodings, quoting, decimal commas, thousands separators, missing
markers); here the columns become features: the layout (numeric columns, one-hot categorical ones, excluded
ones), the problems of every column reported together, numeric class labels, and the reading of new inputs
for `predict` by the column names a run was trained on.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnctl.data.csv_table import Table, missing_markers, numbers, read_table, text_column_problem
from nnctl.data.sources.base import DataInfo, DataSource, Raw, TargetFacts, data_source, existing_file, require
from nnctl.errors import DataError, did_you_mean


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


def raise_all(p: Path, problems: list[tuple[str, tuple]]) -> None:
    """One DataError holding every (message, spec key) problem, in order; nothing when there are none."""
    if not problems:
        return
    if len(problems) == 1:
        raise DataError(problems[0][0], problems[0][1])
    text = "\n".join(f"  {m}" for m, _ in problems)
    raise DataError(f"{len(problems)} problems in {p}:\n{text}", problems[0][1])


def _name_problems(data, p: Path, header: list[str]) -> list[tuple[str, tuple]]:
    """Target, feature, categorical and exclude names that are not columns (or not allowed there)."""
    cols, targets = set(header), csv_targets(data)
    listed = ", ".join(header)
    out: list[tuple[str, tuple]] = [
        (f"{p}: no column '{t}'.{did_you_mean(t, header)} Columns: {listed}", ("data", "target"))
        for t in targets
        if t not in cols
    ]
    group = getattr(data, "group_by", None)
    if group is not None and group not in cols:
        out.append(
            (
                f"{p}: no column '{group}' (data.group_by).{did_you_mean(group, header)} Columns: {listed}",
                ("data", "group_by"),
            )
        )
    for field in ("features", "exclude"):
        for i, c in enumerate(getattr(data, field, None) or []):
            if c not in cols:
                key = ("data", field, i)
                what = "feature column" if field == "features" else "column"
                out.append((f"{p}: no {what} '{c}' (data.{field}).{did_you_mean(c, header)} Columns: {listed}", key))
            elif c in targets:
                out.append((f"{p}: '{c}' is the target; it cannot be in data.{field}", ("data", field, i)))
    feats = set(feature_columns(data, header))
    for i, c in enumerate(data.categorical):
        if c not in feats:
            where = "a target" if c in targets else ("not a feature" if c in cols else "not a column")
            out.append(
                (
                    f"{p}: '{c}' is {where}.{did_you_mean(c, sorted(feats))} Feature columns: "
                    f"{', '.join(feature_columns(data, header))}",
                    ("data", "categorical", i),
                )
            )
    if not feats and not out:
        out.append((f"{p}: no feature columns left besides the target and data.exclude", ("data",)))
    return out


def feature_columns(data, header: list[str]) -> list[str]:
    """data.features, else every column but the targets and data.exclude."""
    if data.features is not None:
        return list(data.features)
    skip = set(csv_targets(data)) | set(getattr(data, "exclude", None) or []) | {getattr(data, "group_by", None)}
    return [c for c in header if c not in skip]


def csv_layout(data, t: Table) -> CsvLayout:
    """The feature columns of a csv source, with the sorted categories of the categorical ones."""
    raise_all(t.path, _name_problems(data, t.path, t.header))
    markers = missing_markers(getattr(data, "na_values", ()) or ())
    cats = {}
    for i, c in enumerate(data.categorical):
        values = sorted({v for v in t.frame[c].dropna().astype(str).str.strip() if v.lower() not in markers})
        if not values:
            raise DataError(f"{t.path}: categorical column '{c}' has no values", ("data", "categorical", i))
        cats[c] = values
    return CsvLayout(tuple(feature_columns(data, t.header)), cats)


def csv_features(
    t: Table, layout: CsvLayout, data, missing: str, fix: str = "set data.missing: drop or mean"
) -> tuple[np.ndarray, list[tuple[str, tuple]]]:
    """(rows, layout.width) float32 and the problems found; a missing value (or an unknown category) is NaN,
    or a problem (ending in `fix`) when `missing` is "error". Columns pandas read as numbers are copied in one
    block (a file of 10,000 columns costs no more per column than one of 10)."""
    x = np.zeros((len(t.frame), layout.width), np.float32)
    decimal = getattr(data, "decimal", ".") or "."
    problems: list[tuple[str, tuple]] = []
    start, col = {}, 0
    for c in layout.features:
        start[c] = col
        col += len(layout.categories[c]) if c in layout.categories else 1
    kinds = dict(zip(t.frame.columns, (d.kind for d in t.frame.dtypes)))
    numeric = [c for c in layout.features if c not in layout.categories and kinds[c] in "fiub"]
    if numeric:
        block = t.frame[numeric].to_numpy(np.float64, na_value=np.nan)
        x[:, [start[c] for c in numeric]] = block
        if missing == "error":
            for j in np.nonzero(np.isnan(block).any(0))[0]:
                problems += _missing(t, numeric[j], np.isnan(block[:, j]), fix)
    done = set(numeric)
    for c in layout.features:
        if c in done:
            continue
        if c in layout.categories:
            gone, more = _one_hot(t, c, layout.categories[c], x, start[c], data, missing, fix)
            problems += more
        else:
            bad = text_column_problem(t, c, decimal)
            if bad is not None:
                problems.append((bad, ("data", "path")))
            x[:, start[c]] = numbers(t.frame[c], decimal)
            gone = t.frame[c].isna().to_numpy()
        if missing == "error" and gone.any():
            problems += _missing(t, c, gone, fix)
    return x, problems


def _missing(t: Table, c: str, gone: np.ndarray, fix: str) -> list[tuple[str, tuple]]:
    r = int(np.nonzero(gone)[0][0])
    more = f" and {int(gone.sum()) - 1} more row(s)" if gone.sum() > 1 else ""
    return [(f"{t.path}: row {t.lines[r]}, column '{c}': missing value {t.cell(r, c)!r}{more} ({fix})", ())]


def _one_hot(t: Table, c: str, cats: list, x: np.ndarray, col: int, data, missing: str, fix: str) -> tuple:
    """Write column `c` one-hot into x[:, col:col + len(cats)] (NaN where missing or unknown); the rows left
    missing and the problems (an unknown category under missing: error)."""
    s = t.frame[c].astype(str).str.strip()
    idx = s.map({v: j for j, v in enumerate(cats)}).to_numpy(np.float64, na_value=np.nan)
    gone = np.isnan(idx)
    rows = np.nonzero(~gone)[0]
    x[rows, col + idx[rows].astype(int)] = 1.0
    x[gone, col : col + len(cats)] = np.nan
    markers = list(missing_markers(getattr(data, "na_values", ()) or ()))
    unknown = gone & t.frame[c].notna().to_numpy() & ~s.str.lower().isin(markers).to_numpy()
    problems = []
    if unknown.any() and missing == "error":
        r = int(np.nonzero(unknown)[0][0])
        known = f"{', '.join(cats[:10])}{', ...' if len(cats) > 10 else ''}"
        problems.append(
            (f"{t.path}: row {t.lines[r]}, column '{c}': unknown category {s.iloc[r]!r} (known: {known}) ({fix})", ())
        )
        gone = gone & ~unknown
    return gone, problems


def _labels(t: Table, data, keep: np.ndarray) -> tuple[np.ndarray, list[str] | None]:
    """The targets of the kept rows: numbers, or class indices of text labels (sorted names)."""
    targets = csv_targets(data)
    cols = [t.frame[c][keep] for c in targets]
    ys = [numbers(c.astype(str).str.strip()) for c in cols]
    if all(not np.isnan(y).any() for y in ys):
        y = np.stack(ys, 1)
        return (y[:, 0] if y.shape[1] == 1 else y), None
    if len(targets) != 1:
        raise DataError(f"{t.path}: target columns {targets} must be numeric (text labels need a single target)")
    text = cols[0].astype(str).str.strip()
    names = sorted(set(text))
    return text.map({n: i for i, n in enumerate(names)}).to_numpy(np.int64), names


def _read_csv(data, p: Path, layout: CsvLayout | None = None) -> Raw:
    """Every example of the csv file `p`; every problem of its columns in one DataError. `layout`: a run's
    trained columns and categories (new labelled data), else read from the file."""
    return read_examples(data, _table(data, p), layout)


def read_examples(data, t: Table, layout: CsvLayout | None = None) -> Raw:
    """The examples of a table read by `csv_table` (a CSV file, or a table of another source turned into one)."""
    p = t.path
    if layout is None:
        layout = csv_layout(data, t)
    else:
        check_input_header(t, layout)
        raise_all(p, [pr for pr in _name_problems(data, p, t.header) if pr[1][:2] == ("data", "target")])
    if not len(t.frame):
        raise DataError(f"{p}: no data rows after the header")
    targets = csv_targets(data)
    no_target = t.frame[targets].isna().any(axis=1).to_numpy()
    problems: list[tuple[str, tuple]] = []
    if no_target.any() and data.missing == "error":
        r = int(np.nonzero(no_target)[0][0])
        col = next(c for c in targets if t.frame[c].isna().iloc[r])
        problems.append(
            (
                f"{p}: row {t.lines[r]}, column '{col}': the target is missing (set data.missing: drop "
                f"or mean to drop such rows)",
                (),
            )
        )
    keep = ~no_target
    x, feature_problems = csv_features(t, layout, data, data.missing)
    raise_all(p, problems + feature_problems)
    if not keep.any():
        raise DataError(f"{p}: every row's target is missing")
    y, class_names = _labels(t, data, keep)
    group = getattr(data, "group_by", None)
    groups = None if group is None else t.frame[group][keep].astype(str).str.strip().to_numpy(dtype=object)
    return Raw(
        x[keep], y, class_names=class_names, origin=str(p), layout=layout, dropped=int(no_target.sum()), groups=groups
    )


def read_labelled(data, p: Path, layout: CsvLayout) -> Raw:
    """New labelled examples in a CSV file, with a run's columns and categories (`nnctl eval --data`)."""
    return _read_csv(data, p, layout)


_PEEKED: dict = {}  # the examples `peek` read (checking a spec), handed once to the `read` that follows


def _key(data, p: Path) -> tuple:
    st = p.stat()
    return (str(p.resolve()), st.st_mtime_ns, st.st_size, repr(data.model_dump()))


def text_columns(data) -> tuple[str, ...]:
    """The columns read as text: the categorical ones, the targets and the group column."""
    return tuple(data.categorical) + tuple(csv_targets(data)) + ((data.group_by,) if data.group_by else ())


def _table(data, p: Path) -> Table:
    return read_table(p, data, text_columns(data))


@data_source("csv")
class CsvSource(DataSource):
    order = 2
    suffixes = (".csv",)

    def check(self, data) -> None:
        require(data, "path", "target")

    def peek(self, data, base_dir: Path) -> DataInfo:
        p = existing_file(data, base_dir, "CSV")
        raw = _read_csv(data, p)  # every problem of the file now, with the spec's
        _PEEKED.clear()
        _PEEKED[_key(data, p)] = raw
        if raw.class_names is not None:
            return DataInfo((raw.layout.width,), len(raw.class_names))
        return DataInfo((raw.layout.width,), targets=TargetFacts.of(raw.y))

    def read(self, data, base_dir: Path, seed: int) -> Raw:
        p = existing_file(data, base_dir)
        return _PEEKED.pop(_key(data, p), None) or _read_csv(data, p)

    def read_inputs(self, p: Path, data, dataset) -> np.ndarray:
        """Columns by the names the run was trained on, categorical ones one-hot encoded the same way."""
        layout = dataset.layout
        opts = data if data.source == "csv" else data.model_copy(update={"delimiter": None})
        return inputs_of(read_table(p, opts, tuple(layout.categories) if layout else ()), opts, dataset)


def inputs_of(t: Table, opts, dataset) -> np.ndarray:
    """A table's inputs by the column names the run was trained on, categorical ones one-hot encoded the same
    way (`predict` on a CSV file, or on a table of another source turned into one)."""
    p, layout = t.path, dataset.layout
    if layout is None and all(_is_number(h) for h in t.header):
        raise DataError(
            f"{p}: its first line holds numbers, not column names: add a header row (the run was trained on "
            f"{dataset.input_shape} values per example, in order)"
        )
    layout = layout or CsvLayout(tuple(t.header), {})
    check_input_header(t, layout)
    if not len(t.frame):
        raise DataError(f"{p}: no data rows after the header")
    missing = "mean" if dataset.imputer.fill is not None else "error"
    x, problems = csv_features(
        t,
        layout,
        opts,
        missing,
        "predictions need every value; a run trained with data.missing: mean fills missing ones and unknown categories",
    )
    raise_all(p, problems)
    unseen = unseen_categories(t, layout)
    if unseen:
        warnings.warn(f"{p}: {unseen}: their one-hot inputs are filled with the training means", stacklevel=2)
    return x


def check_input_header(t: Table, layout: CsvLayout) -> None:
    """The input file's header names every trained feature column, else an error that lists them (and says
    when the first line looks like data: a file without a header row)."""
    cols = set(t.header)
    absent = [c for c in layout.features if c not in cols]
    if not absent:
        return
    needed = ", ".join(layout.features)
    headerless = all(_is_number(h) for h in t.header)
    why = (
        "its first line holds numbers, not column names: add a header row naming the columns"
        if headerless
        else f"missing feature columns {absent}"
    )
    raise DataError(f"{t.path}: {why} (the run was trained on the columns: {needed})")


def unseen_categories(t: Table, layout: CsvLayout) -> str:
    """'column c: values a, b not seen in training' for categorical inputs (empty when none)."""
    parts = []
    for c, cats in layout.categories.items():
        vals = t.frame[c].dropna().astype(str).str.strip()
        new = sorted(set(vals) - set(cats))
        if new:
            parts.append(f"column '{c}': {', '.join(map(repr, new[:5]))} not seen in training")
    return "; ".join(parts)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
