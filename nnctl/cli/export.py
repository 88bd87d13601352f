"""`nnctl export RUN --format onnx|stablehlo`: the trained model as a file other runtimes load, checked
against the run's own predictions before it is written."""

from __future__ import annotations

from typing import Annotated

import typer

from nnctl.cli import app
from nnctl.cli.common import JsonOpt, QuietOpt, console, emit, guard


def need_extra(extra: str, e: ModuleNotFoundError) -> Exception:
    """A missing optional dependency as a user error naming the extra that installs it."""
    from nnctl.errors import NnctlError

    return NnctlError(
        f"this command needs the '{extra}' extra ({e.name} is not installed): pip install 'nnctl[{extra}]'"
    )


@app.command("export")
def export_cmd(
    run_dir: Annotated[str, typer.Argument(help="A run directory written by `nnctl train`.")],
    format: Annotated[str, typer.Option("--format", "-f", help="onnx | stablehlo")] = "onnx",
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Directory to write (default RUN/export-FORMAT).")
    ] = None,
    batch: Annotated[
        str, typer.Option("--batch", help="'dynamic' (any batch size) or a fixed batch size N.")
    ] = "dynamic",
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """Export a run to ONNX or StableHLO (with metadata.json), verified against `nnctl predict`."""

    def body():
        try:
            from nnctl.app.export import export_run
        except ModuleNotFoundError as e:
            raise need_extra("export", e) from None
        return export_run(run_dir, format, output, batch)

    res = guard(body, as_json)

    def render():
        v = res["verification"]
        c = console()
        c.print(f"wrote {res['path']} (batch {res['batch']}) and {res['metadata_path']}")
        c.print(
            f"verified on {v['examples']} {v['split']} examples against nnctl predict: "
            f"max abs difference {v['max_abs_diff']:.3g}"
        )

    res.pop("spec", None)  # the spec is in metadata.json; not repeated on the terminal
    emit(res, as_json, quiet, render)
