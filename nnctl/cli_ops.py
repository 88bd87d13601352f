"""Operations commands: `nnctl runs` (a table of run directories) and `nnctl plot` (learning curves and
the confusion matrix). Data first (`list_runs`, `curves`), renderers second."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from nnctl.cli import JsonOpt, QuietOpt, _console, _emit, _fmt, _guard, app

STATUS_TEXT = {"finished": "finished", "stopped_early": "stopped early", "interrupted": "interrupted",
               "failed": "failed", "running": "running"}


# ------------------------------------------------------------------------------------------------ runs

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_row(run: Path) -> dict:
    """One row of `nnctl runs`: what happened to a run directory, from its files alone."""
    from nnctl import checkpoint, rundir

    def read(name):
        try:
            return rundir.read_json(run / name)
        except Exception:  # a damaged file must not hide the other runs
            return {}

    s, info = read(rundir.SUMMARY), read(rundir.RUN)
    row: dict[str, Any] = {"run_dir": str(run), "name": s.get("name") or run.name,
                           "date": info.get("started_at") or s.get("finished_at"), "status": s.get("status"),
                           "best_epoch": s.get("best_epoch"), "monitor": s.get("monitor"),
                           "best_value": s.get("best_value"), "epochs": s.get("epochs_run"),
                           "duration_s": None, "stop_reason": s.get("stop_reason")}
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
            from nnctl.logs import read_jsonl
            recs = read_jsonl(run / rundir.METRICS)
            row["epochs"] = len(recs) or row["epochs"]
    return row


def list_runs(root: str | Path) -> list[dict]:
    from nnctl import rundir
    from nnctl.errors import RunDirError

    root = Path(root)
    if not root.is_dir():
        raise RunDirError(f"no such directory: {root}")
    if (root / rundir.SPEC).exists():
        dirs = [root]
    else:
        dirs = sorted({p.parent for p in root.glob("*/" + rundir.SPEC)} | {p.parent for p in root.glob("*/*/" + rundir.SPEC)})
    rows = [run_row(d) for d in dirs]
    rows.sort(key=lambda r: (r["date"] or "", r["run_dir"]))
    return rows


@app.command()
def runs(
    root: Annotated[str, typer.Argument(help="A directory of runs (default: runs).")] = "runs",
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """A table of runs: name, date, status, best epoch, best validation metric, duration.

    Status is finished, stopped early, interrupted (resumable), failed or running."""
    res = _guard(lambda: list_runs(root), as_json)

    def render():
        from rich.table import Table
        t = Table(title=f"runs in {root}")
        for col, just in (("name", "left"), ("date", "left"), ("status", "left"), ("epochs", "right"),
                          ("best epoch", "right"), ("best value", "left"), ("duration", "right")):
            t.add_column(col, justify=just)
        names = [r["name"] for r in res]
        for r in res:
            best = f"{r['monitor']} {_fmt(r['best_value'])}" if r["best_value"] is not None else ""
            dur = f"{r['duration_s']:.1f} s" if r["duration_s"] is not None else ""
            status = STATUS_TEXT.get(r["status"], str(r["status"]))
            if r["stop_reason"] and r["status"] == "stopped_early":
                status += f" ({r['stop_reason']})"
            name = r["name"] if names.count(r["name"]) == 1 else f"{r['name']} ({Path(r['run_dir']).name})"
            t.add_row(name, (r["date"] or "")[:16].replace("T", " "), status, _fmt(r["epochs"] or ""),
                      _fmt(r["best_epoch"] or ""), best, dur)
        c = _console()
        if not c.is_terminal:
            c.width = max(c.width, 120)  # piped: do not squeeze the table into 80 columns
        c.print(t)
        if not res:
            _console().print(f"no runs in {root}")

    _emit(res, as_json, quiet, render)


# ------------------------------------------------------------------------------------------------ plot

def curves(run: Path) -> dict:
    """The data of one run's plot: per-epoch series by name, best/stop epochs, task."""
    from nnctl import rundir
    from nnctl.errors import RunDirError
    from nnctl.logs import read_jsonl

    run = rundir.check_run_dir(run)
    recs = read_jsonl(run / rundir.METRICS)
    if not recs:
        raise RunDirError(f"{run / rundir.METRICS} is missing or empty: nothing to plot")
    s = rundir.read_json(run / rundir.SUMMARY) if (run / rundir.SUMMARY).exists() else {}
    series: dict[str, list] = {}
    for r in recs:
        for k, v in r.items():
            if k.startswith(("train/", "val/")):
                series.setdefault(k, [])
    for k in series:
        series[k] = [r.get(k) for r in recs]
    return {"run_dir": str(run), "name": s.get("name") or run.name, "epochs": [r["epoch"] for r in recs],
            "series": series, "best_epoch": s.get("best_epoch"), "monitor": s.get("monitor"),
            "status": s.get("status"), "stop_reason": s.get("stop_reason"),
            "stopped_at": s.get("epochs_run") if s.get("status") == "stopped_early" else None,
            "task": s.get("task")}


