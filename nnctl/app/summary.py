"""summary.json: how a fit ended, its best epoch, times and sizes."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from nnctl.app.builder import Built, metric_mode
from nnctl.app.diagnose import diagnose
from nnctl.app.fitting import FitResult


def best_epoch(b: Built, res: FitResult) -> tuple[int | None, float | None]:
    """(epoch, value) of the best monitored value: early stopping's record, else the best of the records by
    the monitor's direction (from the metric registry)."""
    es = res.carry.es
    if int(es.best_epoch) >= 0:
        return int(es.best_epoch) + 1, float(es.best)
    if not res.records:
        return None, None
    split, metric = b.loop.monitor
    vals = np.asarray([r.get(f"{split}/{metric}", r["train/loss"]) for r in res.records], dtype=float)
    if np.all(np.isnan(vals)):
        i = len(vals) - 1
    else:
        i = int(np.nanargmax(vals) if metric_mode(metric) == "max" else np.nanargmin(vals))
    return res.records[i]["epoch"], float(vals[i])


def summarize(b: Built, res: FitResult, run: Path, resumed_from: int | None = None) -> dict:
    """The summary.json document of a finished (or stopped) fit."""
    recs = res.records
    split, metric = b.loop.monitor
    best, best_value = best_epoch(b, res)
    steps = int(res.carry.state.step)
    spec = b.loaded.spec
    s = {
        "name": spec.name or run.name,
        "run_dir": str(run),
        "status": res.status,
        "stop_reason": res.reason or None,
        "epochs_run": len(recs),
        "epochs_planned": b.epochs,
        "steps": steps,
        "monitor": f"{split}/{metric}",
        "best_epoch": best,
        "best_value": best_value,
        "restored_best": bool(b.loop.restore_best and best is not None and res.reason != "nonfinite"),
        "compile_seconds": round(res.compile_s, 4),
        "compile_cpu_seconds": round(res.compile_cpu_s, 4),  # this session's, all threads of the process
        "compile_cache": None if res.cache is None else {"programs": res.cache.requests, "from_cache": res.cache.hits},
        "train_seconds": round(res.train_s, 4),
        "train_cpu_seconds": round(res.train_cpu_s, 4),  # this session's, all threads of the process
        "steps_per_second": round(steps / res.train_s, 1) if res.train_s > 0 else None,
        "parameters": b.param_count,
        "fuse": b.fuse,
        "data_placement": b.placement,
        "data_sizes": b.data.sizes,
        "task": b.data.task,
        "final": {k: v for k, v in (recs[-1] if recs else {}).items() if k.startswith(("train/", "val/"))},
        "at_best_epoch": {
            k: v
            for k, v in next((r for r in recs if r["epoch"] == best), {}).items()
            if k.startswith(("train/", "val/"))
        },
        "seed": spec.seed,
        "logs": ["metrics.jsonl", *spec.train.log],
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if res.checkpoint:
        s["checkpoint"] = str(res.checkpoint)
    if resumed_from is not None:
        s["resumed_from_epoch"] = resumed_from
    if res.transfer:  # model.init_from: what was copied, skipped, new
        s["init_from"] = res.transfer
    if spec.train.diagnostics:  # plain-words flags of the per-layer records ([]: nothing wrong seen)
        s["diagnostics"] = diagnose(recs, spec)
    if res.reason == "nonfinite":
        bad = res.carry.bad
        what, epoch, step = bad.quantity(), int(bad.epoch) + 1, int(bad.step)
        s["nonfinite"] = {"epoch": epoch, "step": step, "quantity": what}
        s["message"] = (
            f"non-finite {what} at epoch {epoch}, step {step}: training stopped and the "
            f"weights of the last good epoch were kept (lower the learning rate or clip gradients)"
        )
    return s
