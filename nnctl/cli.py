"""The `nnctl` command line: each command is a few lines over a library function.

Only typer is imported at start-up, so `nnctl --help` is instant; JAX loads when a command needs it.
User mistakes (NnctlError) print a located message and exit 2 (130/143 when interrupted); never a traceback.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Callable, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train neural networks from YAML specs (Flax + Optax, compiled by XLA).")
inspect_app = typer.Typer(no_args_is_help=True, help="Look at a model without training it.")
app.add_typer(inspect_app, name="inspect")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as one JSON document on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]


def _console(stderr: bool = False):
    from rich.console import Console
    return Console(stderr=stderr, highlight=False)


def _esc(obj: Any) -> str:
    """User text (messages can contain [brackets]) must not be read as rich markup."""
    from rich.markup import escape
    return escape(str(obj))


def _guard(fn: Callable[[], Any], as_json: bool) -> Any:
    """Run a command body; user errors become a message and an exit code, not a traceback."""
    from nnctl.errors import NnctlError, SpecError
    try:
        return fn()
    except NnctlError as e:
        if as_json:
            doc: dict[str, Any] = {"ok": False, "error": type(e).__name__, "message": str(e)}
            if isinstance(e, SpecError):
                doc["problems"] = [p.__dict__ for p in e.problems]
            print(json.dumps(doc))
        else:
            _console(stderr=True).print(f"[bold red]error:[/] {_esc(e)}", markup=True, soft_wrap=True, highlight=False)
        raise typer.Exit(e.exit_code) from None


def _emit(doc: Any, as_json: bool, quiet: bool, render: Callable[[], None]) -> None:
    if as_json:
        print(json.dumps(doc, default=str))
    elif not quiet:
        render()


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


# -------------------------------------------------------------------------------------------- train

@app.command()
def train(
    spec: Annotated[Optional[str], typer.Argument(help="The YAML spec to train.")] = None,
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="Run directory (must not exist).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a key: train.epochs=5")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Override the spec's seed.")] = None,
    resume: Annotated[Optional[str], typer.Option("--resume", help="Continue RUN_DIR from its newest checkpoint "
                                                  "(under the run's saved spec; no SPEC argument).")] = None,
    coordinator: Annotated[Optional[str], typer.Option(
        "--coordinator", envvar="NNCTL_COORDINATOR",
        help="Multi-process training: HOST:PORT of process 0 (starts jax.distributed).")] = None,
    num_processes: Annotated[Optional[int], typer.Option(
        "--num-processes", envvar="NNCTL_NUM_PROCESSES", help="Multi-process: how many processes.")] = None,
    process_id: Annotated[Optional[int], typer.Option(
        "--process-id", envvar="NNCTL_PROCESS_ID",
        help="Multi-process: this process's index (0 writes the run directory).")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """Train a spec and write a run directory (spec, weights, optimizer state, metrics, checkpoints, summary).

    Ctrl-C (SIGINT) or SIGTERM: the step in flight finishes, a checkpoint is written, and the command exits
    130/143 saying how to resume."""
    from nnctl.errors import NnctlError
    from nnctl.progress import TrainDisplay
    display = TrainDisplay(enabled=not (quiet or as_json))

    def body():
        from nnctl.parallel import initialize
        initialize(coordinator, num_processes, process_id)
        if resume is not None:
            if spec is not None or out is not None or set_ or seed is not None:
                raise NnctlError("--resume RUN_DIR continues a run under its saved spec: give no SPEC, --out, "
                                 "--set or --seed with it")
            from nnctl.run import resume_run
            with display:
                return resume_run(resume, on_start=display.start, on_epoch=display.epoch)
        if spec is None:
            raise NnctlError("give a SPEC to train, or --resume RUN_DIR")
        from nnctl.run import train_run
        with display:
            return train_run(spec, out, tuple(set_ or ()), seed, on_start=display.start, on_epoch=display.epoch)

    def guarded():
        from nnctl.errors import TrainingInterrupted
        try:
            return body()
        except TrainingInterrupted as e:
            if as_json:
                raise
            _console(stderr=True).print(f"[bold yellow]interrupted:[/] {_esc(e)}", soft_wrap=True, highlight=False)
            raise typer.Exit(e.exit_code) from None

    res = _guard(guarded, as_json)
    _emit(res.summary, as_json, quiet, lambda: display.final(res.summary))
    if res.summary["status"] == "failed":
        raise typer.Exit(1)


# --------------------------------------------------------------------------------------------- eval

@app.command("eval")
def eval_(
    run_dir: Annotated[str, typer.Argument(help="A run directory written by `nnctl train`.")],
    split: Annotated[str, typer.Option(help="test | val | train")] = "test",
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """Rebuild a trained model from its run directory and report loss and metrics on a split."""
    from nnctl.errors import NnctlError

    if split not in ("test", "val", "train"):
        _guard(lambda: (_ for _ in ()).throw(NnctlError(f"--split must be test, val or train, got '{split}'")),
               as_json)

    def body():
        from nnctl.run import evaluate_run
        return evaluate_run(run_dir, split)

    res = _guard(body, as_json)

    def render():
        from rich.table import Table
        c = _console()
        c.print(f"[bold]{_esc(run_dir)}[/]: {split} split, {res['examples']} examples")
        t = Table()
        t.add_column("metric")
        t.add_column("value", justify="right")
        for k, v in res["metrics"].items():
            t.add_row(k, _fmt(v))
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

    _emit(res, as_json, quiet, render)


# ------------------------------------------------------------------------------------------ predict

@app.command()
def predict(
    run_dir: Annotated[str, typer.Argument(help="A run directory written by `nnctl train`.")],
    input: Annotated[str, typer.Option("--input", "-i", help="CSV (with a header) or .npz of inputs.")],
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write predictions (.csv or .npz).")] = None,
    encode: Annotated[Optional[str], typer.Option("--encode", help="Output the codes of this layer instead "
                                                  "(an autoencoder's code layer; z_mean of a vae).")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """Apply a trained model (with its saved normaliser) to new inputs."""
    def body():
        if encode:
            from nnctl.objectives.sampling import encode_run
            return encode_run(run_dir, input, encode, output)
        from nnctl.run import predict_run
        return predict_run(run_dir, input, output)

    res = _guard(body, as_json)
    if encode:
        _emit(res, as_json, quiet, lambda: _console().print(
            f"wrote {res['examples']} codes of layer {encode} to {output}" if output else
            "\n".join(f"{i}: {[round(v, 4) for v in c]}" for i, c in enumerate(res["codes"][:50]))))
        return

    def render():
        c = _console()
        if output:
            c.print(f"wrote {res['examples']} predictions to {output}")
            return
        key = "classes" if "classes" in res else "values"
        for i, v in enumerate(res[key][:50]):
            extra = f"  p={[round(p, 4) for p in res['probabilities'][i]]}" if "probabilities" in res else ""
            c.print(f"{i}: {v}{extra}")
        if res["examples"] > 50:
            c.print(f"... {res['examples'] - 50} more (use --output)")

    _emit(res, as_json, quiet, render)


# ------------------------------------------------------------------------------------------ inspect

@inspect_app.command("params")
def inspect_params(
    spec: Annotated[str, typer.Argument(help="A spec file or a run directory.")],
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a key.")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """One row per parameter array and per layer, then Total / Trainable / Non-trainable / Frozen."""
    def body():
        from nnctl.spec import load_spec
        from nnctl.summary import params_report
        return params_report(load_spec(spec, tuple(set_ or ()), require_sources=False))

    res = _guard(body, as_json)

    def render():
        from rich.table import Table

        from nnctl.summary import human_bytes
        t = Table(title="parameters")
        for col, just in (("layer", "left"), ("path", "left"), ("shape", "left"), ("count", "right"), ("kind", "left")):
            t.add_column(col, justify=just)
        for r in res["parameters"]:
            t.add_row(r["layer"], r["path"], str(tuple(r["shape"])), f"{r['count']:,}", r["kind"])
        c = _console()
        c.print(t)
        lt = Table(title="layers")
        lt.add_column("layer")
        lt.add_column("parameters", justify="right")
        for r in res["layers"]:
            lt.add_row(r["layer"], f"{r['count']:,}")
        c.print(lt)
        tot = res["totals"]
        for label, key in (("Total", "total"), ("Trainable", "trainable"), ("Non-trainable", "non_trainable"),
                           ("Frozen", "frozen")):
            c.print(f"{label + ' params:':<22}{tot[key]['count']:>12,}  ({human_bytes(tot[key]['bytes'])})")

    _emit(res, as_json, quiet, render)


@inspect_app.command("model")
def inspect_model(
    spec: Annotated[str, typer.Argument(help="A spec file or a run directory.")],
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a key.")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """Each layer's output shape, from the spec alone."""
    def body():
        from nnctl.spec import load_spec
        from nnctl.summary import model_report
        return model_report(load_spec(spec, tuple(set_ or ()), require_sources=False))

    res = _guard(body, as_json)

    def render():
        from rich.table import Table
        t = Table(title=f"model (input {tuple(res['input_shape'])})")
        for col in ("layer", "type", "inputs", "output shape", "activation"):
            t.add_column(col)
        for r in res["layers"]:
            shape = "" if r["output_shape"] is None else str(tuple(r["output_shape"]))
            t.add_row(r["name"], r["type"], ", ".join(r["inputs"]), shape, r["activation"] or "")
        c = _console()
        c.print(t)
        for w in res["warnings"]:
            c.print(f"[yellow]warning:[/] {_esc(w)}")

    _emit(res, as_json, quiet, render)


