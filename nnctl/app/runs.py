"""What `nnctl runs` lists: one row per run directory, read from its files alone (nothing is rebuilt)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from nnctl import checkpoint, rundir
from nnctl.errors import RunDirError
from nnctl.logs import read_records


def pid_alive(pid: int) -> bool:
    """Whether a process of this host with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(path: Path, problems: list[str]) -> dict:
    """A JSON file of a run (checked against its SHA-256), or {} when missing; a damaged one is noted in
    `problems` (a damaged file must not hide the other runs)."""
    if not path.exists():
        return {}
    try:
        doc = rundir.read_json(path)
    except RunDirError as e:
        problems.append(str(e))
        return {}
    if not isinstance(doc, dict):
        problems.append(f"{path} is not a JSON object")
        return {}
    return doc


def run_row(run: Path) -> dict:
    """One row of `nnctl runs`: what happened to a run directory, from its files alone.

    Args:
        run: a run directory.
    Returns:
        {run_dir, name, date, status, best_epoch, monitor, best_value, epochs, duration_s, stop_reason, problems};
        without a summary the status is running (its lock is held), interrupted (it has checkpoints) or failed;
        a run whose summary.json, run.json or metrics.jsonl is damaged is `damaged`, the damage in `problems`.
    """
    problems: list[str] = []
    s, info = _read(run / rundir.SUMMARY, problems), _read(run / rundir.RUN, problems)
    recs, log_problems = read_records(run / rundir.METRICS)
    problems += log_problems
    row: dict[str, Any] = {
        "run_dir": str(run),
        "name": s.get("name") or run.name,
        "date": info.get("started_at") or s.get("finished_at"),
        "status": s.get("status"),
        "best_epoch": s.get("best_epoch"),
        "monitor": s.get("monitor"),
        "best_value": s.get("best_value"),
        "epochs": s.get("epochs_run"),
        "duration_s": None,
        "stop_reason": s.get("stop_reason"),
        "problems": problems,
    }
    if isinstance(s.get("compile_seconds"), (int, float)):
        row["duration_s"] = round(s["compile_seconds"] + s.get("train_seconds", 0.0), 2)
    if (run / rundir.LOCK).exists():  # the writer holds its lock while it lives
        live = rundir.is_locked(run)
    else:  # a run directory of nnctl before 0.3: is its pid alive?
        live = bool(info.get("pid") and info.get("host") == socket.gethostname() and pid_alive(int(info["pid"])))
    if not s:
        ckpts = checkpoint.list_checkpoints(run)
        if live:
            row["status"] = "running"
        else:
            row["status"] = "interrupted" if ckpts else "failed"
        if ckpts:
            row["epochs"] = ckpts[-1][0]
        row["epochs"] = len(recs) or row["epochs"]
    if problems and not live:
        row["status"] = "damaged"
    return row


def list_runs(root: str | Path) -> list[dict]:
    """The runs under a directory (itself, its children and grandchildren holding a spec), oldest first.

    Args:
        root: a run directory or a directory of runs.
    Returns:
        One `run_row` per run, sorted by start date then path.
    Raises:
        RunDirError: `root` is not a directory.
    """
    root = Path(root)
    if not root.is_dir():
        raise RunDirError(f"no such directory: {root}")
    if (root / rundir.SPEC).exists():
        dirs = [root]
    else:
        dirs = sorted(
            {p.parent for p in root.glob("*/" + rundir.SPEC)} | {p.parent for p in root.glob("*/*/" + rundir.SPEC)}
        )
    rows = [run_row(d) for d in dirs]
    rows.sort(key=lambda r: (r["date"] or "", r["run_dir"]))
    return rows
