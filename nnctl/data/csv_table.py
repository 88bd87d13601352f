"""Reading a delimited text file into named columns with pandas, the field's standard parser: encodings
(UTF-8 with or without a BOM, UTF-16 from Excel's "Unicode text", else Windows-1252/Latin-1), quoted fields,
decimal commas and thousands separators, missing-value markers. Every problem names the file, the row (its
line in the file) and the column; the problems of all columns are found in one reading.

pandas is imported only when a CSV file is read: a spec without one pays nothing for it.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.errors import DataError

MISSING = ("", "na", "n/a", "nan", "null", "none", "?", "#n/a")  # any capitalisation, surrounding spaces ignored
DELIMITERS = (",", ";", "\t", "|")
DATE = re.compile(
    r"^(\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?"
    r"|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}( \d{1,2}:\d{2}(:\d{2})?)?|\d{1,2}:\d{2}(:\d{2})?)$"
)
DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+([eE][+-]?\d+)?$")
THOUSANDS = re.compile(r"^[+-]?\d{1,3}([,.' ]\d{3})+([.,]\d+)?$")
SYMBOLS = re.compile(r"^[$€£¥]\s*[+-]?[\d.,]+$|^[+-]?[\d.,]+\s*(%|[$€£¥])$")


def missing_markers(extra: list[str] | tuple[str, ...] = ()) -> set[str]:
    """The cell texts read as missing (lower-cased): MISSING and data.na_values."""
    return set(MISSING) | {m.strip().lower() for m in extra}


def _na_values(extra) -> list[str]:
    out: set[str] = set()
    for m in (*MISSING, *extra):
        for v in (m, m.upper(), m.capitalize(), m.lower()):
            out.update((v, f" {v}", f"{v} ", f" {v} "))
    return sorted(out)


def decode(p: Path, encoding: str | None) -> tuple[str, str]:
    """The text of `p` and the encoding it was read with (`encoding`, else UTF-8/UTF-16 by BOM, else
    Windows-1252, else Latin-1). A byte-order mark is dropped."""
    raw = p.read_bytes()
    if encoding:
        try:
            return raw.decode(encoding).lstrip("\ufeff"), encoding
        except (UnicodeDecodeError, LookupError) as e:
            raise DataError(f"{p}: cannot be read as {encoding} text ({e}): fix data.encoding") from None
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return raw.decode("utf-16").lstrip("\ufeff"), "utf-16"
    for enc in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(enc), enc
        except UnicodeDecodeError:
            pass
    return raw.decode("latin-1"), "latin-1"


def detect_delimiter(first_line: str, given: str | None) -> str:
    """`given`, else the candidate that occurs most often in the header line (comma when none does)."""
    if given:
        return given
    counts = {d: first_line.count(d) for d in DELIMITERS}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] else ","


@dataclass
class Table:
    """The data rows of a CSV file: `frame` (pandas DataFrame, columns named by the stripped header; text
    columns as str, numeric ones as float), `lines` (each row's line number in the file)."""

    path: Path
    header: list[str]
    frame: Any
    lines: np.ndarray
    text_lines: list[str]
    delimiter: str
    positions: dict  # column -> its field index in the file

    def cell(self, row: int, column: str) -> str:
        """The cell as written in the file (for messages)."""
        k = self.positions[column]
        fields = next(csv.reader([self.text_lines[int(self.lines[row]) - 1]], delimiter=self.delimiter), [])
        return fields[k] if k < len(fields) else ""


def read_table(p: Path, data, as_text: tuple[str, ...] = ()) -> Table:
    """The rows of the CSV file `p` read with `data`'s options (delimiter, encoding, decimal, thousands,
    na_values); the `as_text` columns are kept as text (categories, labels). Blank rows are dropped."""
    return read_text(p, decode(p, getattr(data, "encoding", None))[0], data, as_text)


def read_text(p: Path, text: str, data, as_text: tuple[str, ...] = ()) -> Table:
    """`read_table` of CSV text already decoded (`p` names it in messages)."""
    try:
        import pandas as pd
    except ImportError:
        raise DataError(
            f"{p}: reading CSV files needs pandas, a dependency of nnctl: pip install 'pandas>=2.1'"
        ) from None

    if not text.strip():
        raise DataError(f"{p}: the file is empty (expected a header row)")
    lines = text.splitlines()
    delimiter = detect_delimiter(lines[0], getattr(data, "delimiter", None))
    raw_names = next(csv.reader([lines[0]], delimiter=delimiter))
    header = [h.strip() or f"column_{i + 1}" for i, h in enumerate(raw_names)]
    names = list(header)
    unnamed = [h for h, raw in zip(header, raw_names) if not raw.strip()]
    _check_header(p, header)
    na = _na_values(getattr(data, "na_values", ()) or ())
    wanted = set(as_text)
    wide = _wide_numeric(p, text, header, delimiter, data, wanted)
    if wide is not None:
        return wide
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            header=0,
            names=header,
            index_col=False,
            skip_blank_lines=False,
            keep_default_na=False,
            na_values=na,
            decimal=getattr(data, "decimal", ".") or ".",
            thousands=getattr(data, "thousands", None),
            converters={c: str for c in header if c in wanted},  # (dtype=str: 3x slower on wide files)
            engine="c",
            low_memory=False,
        )
    except pd.errors.ParserError as e:
        raise DataError(f"{p}: {_parser_message(str(e), len(header), delimiter)}") from None
    markers = missing_markers(getattr(data, "na_values", ()) or ())
    for c in wanted & set(header):  # converters skip na_values
        frame[c] = frame[c].where(~frame[c].str.strip().str.lower().isin(markers))
    row_lines = np.arange(len(frame)) + 2
    blank = frame.isna().all(axis=1).to_numpy()
    if blank.any():
        frame, row_lines = frame[~blank].reset_index(drop=True), row_lines[~blank]
    empty = [c for c in unnamed if frame[c].isna().all()]  # trailing separators (Excel): dropped
    if empty:
        frame = frame.drop(columns=empty)
        header = [h for h in header if h not in empty]
    positions = {h: i for i, h in enumerate(names)}
    table = Table(p, header, frame, row_lines, lines, delimiter, positions)
    if len(frame) and frame[header[-1]].isna().any():
        _check_short_rows(table)
    return table


