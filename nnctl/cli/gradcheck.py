"""`nnctl gradcheck SPEC`: finite differences against automatic differentiation, per parameter array."""

from __future__ import annotations

from typing import Annotated

import typer

from nnctl.cli import app
from nnctl.cli.common import JsonOpt, QuietOpt, console, emit, esc, guard


@app.command("gradcheck")
def gradcheck_cmd(
    spec: Annotated[str, typer.Argument(help="The YAML spec (a sequential model).")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a key.")] = None,
    examples: Annotated[int, typer.Option(help="Training examples the loss is taken over.")] = 4,
    entries: Annotated[int, typer.Option(help="Entries checked per parameter array (all when fewer).")] = 8,
    h: Annotated[float, typer.Option(help="Finite-difference step.")] = 1e-6,
    tolerance: Annotated[float, typer.Option(help="Largest relative error that passes.")] = 1e-5,
    seed: Annotated[int, typer.Option(help="Which entries are checked.")] = 0,
    jitter: Annotated[float, typer.Option(help="Std of the noise added to the initial weights (off a kink).")] = 1e-3,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """Check the gradient of the spec's loss: central differences (E(w+h) - E(w-h)) / 2h against autodiff for
    entries of every parameter array, in float64. Exit code 1 when an array's relative error is over the tolerance."""

    def body():
        from nnctl.app.gradcheck import gradcheck

        return gradcheck(spec, tuple(set_ or ()), examples, entries, h, tolerance, seed, jitter)

    res = guard(body, as_json)

    def render():
        from rich.table import Table

        t = Table(title=f"gradient check: {esc(res['spec'])} (h {res['h']:g}, tolerance {res['tolerance']:g})")
        for col in ("array", "shape", "checked", "max |num - auto|", "relative error", ""):
            t.add_column(col)
        for r in res["arrays"]:
            mark = "ok" if r["ok"] else "[bold red]WRONG[/]"
            t.add_row(
                esc(r["path"]), str(tuple(r["shape"])), str(r["checked"]),
                f"{r['max_abs_diff']:.2e}", f"{r['relative_error']:.2e}", mark,
            )  # fmt: skip
        c = console()
        c.print(t)
        c.print("gradients agree" if res["ok"] else f"gradient check FAILED (worst: {esc(res['worst'])})")

    emit(res, as_json, quiet, render)
    if not res["ok"]:
        raise typer.Exit(1)
