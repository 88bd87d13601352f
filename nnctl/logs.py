"""Where per-epoch records go: metrics.jsonl always, metrics.csv and TensorBoard events on request.

One naming scheme everywhere: the record's keys, e.g. `train/loss`, `val/accuracy`, `lr` (learning rate at
the end of the epoch), `grad_norm` (mean global gradient norm before clipping), `clip_fraction`,
`skipped_steps`, `step`, `monitor`, and `time` (seconds per epoch). `time` is the only wall-clock
quantity; it goes to timing.jsonl, metrics.csv and TensorBoard but not to metrics.jsonl, so that
metrics.jsonl of two runs of the same spec and seed on the same machine are byte-identical.

On resume every sink is cut back to the checkpoint's epoch first (TensorBoard: `purge_step`), so a
resumed run's logs read as if it had never stopped.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path

from nnctl import rundir, strictjson, sums
from nnctl.errors import NnctlError

NOT_LOGGED = ("improved",)
TIMING_KEYS = ("time",)
CSV = "metrics.csv"
TB_DIR = "tb"


def file_record(rec: dict) -> dict:
    """The deterministic part of a record, as written to metrics.jsonl."""
    return {k: v for k, v in rec.items() if k not in NOT_LOGGED and k not in TIMING_KEYS}


def read_jsonl(path: Path) -> list[dict]:
    """The valid records of a JSON-lines log (damaged lines skipped: `read_records` says which)."""
    return read_records(path)[0]


def read_records(path: Path) -> tuple[list[dict], list[str]]:
    """(records, problems) of a JSON-lines log: every line that is a JSON object with an integer `epoch` is
    a record; any other line is dropped and named in `problems`. A last line without its newline is a write
    cut short by a crash (its epoch is run again on resume) and is dropped without a problem."""
    out: list[dict] = []
    problems: list[str] = []
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return out, problems
    except OSError as e:
        return out, [f"{path}: cannot be read ({e.strerror})"]
    lines = data.split(b"\n")
    for i, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        rec = _record(raw)
        if rec is not None:
            out.append(rec)
        elif i < len(lines):  # a complete line that is damaged
            problems.append(f"{path.name} line {i} is damaged ({_preview(raw)})")
    return out, problems


def _record(raw: bytes) -> dict | None:
    try:
        rec = strictjson.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("epoch"), int) or isinstance(rec.get("epoch"), bool):
        return None
    return rec


def _preview(raw: bytes) -> str:
    text = raw[:40].decode("utf-8", "replace")
    return repr(text) + ("..." if len(raw) > 40 else "")


def _cut_jsonl(path: Path, epoch: int, notes: list[str]) -> list[dict]:
    recs, problems = read_records(path)
    kept = [r for r in recs if r["epoch"] <= epoch]
    notes += [f"{p}: dropped" for p in problems]
    missing = sorted(set(range(1, epoch + 1)) - {r["epoch"] for r in kept})
    if missing and path.exists():
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        notes.append(
            f"{path.name} has no valid record of epoch{'s' if len(missing) > 1 else ''} {shown} "
            f"(before the checkpoint's epoch {epoch}): the resumed run's history has that gap"
        )
    sums.atomic_write(path, "".join(strictjson.dumps(r) + "\n" for r in kept).encode())
    return kept


def _cut_csv(path: Path, epoch: int) -> list[str] | None:
    if not path.exists():
        return None
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8", "replace").replace("\0", ""))))
    if not rows:
        return None
    header, body = rows[0], rows[1:]
    i = header.index("epoch") if "epoch" in header else None
    keep = [r for r in body if i is not None and len(r) == len(header) and r[i].isdigit() and int(r[i]) <= epoch]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerows([header] + keep)
    sums.atomic_write(path, buf.getvalue().encode())
    return header


class RunLogs:
    """Opened once per training session; `write(record)` after every epoch."""

    def __init__(self, run: Path, sinks: tuple[str, ...] = (), resume_epoch: int | None = None):
        self.run = Path(run)
        self.sinks = tuple(sinks)
        self.previous: list[dict] = []
        self.notes: list[str] = []  # what a resume dropped from damaged logs
        header = None
        if resume_epoch is not None:
            self.previous = _cut_jsonl(self.run / rundir.METRICS, resume_epoch, self.notes)
            _cut_jsonl(self.run / rundir.TIMING, resume_epoch, [])
            header = _cut_csv(self.run / CSV, resume_epoch)
        mode = "a" if resume_epoch is not None else "w"
        self.metrics = open(self.run / rundir.METRICS, mode, encoding="utf-8")  # noqa: SIM115  (open for the whole run; close())
        self.timing = open(self.run / rundir.TIMING, mode, encoding="utf-8")  # noqa: SIM115  (open for the whole run; close())
        self.csv_file = self.csv = None
        self.csv_header = header
        self._flushed_at = time.monotonic()
        self.tb = None
        if "csv" in self.sinks:
            self.csv_file = open(self.run / CSV, "a" if header else "w", encoding="utf-8", newline="")  # noqa: SIM115
            self.csv = csv.writer(self.csv_file, lineterminator="\n")
        if "tensorboard" in self.sinks:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                self.close()
                raise NnctlError(
                    "train.log: [tensorboard] needs the tensorboardX package: "
                    "pip install tensorboardX (or remove tensorboard from train.log)"
                ) from None
            purge = resume_epoch + 1 if resume_epoch is not None else None
            self.tb = SummaryWriter(str(self.run / TB_DIR), purge_step=purge, flush_secs=10)

    FLUSH_S = 1.0  # records arrive in bursts of up to thousands: flush at most this often (and before checkpoints)

    def write(self, rec: dict) -> None:
        self.metrics.write(strictjson.dumps(file_record(rec)) + "\n")
        t = rec.get("time")
        self.timing.write(
            f'{{"epoch": {int(rec["epoch"])}, "time": {json.dumps(t) if t is None else repr(float(t))}}}\n'
        )
        row = {k: v for k, v in rec.items() if k not in NOT_LOGGED}
        if self.csv is not None:
            if self.csv_header is None:
                self.csv_header = list(row)
                self.csv.writerow(self.csv_header)
            self.csv.writerow([_csv_value(row.get(k)) for k in self.csv_header])
        if self.tb is not None:
            for k, v in row.items():
                if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool):
                    self.tb.add_scalar(k, v, global_step=int(rec["epoch"]))
        now = time.monotonic()
        if now - self._flushed_at >= self.FLUSH_S:
            self.flush()

    def flush(self) -> None:
        """Everything written so far reaches the files: called before every checkpoint, so a checkpoint's
        epoch is always in the logs a resumed run cuts back to."""
        self._flushed_at = time.monotonic()
        for f in (self.metrics, self.timing, self.csv_file):
            if f is not None and not f.closed:
                f.flush()

    def close(self) -> None:
        for f in (self.metrics, self.timing, self.csv_file):
            if f is not None and not f.closed:
                f.close()
        if self.tb is not None:
            self.tb.close()
            self.tb = None


def _csv_value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, (list, tuple)):
        return json.dumps(v)
    return str(v)