WIDE = 500  # columns from which a file of plain numbers is read by numpy: pandas costs ~0.3 ms a column


def _wide_numeric(p: Path, text: str, header: list[str], delimiter: str, data, as_text: set) -> Table | None:
    """A wide file whose every cell outside `as_text` (the targets) is a plain finite number, read by numpy's C
    parser into one block (10,000 columns: ~0.05 s, against ~3 s for pandas' per-column frames); None
    otherwise (any missing marker, text, blank line, decimal option, ragged row): pandas then reads and
    diagnoses it."""
    import pandas as pd

    if len(header) < WIDE or (getattr(data, "decimal", ".") or ".") != "." or getattr(data, "thousands", None):
        return None
    cols = [i for i, h in enumerate(header) if h not in as_text]
    lines = text.splitlines()
    if any(not line.strip() for line in lines[1:]):
        return None
    try:
        a = np.loadtxt(
            io.StringIO(text), delimiter=delimiter, skiprows=1, usecols=cols, ndmin=2, quotechar='"', comments=None
        )
    except (ValueError, IndexError):
        return None
    if not len(a) or not np.isfinite(a).all():
        return None
    frame = pd.DataFrame(a, columns=[header[i] for i in cols])
    rest = [h for h in header if h in as_text]
    if rest:
        texts = pd.read_csv(
            io.StringIO(text), sep=delimiter, header=0, names=header, usecols=rest, converters=dict.fromkeys(rest, str)
        )
        if len(texts) != len(frame):
            return None
        for c in rest:
            frame[c] = texts[c].where(~texts[c].str.strip().str.lower().isin(missing_markers(data.na_values or ())))
    return Table(p, header, frame, np.arange(len(frame)) + 2, lines, delimiter, {h: i for i, h in enumerate(header)})


