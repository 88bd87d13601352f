"""`nnctl train`, `nnctl eval` and `nnctl predict`: a run directory written, scored and applied."""

from __future__ import annotations

from typing import Annotated

import typer

from nnctl.cli import app
from nnctl.cli.common import JsonOpt, QuietOpt, console, emit, error, esc, fmt, guard

SpecArg = Annotated[str | None, typer.Argument(help="The YAML spec to train.")]
OutOpt = Annotated[str | None, typer.Option("--out", "-o", help="Run directory (must not exist).")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a key: train.epochs=5")]
SeedOpt = Annotated[int | None, typer.Option(help="Override the spec's seed.")]
ResumeOpt = Annotated[
    str | None,
    typer.Option(
        "--resume", help="Continue RUN_DIR from its newest checkpoint (under the run's saved spec; no SPEC argument)."
    ),
]
CoordinatorOpt = Annotated[
    str | None,
    typer.Option(
        "--coordinator",
        envvar="NNCTL_COORDINATOR",
        help="Multi-process training: HOST:PORT of process 0 (starts jax.distributed).",
    ),
]
ProcessesOpt = Annotated[
    int | None, typer.Option("--num-processes", envvar="NNCTL_NUM_PROCESSES", help="Multi-process: how many processes.")
]
ProcessIdOpt = Annotated[
    int | None,
    typer.Option(
        "--process-id",
        envvar="NNCTL_PROCESS_ID",
        help="Multi-process: this process's index (0 writes the run directory).",
    ),
]


@app.command()
def train(
    spec: SpecArg = None,
    out: OutOpt = None,
    set_: SetOpt = None,
    seed: SeedOpt = None,
    resume: ResumeOpt = None,
    coordinator: CoordinatorOpt = None,
    num_processes: ProcessesOpt = None,
    process_id: ProcessIdOpt = None,
    skip_memory_check: Annotated[
        bool,
        typer.Option(
            "--skip-memory-check", help="Train even when the estimated memory exceeds the device's (nnctl.app.memory)."
        ),
    ] = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """Train a spec and write a run directory (spec, weights, optimizer state, metrics, checkpoints, summary).

    Ctrl-C (SIGINT) or SIGTERM: the step in flight finishes, a checkpoint is written, and the command exits
    130/143 saying how to resume."""
    from nnctl import interrupt

    with interrupt.early():  # first thing: a Ctrl-C from now on is noted and acted on at a phase boundary
        multi = (coordinator, num_processes, process_id)
        _train(spec, out, set_, seed, resume, multi, not skip_memory_check, as_json, quiet)


def _train(spec, out, set_, seed, resume, multi, memory_check: bool, as_json: bool, quiet: bool) -> None:
    from nnctl.cli.progress import TrainDisplay
    from nnctl.errors import NnctlError, TrainingInterrupted

    display = TrainDisplay(enabled=not (quiet or as_json))

    def body():
        from nnctl.app import resume_run, train_run
        from nnctl.app.banner import banner
        from nnctl.parallel import initialize

        initialize(*multi)
        on_start = lambda b, run, e: display.start(banner(b, run, e))
        if resume is not None:
            if spec is not None or out is not None or set_ or seed is not None:
                raise NnctlError(
                    "--resume RUN_DIR continues a run under its saved spec: give no SPEC, --out, "
                    "--set or --seed with it"
                )
            with display:
                return resume_run(resume, on_start, display.epoch, memory_check)
        if spec is None:
            raise NnctlError("give a SPEC to train, or --resume RUN_DIR")
        with display:
            return train_run(spec, out, tuple(set_ or ()), seed, on_start, display.epoch, memory_check=memory_check)

    def guarded():
        try:
            return body()
        except TrainingInterrupted as e:
            if as_json:
                raise
            console(stderr=True).print(f"[bold yellow]interrupted:[/] {esc(e)}", soft_wrap=True, highlight=False)
            raise typer.Exit(e.exit_code) from None

    res = guard(guarded, as_json)
    emit(res.summary, as_json, quiet, lambda: display.final(res.summary))
    if res.summary["status"] == "failed":
        error(res.summary.get("message") or f"the run failed ({res.summary.get('stop_reason')})")
        raise typer.Exit(1)


@app.command("eval")
def eval_(
    run_dir: Annotated[str, typer.Argument(help="A run directory written by `nnctl train`.")],
    split: Annotated[str, typer.Option(help="test | val | train")] = "test",
    data: Annotated[
        str | None,
        typer.Option(
            "--data", help="Score this file of new labelled examples (read with the run's columns and scalers)."
        ),
    ] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """Rebuild a trained model from its run directory and report loss and metrics on a split (the examples it
    was tested on: a changed data file is refused, or its saved test examples scored with a warning), or on
    new labelled data with --data."""
    from nnctl.errors import NnctlError

    def body():
        if split not in ("test", "val", "train"):
            raise NnctlError(f"--split must be test, val or train, got '{split}'")
        from nnctl.app import evaluate_run

        return evaluate_run(run_dir, split, data)

    res = guard(body, as_json)
    for w in res.get("warnings", []):
        console(stderr=True).print(f"[bold yellow]warning:[/] {esc(w)}", soft_wrap=True)

    def render():
        from rich.table import Table

        c = console()
        what = f"{esc(data)}" if data else f"{split} split"
        c.print(f"[bold]{esc(run_dir)}[/]: {what}, {res['examples']} examples")
        t = Table()
        t.add_column("metric")
        t.add_column("value", justify="right")
        for k, v in res["metrics"].items():
            t.add_row(k, fmt(v))
        c.print(t)
        if "confusion_matrix" in res:
            cm = res["confusion_matrix"]
            names = res.get("class_names") or [str(i) for i in range(len(cm))]
            c.print("confusion matrix (rows: true class, columns: predicted class)")
            m = Table()
            m.add_column("")
            for n in names:
                m.add_column(str(n), justify="right")
            for n, row in zip(names, cm):
                m.add_row(str(n), *[str(v) for v in row])
            c.print(m)

    emit(res, as_json, quiet, render)


@app.command()
def predict(
    run_dir: Annotated[str, typer.Argument(help="A run directory written by `nnctl train`.")],
    input: Annotated[
        str,
        typer.Option(
            "--input",
            "-i",
            help="CSV with a header row naming the run's input columns (listed by `nnctl inspect inputs RUN`), or "
            ".npz of inputs, .parquet, an image file or a folder of images.",
        ),
    ],
    output: Annotated[str | None, typer.Option("--output", "-o", help="Write predictions (.csv or .npz).")] = None,
    encode: Annotated[
        str | None,
        typer.Option(
            "--encode", help="Output the codes of this layer instead (an autoencoder's code layer; z_mean of a vae)."
        ),
    ] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """Apply a trained model (with its saved normaliser) to new inputs."""

    def body():
        from nnctl.app import predict_run
        from nnctl.app.sample import encode_run

        return encode_run(run_dir, input, encode, output) if encode else predict_run(run_dir, input, output)

    res = guard(body, as_json)
    for w in res.get("warnings", []):
        console(stderr=True).print(f"[bold yellow]warning:[/] {esc(w)}", soft_wrap=True)
    if encode:
        emit(
            res,
            as_json,
            quiet,
            lambda: console().print(
                f"wrote {res['examples']} codes of layer {encode} to {output}"
                if output
                else "\n".join(f"{i}: {[round(v, 4) for v in c]}" for i, c in enumerate(res["codes"][:50]))
            ),
        )
        return

    def render():
        c = console()
        if output:
            c.print(f"wrote {res['examples']} predictions to {output}")
            return
        key = "labels" if "labels" in res else "values"
        for i, v in enumerate(res[key][:50]):
            extra = f"  p={[round(p, 4) for p in res['probabilities'][i]]}" if "probabilities" in res else ""
            if "anomaly_scores" in res:  # autoencoders and vaes: the reconstruction error
                extra += f"  anomaly_score={res['anomaly_scores'][i]:.6g}"
            c.print(f"{esc(res['names'][i]) if 'names' in res else i}: {esc(v)}{extra}")
        if res["examples"] > 50:
            c.print(f"... {res['examples'] - 50} more (use --output)")

    emit(res, as_json, quiet, render)
