"""Commands on specs, without training: `nnctl inspect params|model`, `nnctl validate`, `nnctl schema`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nnctl.cli import app
from nnctl.cli.common import JsonOpt, QuietOpt, console, emit, esc, guard

if TYPE_CHECKING:
    from rich.console import JustifyMethod

inspect_app = typer.Typer(no_args_is_help=True, help="Look at a model without training it.")
app.add_typer(inspect_app, name="inspect")


@inspect_app.command("params")
def inspect_params(
    spec: Annotated[str, typer.Argument(help="A spec file or a run directory.")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a key.")] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Write each layer's count as its formula (conv2d: 3·3·3·64 + 64).")
    ] = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """One row per parameter array and per layer, then Total / Trainable / Non-trainable / Frozen."""

    def body():
        from nnctl.app.inspect import params_report
        from nnctl.spec import load_spec

        return params_report(load_spec(spec, tuple(set_ or ()), require_sources=False), explain)

    res = guard(body, as_json)

    def render():
        from rich.table import Table

        from nnctl.app.inspect import human_bytes

        t = Table(title="parameters")
        columns: tuple[tuple[str, JustifyMethod], ...] = (
            ("layer", "left"),
            ("path", "left"),
            ("shape", "left"),
            ("count", "right"),
            ("kind", "left"),
        )
        for col, just in columns:
            t.add_column(col, justify=just)
        for r in res["parameters"]:
            t.add_row(r["layer"], r["path"], str(tuple(r["shape"])), f"{r['count']:,}", r["kind"])
        c = console()
        c.print(t)
        lt = Table(title="layers")
        lt.add_column("layer")
        lt.add_column("parameters", justify="right")
        for r in res["layers"]:
            lt.add_row(r["layer"], f"{r['count']:,}")
        c.print(lt)
        if explain:
            ft = Table(title="parameter formulas")
            for col in ("layer", "type", "count"):
                ft.add_column(col)
            for r in res["formulas"]:
                ft.add_row(r["layer"], r["type"], r["text"] + ("" if r["source"] == "formula" else "  (its arrays)"))
            c.print(ft)
        tot = res["totals"]
        for label, key in (
            ("Total", "total"),
            ("Trainable", "trainable"),
            ("Non-trainable", "non_trainable"),
            ("Frozen", "frozen"),
        ):
            c.print(f"{label + ' params:':<22}{tot[key]['count']:>12,}  ({human_bytes(tot[key]['bytes'])})")

    emit(res, as_json, quiet, render)


@inspect_app.command("inputs")
def inspect_inputs(
    run_dir: Annotated[str, typer.Argument(help="A run directory.")],
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """The input columns `nnctl predict` needs for a run (with the known categories), and its classes."""

    def body():
        from nnctl.app.predict_io import run_inputs

        return run_inputs(run_dir)

    res = guard(body, as_json)

    def render():
        c = console()
        if res["columns"] is None:
            c.print(
                f"{res['input_values']} input values per example, shape {res['input_shape']} (an .npz `x` array, "
                f"or CSV columns in order under a header row)"
            )
        else:
            c.print("CSV columns (a header row naming them; any order, other columns are ignored):")
            for col in res["columns"]:
                cats = col["categories"]
                c.print(f"  {esc(col['name'])}" + (f"  (one of: {esc(', '.join(cats))})" if cats else ""))
        if res["classes"]:
            c.print(f"classes: {esc(', '.join(res['classes']))}")

    emit(res, as_json, quiet, render)


@inspect_app.command("model")
def inspect_model(
    spec: Annotated[str, typer.Argument(help="A spec file or a run directory.")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a key.")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """Each layer's output shape, from the spec alone."""

    def body():
        from nnctl.app.inspect import model_report
        from nnctl.spec import load_spec

        return model_report(load_spec(spec, tuple(set_ or ()), require_sources=False))

    res = guard(body, as_json)

    def render():
        from rich.table import Table

        t = Table(title=f"model (input {tuple(res['input_shape'])})")
        for col in ("layer", "type", "inputs", "output shape", "activation"):
            t.add_column(col)
        for r in res["layers"]:
            shape = "" if r["output_shape"] is None else str(tuple(r["output_shape"]))
            t.add_row(r["name"], r["type"], ", ".join(r["inputs"]), shape, r["activation"] or "")
        c = console()
        c.print(t)
        for w in res["warnings"]:
            c.print(f"[yellow]warning:[/] {esc(w)}")

    emit(res, as_json, quiet, render)


@app.command()
def validate(
    specs: Annotated[list[str], typer.Argument(help="Spec files to check.")],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a key (as for train): train.epochs=5")
    ] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """Check specs without training: exit 0 when all are valid, 2 otherwise."""
    from nnctl.app.memory import check_spec_sizes
    from nnctl.errors import SpecError
    from nnctl.spec import load_spec

    results: list[dict[str, Any]] = []
    bad = 0
    for s in specs:
        try:
            loaded = load_spec(s, tuple(set_ or ()), require_sources=False)
            assert loaded.analysis is not None  # load_spec checks the spec by default
            check_spec_sizes(loaded)  # what `train` would refuse before allocating: an absurd size
            results.append({"spec": s, "ok": True, "warnings": [str(w) for w in loaded.analysis.warnings]})
        except SpecError as e:
            bad += 1
            results.append({"spec": s, "ok": False, "problems": [str(p) for p in e.problems]})
    if as_json:
        print(json.dumps({"ok": bad == 0, "results": results}))
    elif not quiet or bad:
        c = console(stderr=bool(bad))
        for r in results:
            if r["ok"]:
                if not quiet:
                    c.print(f"[green]ok[/] {r['spec']}")
                    for w in r["warnings"]:
                        c.print(f"  [yellow]warning:[/] {esc(w)}")
            else:
                for p in r["problems"]:
                    c.print(f"[red]error:[/] {esc(p)}", soft_wrap=True)
    if bad:
        raise typer.Exit(2)


@app.command()
def schema(
    out: Annotated[str | None, typer.Option("--out", "-o", help="Write to a file instead of stdout.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help='With --out: print {"path": ...} as JSON.', metavar="")
    ] = False,
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
        emit({"path": out}, as_json, quiet, lambda: console().print(f"wrote the spec schema to {out}"))
    else:
        print(text)
