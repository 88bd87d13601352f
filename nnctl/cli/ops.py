"""Operations commands: `nnctl runs` (a table of run directories) and `nnctl plot` (learning curves and the
confusion matrix). The data come from nnctl.app.runs and nnctl.app.plots; this module renders them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nnctl.cli import app
from nnctl.cli.common import JsonOpt, QuietOpt, console, emit, fmt, guard

if TYPE_CHECKING:
    from rich.console import JustifyMethod

STATUS_TEXT = {
    "finished": "finished",
    "stopped_early": "stopped early",
    "interrupted": "interrupted",
    "failed": "failed",
    "running": "running",
}


@app.command()
def runs(
    root: Annotated[str, typer.Argument(help="A directory of runs (default: runs).")] = "runs",
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """A table of runs: name, date, status, best epoch, best validation metric, duration.

    Status is finished, stopped early, interrupted (resumable), failed or running."""

    def body():
        from nnctl.app.runs import list_runs

        return list_runs(root)

    res = guard(body, as_json)

    def render():
        from rich.table import Table

        t = Table(title=f"runs in {root}")
        columns: tuple[tuple[str, JustifyMethod], ...] = (
            ("name", "left"),
            ("date", "left"),
            ("status", "left"),
            ("epochs", "right"),
            ("best epoch", "right"),
            ("best value", "left"),
            ("duration", "right"),
        )
        for col, just in columns:
            t.add_column(col, justify=just)
        names = [r["name"] for r in res]
        for r in res:
            best = f"{r['monitor']} {fmt(r['best_value'])}" if r["best_value"] is not None else ""
            dur = f"{r['duration_s']:.1f} s" if r["duration_s"] is not None else ""
            status = STATUS_TEXT.get(r["status"], str(r["status"]))
            if r["stop_reason"] and r["status"] == "stopped_early":
                status += f" ({r['stop_reason']})"
            name = r["name"] if names.count(r["name"]) == 1 else f"{r['name']} ({Path(r['run_dir']).name})"
            t.add_row(
                name,
                (r["date"] or "")[:16].replace("T", " "),
                status,
                fmt(r["epochs"] or ""),
                fmt(r["best_epoch"] or ""),
                best,
                dur,
            )
        c = console()
        if not c.is_terminal:
            c.width = max(c.width, 120)  # piped: do not squeeze the table into 80 columns
        c.print(t)
        if not res:
            console().print(f"no runs in {root}")

    emit(res, as_json, quiet, render)


@app.command()
def plot(
    run_dirs: Annotated[list[str], typer.Argument(help="One or more run directories (overlaid).")],
    out: Annotated[str | None, typer.Option("--out", "-o", help="PNG file (default: RUN_DIR/curves.png).")] = None,
    no_confusion: Annotated[
        bool, typer.Option("--no-confusion", help="Skip the confusion matrix.", metavar="")
    ] = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """Plot learning curves of one or more runs and, for classification, the confusion matrix.

    Loss and each metric vs epoch (train solid, val dashed, runs overlaid), the best epoch dotted and an
    early stop marked x; the confusion matrix is on the validation split (else test, else train). A run
    trained with `train.diagnostics: true` also gets a per-layer figure (OUT-diagnostics.png)."""

    def body():
        from nnctl.app.plots import plot_runs

        return plot_runs(run_dirs, out, not no_confusion)

    res = guard(body, as_json)

    def render():
        c = console()
        for s in res["confusion_skipped"]:
            c.print(f"[yellow]warning:[/] no confusion matrix for {s['run_dir']}: {s['reason']}", soft_wrap=True)
        c.print(f"wrote {res['out']}")
        for path in res.get("diagnostics", []):  # runs trained with train.diagnostics: the per-layer figure
            c.print(f"wrote {path}")

    emit(res, as_json, quiet, render)
