"""What `nnctl plot` draws: learning curves of runs (from metrics.jsonl) and, for classification, the confusion
matrix that `nnctl eval` computes. Data first (`curves`, `confusion`), drawing second (`plot_runs`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import yaml

from nnctl import rundir
from nnctl.app.diagnose_plot import draw_diagnostics
from nnctl.app.restore import evaluate_run
from nnctl.errors import DataError, NnctlError, RunDirError
from nnctl.logs import read_jsonl

matplotlib.use("Agg")
import matplotlib.pyplot as plt

SPLIT_ORDER = ("val", "test", "train")  # the split a confusion matrix is drawn on: the first the run has


def curves(run: Path) -> dict:
    """The data of one run's plot.

    Args:
        run: a run directory with a metrics.jsonl.
    Returns:
        {run_dir, name, epochs, series (per-epoch values by name, e.g. val/loss), best_epoch, monitor, status,
        stop_reason, stopped_at, task}.
    Raises:
        RunDirError: not a run directory, or no metrics to plot.
    """
    run = rundir.check_run_dir(run)
    recs = read_jsonl(run / rundir.METRICS)
    if not recs:
        raise RunDirError(f"{run / rundir.METRICS} is missing or empty: nothing to plot")
    s = rundir.read_json(run / rundir.SUMMARY) if (run / rundir.SUMMARY).exists() else {}
    names = list(dict.fromkeys(k for r in recs for k in r if k.startswith(("train/", "val/"))))
    series = {k: [r.get(k) for r in recs] for k in names}
    return {
        "run_dir": str(run),
        "name": s.get("name") or run.name,
        "epochs": [r["epoch"] for r in recs],
        "series": series,
        "best_epoch": s.get("best_epoch"),
        "monitor": s.get("monitor"),
        "status": s.get("status"),
        "stop_reason": s.get("stop_reason"),
        "stopped_at": s.get("epochs_run") if s.get("status") == "stopped_early" else None,
        "task": s.get("task"),
        "model_type": _model_type(run),
    }


def _model_type(run: Path) -> str:
    """The run's model kind (sequential, gan, vae...), from its saved spec."""
    try:
        spec = yaml.safe_load((run / rundir.SPEC).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return "sequential"
    return str((spec.get("model") or {}).get("type", "sequential"))


def confusion(run: Path) -> dict | None:
    """The confusion matrix of a classification run on its validation split (else test, else train), as
    `nnctl eval` computes it (`evaluate_run`: counts summed on the device).

    Args:
        run: a finished run directory.
    Returns:
        {split, matrix (rows: true class, columns: predicted), class_names}, or None when the run's metrics
        count no confusion matrix (not a classification run, or no accuracy-like metric).
    Raises:
        NnctlError: the run cannot be restored (no weights yet, its data moved, ...).
    """
    sizes = _data_sizes(run)
    splits = [s for s in SPLIT_ORDER if sizes.get(s)] or list(SPLIT_ORDER)
    for i, split in enumerate(splits):
        try:
            res = evaluate_run(run, split)
            break
        except DataError:  # without a summary the splits are unknown: try the next one
            if i == len(splits) - 1:
                raise
    if "confusion_matrix" not in res:
        return None
    cm = res["confusion_matrix"]
    names = res.get("class_names") or [str(i) for i in range(len(cm))]
    return {"split": res["split"], "matrix": cm, "class_names": [str(c) for c in names][: len(cm)]}


def _data_sizes(run: Path) -> dict:
    """Examples per split from the run's summary ({} when it has none)."""
    summary = Path(run) / rundir.SUMMARY
    return (rundir.read_json(summary).get("data_sizes") or {}) if summary.exists() else {}


def plot_runs(run_dirs: list[str], out: str | None = None, with_confusion: bool = True) -> dict:
    """Draw the learning curves of runs (overlaid) and their confusion matrices into one PNG.

    Args:
        run_dirs: run directories.
        out: the PNG to write (default: the first run's curves.png).
        with_confusion: also draw each classification run's confusion matrix.
    Returns:
        {out, runs, quantities, confusion (one per run drawn), confusion_skipped ({run_dir, reason}),
        diagnostics (the per-layer figures written, for runs trained with train.diagnostics)}.
    Raises:
        NnctlError: no run directories, or one without metrics.
    """
    if not run_dirs:
        raise NnctlError("give at least one run directory")
    data = [curves(Path(r)) for r in run_dirs]
    names = [d["name"] for d in data]
    for d in data:  # one legend entry per run, even when runs share a spec name
        d["label"] = d["name"] if names.count(d["name"]) == 1 else f"{d['name']} ({Path(d['run_dir']).name})"
    quantities = list(dict.fromkeys(k.split("/", 1)[1] for d in data for k in d["series"]))
    cms, skipped = _confusions(data) if with_confusion else ([], [])
    panels = len(quantities) + len(cms)
    cols = min(panels, 3)
    rows = -(-panels // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.0 * rows), squeeze=False)
    flat = [a for row in axes for a in row]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, q in zip(flat, quantities):
        _draw_curves(ax, q, data, colors)
    for ax, (d, cm) in zip(flat[len(quantities) :], cms):
        _draw_confusion(ax, d["label"], cm)
    for ax in flat[panels:]:
        ax.set_visible(False)
    fig.tight_layout()
    target = Path(out) if out else Path(run_dirs[0]) / "curves.png"
    fig.savefig(target, dpi=100)
    plt.close(fig)
    diagnostics = _diagnostics(data, target)
    return {
        "out": str(target),
        "runs": [d["run_dir"] for d in data],
        "quantities": quantities,
        "confusion": [{"run_dir": d["run_dir"], **cm} for d, cm in cms],
        "confusion_skipped": skipped,
        "diagnostics": diagnostics,
    }


def _diagnostics(data: list[dict], target: Path) -> list[str]:
    """The per-layer figure of each run trained with train.diagnostics, beside `target`: TARGET-diagnostics.png
    (one run) or TARGET-diagnostics-RUN.png (several)."""
    written = []
    for d in data:
        suffix = "" if len(data) == 1 else f"-{Path(d['run_dir']).name}"
        path = target.with_name(f"{target.stem}-diagnostics{suffix}.png")
        if draw_diagnostics(read_jsonl(Path(d["run_dir"]) / rundir.METRICS), d["label"], path) is not None:
            written.append(str(path))
    return written


def _confusions(data: list[dict]) -> tuple[list[tuple[dict, dict]], list[dict]]:
    """(run, confusion matrix) of each classification run, and the runs whose matrix could not be computed."""
    cms, skipped = [], []
    for d in data:
        if d["task"] not in ("classification", "binary"):
            continue
        if d["model_type"] != "sequential":  # a gan's outputs are generated examples, not class predictions
            skipped.append({"run_dir": d["run_dir"], "reason": f"a {d['model_type']} run predicts no classes"})
            continue
        try:
            cm = confusion(Path(d["run_dir"]))
        except NnctlError as e:  # no weights yet, data moved...: the curves are still worth drawing
            skipped.append({"run_dir": d["run_dir"], "reason": str(e)})
            continue
        if cm is not None:
            cms.append((d, cm))
    return cms, skipped


def _draw_curves(ax: Any, q: str, data: list[dict], colors: list[str]) -> None:
    """One quantity of every run: train solid, val dashed, the best epoch dotted (a dot on the monitored
    curve), an early stop marked x."""
    for ri, d in enumerate(data):
        c = colors[ri % len(colors)]
        label = d["label"] if len(data) > 1 else ""
        for split, style in (("train", "-"), ("val", "--")):
            ys = d["series"].get(f"{split}/{q}")
            if ys is not None:
                ax.plot(
                    d["epochs"],
                    [float("nan") if v is None else v for v in ys],
                    style,
                    color=c,
                    label=f"{label} {split}".strip(),
                )
        mk = d["monitor"] or ""
        if d["best_epoch"]:
            ax.axvline(d["best_epoch"], color=c, linestyle=":", linewidth=1)
            if mk.endswith("/" + q) and mk in d["series"] and d["best_epoch"] in d["epochs"]:
                i = d["epochs"].index(d["best_epoch"])
                ax.plot(
                    [d["best_epoch"]],
                    [d["series"][mk][i]],
                    "o",
                    color=c,
                    markersize=7,
                    label=f"{label} best (epoch {d['best_epoch']})".strip(),
                )
        if d["stopped_at"]:
            ys = d["series"].get(f"val/{q}") or d["series"].get(f"train/{q}")
            if ys and d["stopped_at"] in d["epochs"]:
                ax.plot(
                    [d["stopped_at"]],
                    [ys[d["epochs"].index(d["stopped_at"])]],
                    "x",
                    color=c,
                    markersize=9,
                    mew=2,
                    label=f"{label} stopped early ({d['stop_reason']})".strip(),
                )
    ax.set_title(q)
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if q == "loss" and all(v is None or v > 0 for d in data for ys in d["series"].values() for v in ys[:1]):
        ax.set_yscale("log")


def _draw_confusion(ax: Any, label: str, cm: dict) -> None:
    """A confusion matrix as a heat map with its counts."""
    m, names = cm["matrix"], cm["class_names"]
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45 if len(names) > 4 else 0, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    hi = max(max(r) for r in m) or 1
    for i, row in enumerate(m):
        for j, v in enumerate(row):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color="white" if v > hi / 2 else "black")
    ax.set_title(f"{label}: confusion ({cm['split']})", fontsize=9)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
