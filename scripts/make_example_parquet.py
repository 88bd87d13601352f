"""Write specs/data/loans_synthetic.parquet from specs/data/loans_synthetic.csv (run once; committed, ~10 KB).

    python scripts/make_example_parquet.py

The same 600 rows with Parquet's own types: numbers as int64/float64, text as strings, missing values
(empty, NA, ?, ...) as nulls, `approved` as int64. `tests/test_parquet.py` checks that the parquet and csv
sources read identical arrays from the two files.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

DATA = Path(__file__).resolve().parent.parent / "specs" / "data"
MISSING = {"", "na", "n/a", "nan", "null", "none", "?"}
TEXT = {"region", "employment"}


def main() -> None:
    with open(DATA / "loans_synthetic.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    columns = {}
    for name in rows[0]:
        cells = [None if r[name].strip().lower() in MISSING else r[name].strip() for r in rows]
        if name in TEXT:
            columns[name] = pa.array(cells, pa.string())
        elif all(c is None or c.lstrip("-").isdigit() for c in cells):
            columns[name] = pa.array([None if c is None else int(c) for c in cells], pa.int64())
        else:
            columns[name] = pa.array([None if c is None else float(c) for c in cells], pa.float64())
    pq.write_table(pa.table(columns), DATA / "loans_synthetic.parquet")
    print(pa.table(columns).schema)


if __name__ == "__main__":
    main()
