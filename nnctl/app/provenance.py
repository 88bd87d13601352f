"""What a run was trained and tested on, saved in its directory so that `eval` scores the same examples or
says why it cannot: the data's fingerprint (a hash of the examples as read and their count) in data.json,
the split's example indices and, when small, the test examples themselves in split.npz.

When the data changed (rows appended, values edited) the saved test examples are scored, with a warning;
without them (a test split over SAVED_TEST_BYTES), eval refuses. When the data file is gone (moved), the
saved test examples are scored in its place.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from nnctl import rundir
from nnctl.data.prepare import Dataset
from nnctl.errors import DataError, RunDirError

DATA_RECORD = "data.json"
SPLIT = "split.npz"
SAVED_TEST_BYTES = 16 << 20  # test splits up to this size are saved whole with the run (a disk cost per run)


def save_data_record(run: Path, data: Dataset) -> None:
    """Write data.json (fingerprint, task, classes) and split.npz (indices; the test rows when small)."""
    arrays = {f"{k}_index": np.asarray(v, np.int64) for k, v in data.indices.items()}
    saved = data.test_raw is not None and data.test_raw[0].nbytes + data.test_raw[1].nbytes <= SAVED_TEST_BYTES
    if saved:
        assert data.test_raw is not None  # checked just above
        arrays["x_test"], arrays["y_test"] = data.test_raw
    buf = io.BytesIO()
    # numpy's stub types savez's `allow_pickle: bool` beside **kwds (see predict_io)
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    rundir.atomic_write(run / SPLIT, buf.getvalue())
    rundir.write_json(
        run / DATA_RECORD,
        {
            "origin": data.origin,
            "fingerprint": data.fingerprint,
            "task": data.task,
            "input_shape": list(data.input_shape),
            "class_names": data.class_names,
            "sizes": dict(data.sizes),
            "test_rows_saved": bool(saved),
        },
    )


def data_record(run: Path) -> dict | None:
    """data.json of a run (None for runs written before it existed)."""
    p = run / DATA_RECORD
    return rundir.read_json(p) if p.exists() else None


def changed(record: dict, data: Dataset) -> str | None:
    """How the data differs from what the run was trained on (None: the same examples)."""
    then, now = record.get("fingerprint", {}), data.fingerprint
    if then.get("sha256") == now.get("sha256"):
        return None
    rows = (
        f"{then.get('rows')} rows then, {now.get('rows')} now"
        if then.get("rows") != now.get("rows")
        else f"same row count ({now.get('rows')}), different values"
    )
    return f"the data of {data.origin} changed since this run was trained ({rows})"


def saved_test_spec(run: Path, spec_text: str, record: dict) -> str:
    """The run's spec with its data replaced by the saved test examples (split.npz), all of them as the
    training split of an npz source: the way to rebuild and score a run whose data changed or moved."""
    if not record.get("test_rows_saved"):
        raise RunDirError(
            f"{run} saved no test examples (its test split was empty or over {SAVED_TEST_BYTES >> 20} MiB)"
        )
    rundir.read_bytes(run / SPLIT)  # checked against the run's checksums before the npz source reads it
    doc = yaml.safe_load(spec_text)
    old = doc["data"]
    doc["data"] = {
        "source": "npz",
        "path": str((run / SPLIT).resolve()),
        "x": "x_test",
        "y": "y_test",
        "task": record["task"],
        "missing": old.get("missing", "error"),
        "shuffle": False,
    }
    return yaml.safe_dump(doc, sort_keys=False)


def warning_text(why: str, split: str) -> str:
    return f"{why}: scoring the {split} examples saved with the run"


def describe(record: Any) -> str:
    """One line for `nnctl inspect`-like output: origin, rows and hash prefix."""
    if not record:
        return "no data record (a run from before data.json)"
    fp = record.get("fingerprint", {})
    return f"{record.get('origin')}: {fp.get('rows')} rows, sha256 {str(fp.get('sha256'))[:12]}"


def missing_data(e: DataError) -> bool:
    """Whether a DataError says the data file is not there."""
    return "no such" in str(e)
