"""`serve_run`: a run behind an HTTP endpoint (FastAPI on uvicorn), compiled once before the first request."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import uvicorn

from nnctl.app.serve_http import make_app
from nnctl.app.serve_model import ServedModel

EXPOSED_WARNING = (
    "warning: --host {host} accepts connections from other machines; anyone who reaches this port can use the "
    "model (set --api-key, and put TLS in front of it)"
)


def exposure_warning(host: str) -> str | None:
    """The warning for a bind address other machines can reach (None for this machine only)."""
    return None if host in ("127.0.0.1", "localhost", "::1") else EXPOSED_WARNING.format(host=host)


def serve_run(
    run_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_batch: int = 64,
    api_key: str | None = None,
    say: Callable[[str], None] = print,
) -> None:
    """Serve a run until interrupted.

    Args:
        run_dir: a finished run directory.
        host: the address to bind (127.0.0.1: this machine only).
        port: the TCP port.
        max_batch: the largest batch one call of the model predicts; requests are micro-batched up to it.
        api_key: when given, every request but /, /healthz and /docs must send it in the X-API-Key header.
        say: where start-up messages go.
    """
    warning = exposure_warning(host)
    if warning:
        say(warning)
    model = ServedModel(run_dir, max_batch)
    say(f"compiled {model.meta['name']} for batch sizes {model.sizes}; serving on http://{host}:{port}/ (docs: /docs)")
    uvicorn.run(make_app(model, api_key), host=host, port=port, log_level="warning")