def confusion(run: Path) -> dict | None:
    """Confusion matrix of a classification run on its validation split (else test, else train)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from nnctl.run import restore

    r = restore(run)
    data = r.built.data
    if data.task not in ("classification", "binary"):
        return None
    for split in ("val", "test", "train"):
        x, y = data.split(split)
        if x is not None:
            break
    out = np.asarray(jax.jit(r.built.obj.predict)(r.weights["params"], r.weights["model_state"], jnp.asarray(x)))
    y = np.asarray(y)
    if data.task == "binary":
        pred, true, n = (out.reshape(len(out), -1)[:, 0] > 0.5).astype(int), y.reshape(len(y), -1)[:, 0].astype(int), 2
    else:
        pred = out.argmax(-1)
        true = y.argmax(-1) if y.ndim > 1 else y.astype(int)
        n = max(out.shape[-1], int(true.max()) + 1)
    cm = np.zeros((n, n), int)
    np.add.at(cm, (true, pred), 1)
    names = data.class_names or [str(i) for i in range(n)]
    return {"split": split, "matrix": cm.tolist(), "class_names": [str(c) for c in names][:n]}


def plot_runs(run_dirs: list[str], out: str | None = None, with_confusion: bool = True) -> dict:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nnctl.errors import NnctlError

    if not run_dirs:
        raise NnctlError("give at least one run directory")
    data = [curves(Path(r)) for r in run_dirs]
    names = [d["name"] for d in data]
    for d in data:  # one legend entry per run, even when runs share a spec name
        d["label"] = d["name"] if names.count(d["name"]) == 1 else f"{d['name']} ({Path(d['run_dir']).name})"
    quantities = []
    for d in data:
        for k in d["series"]:
            q = k.split("/", 1)[1]
            if q not in quantities:
                quantities.append(q)
    cms, skipped = [], []
    if with_confusion:
        for d in data:
            if d["task"] in ("classification", "binary"):
                try:
                    cm = confusion(Path(d["run_dir"]))
                except NnctlError as e:  # no weights yet, data moved...: the curves are still worth drawing
                    skipped.append({"run_dir": d["run_dir"], "reason": str(e)})
                    continue
                if cm is not None:
                    cms.append((d, cm))
    panels = len(quantities) + len(cms)
    cols = min(panels, 3)
    rows = -(-panels // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.0 * rows), squeeze=False)
    flat = [a for row in axes for a in row]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for qi, q in enumerate(quantities):
        ax = flat[qi]
        for ri, d in enumerate(data):
            c = colors[ri % len(colors)]
            label = d["label"] if len(data) > 1 else ""
            for split, style in (("train", "-"), ("val", "--")):
                ys = d["series"].get(f"{split}/{q}")
                if ys is None:
                    continue
                ys = [float("nan") if v is None else v for v in ys]
                ax.plot(d["epochs"], ys, style, color=c, label=f"{label} {split}".strip())
            mk = d["monitor"] or ""
            if d["best_epoch"]:
                ax.axvline(d["best_epoch"], color=c, linestyle=":", linewidth=1)
                if mk.endswith("/" + q) and mk in d["series"]:
                    i = d["epochs"].index(d["best_epoch"]) if d["best_epoch"] in d["epochs"] else None
                    if i is not None:
                        ax.plot([d["best_epoch"]], [d["series"][mk][i]], "o", color=c, markersize=7,
                                label=f"{label} best (epoch {d['best_epoch']})".strip())
            if d["stopped_at"]:
                ys = d["series"].get(f"val/{q}") or d["series"].get(f"train/{q}")
                if ys and d["stopped_at"] in d["epochs"]:
                    ax.plot([d["stopped_at"]], [ys[d["epochs"].index(d["stopped_at"])]], "x", color=c, markersize=9,
                            mew=2, label=f"{label} stopped early ({d['stop_reason']})".strip())
        ax.set_title(q)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        if q == "loss" and all(v is None or v > 0 for d in data for ys in d["series"].values() for v in ys[:1]):
            ax.set_yscale("log")
    for ci, (d, cm) in enumerate(cms):
        ax = flat[len(quantities) + ci]
        m = cm["matrix"]
        ax.imshow(m, cmap="Blues")
        names = cm["class_names"]
        ax.set_xticks(range(len(names)), names, rotation=45 if len(names) > 4 else 0, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        hi = max(max(r) for r in m) or 1
        for i, row in enumerate(m):
            for j, v in enumerate(row):
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color="white" if v > hi / 2 else "black")
        ax.set_title(f"{d['label']}: confusion ({cm['split']})", fontsize=9)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    for ax in flat[panels:]:
        ax.set_visible(False)
    fig.tight_layout()
    target = Path(out) if out else Path(run_dirs[0]) / "curves.png"
    fig.savefig(target, dpi=100)
    plt.close(fig)
    return {"out": str(target), "runs": [d["run_dir"] for d in data], "quantities": quantities,
            "confusion": [{"run_dir": d["run_dir"], **cm} for d, cm in cms], "confusion_skipped": skipped}


@app.command()
def plot(
    run_dirs: Annotated[list[str], typer.Argument(help="One or more run directories (overlaid).")],
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="PNG file (default: RUN_DIR/curves.png).")] = None,
    no_confusion: Annotated[bool, typer.Option("--no-confusion", help="Skip the confusion matrix.")] = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """Plot learning curves of one or more runs and, for classification, the confusion matrix.

    Loss and each metric vs epoch (train solid, val dashed, runs overlaid), the best epoch dotted and an
    early stop marked x; the confusion matrix is on the validation split (else test, else train)."""
    res = _guard(lambda: plot_runs(run_dirs, out, not no_confusion), as_json)
    def render():
        c = _console()
        for s in res["confusion_skipped"]:
            c.print(f"[yellow]warning:[/] no confusion matrix for {s['run_dir']}: {s['reason']}", soft_wrap=True)
        c.print(f"wrote {res['out']}")

    _emit(res, as_json, quiet, render)