def _check_header(p: Path, header: list[str]) -> None:
    seen: dict[str, int] = {}
    for i, h in enumerate(header):
        if h in seen:
            raise DataError(f"{p}: column '{h}' appears twice in the header (columns {seen[h] + 1} and {i + 1})")
        seen[h] = i


def _parser_message(msg: str, n: int, delimiter: str) -> str:
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", msg)
    if m:
        return f"row {m.group(2)} has {m.group(3)} fields, the header has {n}" + (
            " (a different separator? set data.delimiter)" if delimiter == "," else ""
        )
    return f"cannot be parsed as CSV ({msg.strip()})"


def _check_short_rows(t: Table) -> None:
    """A row with fewer fields than the header (pandas fills it with missing values): an error."""
    reader = csv.reader(io.StringIO("\n".join(t.text_lines)), delimiter=t.delimiter)
    next(reader, None)
    for r in reader:
        if r and any(c.strip() for c in r) and len(r) < len(t.header):
            raise DataError(
                f"{t.path}: row {reader.line_num} has {len(r)} fields, the header has {len(t.header)}"
                + (" (a different separator? set data.delimiter)" if t.delimiter == "," else "")
            )


def numbers(values: Any, decimal: str = ".") -> np.ndarray:
    """A column as float64 (NaN where missing or not a number)."""
    import pandas as pd

    s = values if decimal == "." else values.astype(str).str.replace(decimal, ".", regex=False)
    return pd.to_numeric(s, errors="coerce").to_numpy(np.float64, na_value=np.nan)


def text_column_problem(t: Table, column: str, decimal: str) -> str | None:
    """Why a column that should hold numbers does not, with the fix; None when it is all numbers."""
    col = t.frame[column]
    if col.dtype.kind in "fiub":
        return None
    present = col.notna().to_numpy()
    vals = col[present].astype(str).str.strip()
    bad = np.isnan(numbers(vals, decimal))
    if not bad.any():
        return None
    texts = vals[bad]
    sample = texts.iloc[0]
    where = f"{t.path}: column '{column}'"
    share = float(bad.mean())
    for rx, what, fix in (
        (DATE, "dates or times", "list it in data.exclude to drop it (dates are not expanded into features)"),
        (THOUSANDS, "thousands separators", f"set data.thousands: '{_separator(sample)}'"),
        (DECIMAL_COMMA, "decimal commas", "set data.decimal: ','"),
        (SYMBOLS, "units or currency signs", "remove the symbols from the file, or list it in data.exclude"),
    ):
        if texts.str.match(rx).mean() >= 0.8:
            return f"{where} holds {what} (e.g. '{sample}'): {fix}"
    if share <= 0.2 and texts.nunique() <= 3:  # a few odd cells in a numeric column
        rows = np.nonzero(present)[0][bad.nonzero()[0]]
        cells = ", ".join(f"row {t.lines[r]}: {vals.iloc[i]!r}" for i, r in zip(bad.nonzero()[0][:3], rows[:3]))
        return (
            f"{where}: {int(bad.sum())} value(s) are not numbers ({cells}): fix them, or if they mark missing "
            f"values add them to data.na_values"
        )
    first = int(np.nonzero(present)[0][bad.nonzero()[0][0]])
    head = f"{t.path}: row {t.lines[first]}, column '{column}': {sample!r} is not a number"
    if vals.nunique() == len(vals) and len(vals) > 2:
        return f"{head} (every value differs: an ID or free text? list the column in data.exclude)"
    examples = ", ".join(repr(v) for v in list(dict.fromkeys(texts))[:3])
    return (
        f"{head} (text values such as {examples}: list the column in data.categorical to one-hot encode it, "
        f"or in data.exclude to drop it)"
    )


def _separator(sample: str) -> str:
    m = re.search(r"\d([,.' ])\d{3}", sample)
    return m.group(1) if m else ","