# ----------------------------------------------------------------------------------------- validate

@app.command()
def validate(
    specs: Annotated[list[str], typer.Argument(help="Spec files to check.")],
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """Check specs without training: exit 0 when all are valid, 2 otherwise."""
    from nnctl.errors import SpecError
    from nnctl.spec import load_spec

    results, bad = [], 0
    for s in specs:
        try:
            loaded = load_spec(s, require_sources=False)
            results.append({"spec": s, "ok": True, "warnings": [str(w) for w in loaded.analysis.warnings]})
        except SpecError as e:
            bad += 1
            results.append({"spec": s, "ok": False, "problems": [str(p) for p in e.problems]})
    if as_json:
        print(json.dumps({"ok": bad == 0, "results": results}))
    elif not quiet or bad:
        c = _console(stderr=bool(bad))
        for r in results:
            if r["ok"]:
                if not quiet:
                    c.print(f"[green]ok[/] {r['spec']}")
                    for w in r["warnings"]:
                        c.print(f"  [yellow]warning:[/] {_esc(w)}")
            else:
                for p in r["problems"]:
                    c.print(f"[red]error:[/] {_esc(p)}", soft_wrap=True)
    if bad:
        raise typer.Exit(2)


# ------------------------------------------------------------------------------------------- schema

@app.command()
def schema(
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="Write to a file instead of stdout.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="With --out: print {\"path\": ...} as JSON.")] = False,
    quiet: QuietOpt = False,
):
    """Print the JSON Schema of the spec language (for editors' YAML language servers).

    The schema itself is always JSON; with --out it goes to the file and the command reports where
    (nothing with --quiet, a JSON document with --json)."""
    from nnctl.spec.models import Spec
    doc = Spec.model_json_schema()
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["title"] = "nnctl spec"
    text = json.dumps(doc, indent=2)
    if out:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        _emit({"path": out}, as_json, quiet, lambda: _console().print(f"wrote the spec schema to {out}"))
    else:
        print(text)


# Commands of other areas live in their own modules (each imports `app` from here and decorates its
# functions); list them here.
COMMAND_MODULES: list[str] = ["cli_ops", "cli_time", "cli_learn"]
for _m in COMMAND_MODULES:
    __import__(f"nnctl.{_m}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
