"""What `nnctl runs` lists: one row per run directory, read from its files alone (nothing is rebuilt)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from nnctl import checkpoint, rundir
from nnctl.errors import RunDirError
from nnctl.logs import read_jsonl


def _alive(pid: int) -> bool:
    """Whether a process of this host with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(path: Path) -> dict:
    """A JSON file of a run, or {} when missing or damaged (a damaged file must not hide the other runs)."""
    try:
        return rundir.read_json(path)
    except Exception:
        return {}


def run_row(run: Path) -> dict:
    """One row of `nnctl runs`: what happened to a run directory, from its files alone.

    Args:
        run: a run directory.
    Returns:
        {run_dir, name, date, status, best_epoch, monitor, best_value, epochs, duration_s, stop_reason}; without
        a summary the status is running (its process lives), interrupted (it has checkpoints) or failed.
    """
    s, info = _read(run / rundir.SUMMARY), _read(run / rundir.RUN)
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
    }
    if s.get("compile_seconds") is not None:
        row["duration_s"] = round(s["compile_seconds"] + s.get("train_seconds", 0.0), 2)
    if not s:
        ckpts = checkpoint.list_checkpoints(run)
        if info.get("pid") and info.get("host") == socket.gethostname() and _alive(int(info["pid"])):
            row["status"] = "running"
        else:
            row["status"] = "interrupted" if ckpts else "failed"
        if ckpts:
            row["epochs"] = ckpts[-1][0]
        if (run / rundir.METRICS).exists():
            row["epochs"] = len(read_jsonl(run / rundir.METRICS)) or row["epochs"]
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
