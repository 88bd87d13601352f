"""What a sweep leaves in its directory: trials.csv / trials.jsonl (one row per trial), best.yaml (the best
trial's resolved spec, trainable as is), and Optuna's matplotlib plots (optimisation history, parameter
importances, slice). Rewritten after every sweep session from the study, so they always match it."""

from __future__ import annotations

import csv
import io
import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib
import optuna
from optuna.trial import FrozenTrial, TrialState

from nnctl import rundir
from nnctl.app.sweep_study import INTERRUPTED

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from optuna.visualization import matplotlib as vis

STATE = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "queued",
}


def trial_row(t: FrozenTrial) -> dict[str, Any]:
    state = STATE[t.state]
    if state == "failed" and t.user_attrs.get(INTERRUPTED):
        state = "interrupted"
    duration = None
    if t.datetime_start is not None and t.datetime_complete is not None:
        duration = round((t.datetime_complete - t.datetime_start).total_seconds(), 2)
    return {
        "trial": t.number,
        "state": state,
        "value": t.value if t.state == TrialState.COMPLETE else None,
        "epochs": t.user_attrs.get("epochs", t.last_step),
        "duration_s": duration,
        **{f"params.{k}": v for k, v in t.params.items()},
        "run_dir": t.user_attrs.get("run_dir"),
        "error": t.user_attrs.get("error"),
    }


def ranked(ts: list[FrozenTrial], direction: str) -> list[FrozenTrial]:
    """The complete trials, best first."""
    done = [(float(t.value), t) for t in ts if t.state == TrialState.COMPLETE and t.value is not None]
    done.sort(key=lambda vt: (vt[0] if direction == "minimize" else -vt[0], vt[1].number))
    return [t for _, t in done]


def best_trial(ts: list[FrozenTrial], direction: str) -> FrozenTrial | None:
    r = ranked(ts, direction)
    return r[0] if r else None


def top_rows(ts: list[FrozenTrial], direction: str, n: int = 5) -> list[dict]:
    return [trial_row(t) for t in ranked(ts, direction)[:n]]


def write_reports(study: optuna.Study, ts: list[FrozenTrial], sweep_dir: Path, direction: str) -> dict[str, Any]:
    """trials.csv, trials.jsonl, best.yaml and the plots. Returns {files: [...], skipped_plots: {name: why}}."""
    rows = [trial_row(t) for t in ts]
    lines = "".join(json.dumps(r, default=str) + "\n" for r in rows)
    rundir.atomic_write(sweep_dir / "trials.jsonl", lines.encode())
    fields = list(dict.fromkeys(k for r in rows for k in r)) or ["trial"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    rundir.atomic_write(sweep_dir / "trials.csv", buf.getvalue().encode())
    files = ["trials.csv", "trials.jsonl"]
    best = best_trial(ts, direction)
    if best is not None and best.user_attrs.get("run_dir"):
        src = Path(best.user_attrs["run_dir"]) / rundir.SPEC
        if src.exists():
            shutil.copyfile(src, sweep_dir / "best.yaml")
            files.append("best.yaml")
    made, skipped = _plots(study, ts, sweep_dir)
    return {"files": files + made, "skipped_plots": skipped}


def _plots(study: optuna.Study, ts: list[FrozenTrial], sweep_dir: Path) -> tuple[list[str], dict[str, str]]:
    done = [t for t in ts if t.state == TrialState.COMPLETE]
    plots: dict[str, tuple[Callable[..., Any], int]] = {
        "history.png": (vis.plot_optimization_history, 1),
        "importances.png": (vis.plot_param_importances, 2),
        "slice.png": (vis.plot_slice, 1),
    }
    made, skipped = [], {}
    for name, (fn, need) in plots.items():
        if len(done) < need:
            skipped[name] = f"needs {need} complete trial{'s' if need > 1 else ''}"
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = fn(study)
            fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
            fig.savefig(sweep_dir / name, dpi=100, bbox_inches="tight")
            plt.close(fig)
            made.append(name)
        except Exception as e:  # a plot Optuna cannot draw for this study (e.g. importances of constant values)
            skipped[name] = f"{type(e).__name__}: {e}"
    return made, skipped
