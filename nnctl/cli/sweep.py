"""`nnctl sweep`: a hyperparameter search over the spec's `search:` section (nnctl.app.sweep.run_sweep)."""

from __future__ import annotations

from typing import Annotated

import typer

from nnctl.cli import app
from nnctl.cli.common import JsonOpt, QuietOpt, console, emit, esc, fmt, guard


def _eta(s: float | None) -> str:
    if s is None:
        return "?"
    return f"{s / 60:.1f} min" if s >= 90 else f"{s:.0f} s"


@app.command()
def sweep(
    spec: Annotated[str, typer.Argument(help="A spec with a search: section.")],
    trials: Annotated[
        int | None, typer.Option("--trials", help="Trials in the study (default: search.trials).")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="Trial processes on this machine.")] = 1,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="Database URL shared by workers and machines, e.g. postgresql://user@host/db "
            "(default: a journal file in the sweep directory).",
        ),
    ] = None,
    study: Annotated[str | None, typer.Option("--study", help="Study name (default: the spec's name).")] = None,
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="Sweep directory (default: sweeps/<name>); a rerun resumes.")
    ] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """Search the spec's hyperparameters with Optuna: each trial a run directory under the sweep directory,
    then trials.csv, best.yaml and plots. Ctrl-C keeps finished trials; the same command resumes."""
    from nnctl.errors import TrainingInterrupted

    show = not (quiet or as_json)
    err = console(stderr=True)

    def on_progress(p):
        if show:
            best = f"best {fmt(p.best)} (trial {p.best_trial})" if p.best is not None else "no result yet"
            err.print(
                f"trials {p.done}/{p.budget} · {best} · pruned {p.pruned} · failed {p.failed} · "
                f"running {p.running} · ETA {_eta(p.eta_s)}",
                highlight=False,
            )

    def body():
        try:
            from nnctl.app.sweep import run_sweep
        except ImportError as e:
            from nnctl.errors import NnctlError

            raise NnctlError(f"nnctl sweep needs Optuna ({e.name} is missing): pip install 'nnctl[sweep]'") from None
        try:
            return run_sweep(spec, out, trials, workers, storage, study, on_progress)
        except TrainingInterrupted as e:
            if as_json:
                raise
            err.print(f"[bold yellow]interrupted:[/] {esc(e)}", soft_wrap=True, highlight=False)
            raise typer.Exit(e.exit_code) from None

    res = guard(body, as_json)
    emit(res.to_dict(), as_json, quiet, lambda: _render(res))


def _render(res) -> None:
    from rich.table import Table

    c = console()
    if not c.is_terminal:
        c.width = max(c.width, 120)  # piped: do not squeeze the table into 80 columns
    t = Table(title=f"top trials of {res.study} ({res.direction} {res.metric})")
    params = [k for k in (res.top[0] if res.top else {}) if k.startswith("params.")]
    short = [p[len("params.") :].removeprefix("train.").removeprefix("model.") for p in params]
    for col in ("trial", res.metric, "epochs", "duration", *short):
        t.add_column(col, justify="right")
    for r in res.top:
        dur = f"{r['duration_s']:.1f} s" if r["duration_s"] is not None else ""
        t.add_row(str(r["trial"]), fmt(r["value"]), fmt(r["epochs"] or ""), dur, *(fmt(r[p]) for p in params))
    c.print(t)
    p = res.progress
    c.print(f"{p.done} trials done ({p.pruned} pruned, {p.failed} failed) in {res.sweep_dir}; study in {res.storage}")
    if res.best is not None:
        c.print(f"best: trial {res.best['trial']} {res.metric} {fmt(res.best['value'])}: {res.best['run_dir']}")
        c.print(f"train it again: nnctl train {res.sweep_dir}/best.yaml")
    if res.population > 1:
        c.print(f"population: {res.population} trials trained at once per compiled program")
    if res.population_note:
        c.print(esc(res.population_note))
    for name, why in res.skipped_plots.items():
        c.print(f"no {name}: {esc(why)}")
