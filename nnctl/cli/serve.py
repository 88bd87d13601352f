"""`nnctl serve RUN`: an HTTP prediction service (FastAPI + uvicorn) with a page at / a person can use."""

from __future__ import annotations

from typing import Annotated

import typer

from nnctl.cli import app
from nnctl.cli.common import console, esc, guard
from nnctl.cli.export import need_extra


@app.command("serve")
def serve_cmd(
    run_dir: Annotated[str, typer.Argument(help="A run directory written by `nnctl train`.")],
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 exposes it to the network (a warning).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    max_batch: Annotated[int, typer.Option("--max-batch", help="Largest micro-batch (compiled at start).")] = 64,
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="NNCTL_API_KEY", help="Require this X-API-Key header.")
    ] = None,
):
    """Serve a run: POST /predict, POST /predict/csv, GET /healthz, GET /metadata, /docs, and a page at /."""

    def body():
        try:
            from nnctl.app.serve import serve_run
        except ModuleNotFoundError as e:
            raise need_extra("serve", e) from None
        err = console(stderr=True)
        serve_run(run_dir, host, port, max_batch, api_key, say=lambda m: err.print(esc(m)))

    guard(body, False)
