"""The `nnctl` command line: each command is a few lines over a library function (nnctl.app).

Only typer is imported at start-up, so `nnctl --help` is instant; JAX loads when a command needs it (the CLI
is the one place with function-local imports). User mistakes (NnctlError) print a located message and exit 2
(130/143 when interrupted); never a traceback.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Train neural networks from YAML specs (Flax + Optax, compiled by XLA).",
)


def _version(value: bool) -> None:
    if value:
        from nnctl import __version__

        print(f"nnctl {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, metavar="", help="Print the version and exit."
    ),
) -> None:
    """Train neural networks from YAML specs (Flax + Optax, compiled by XLA)."""


# The command modules, in the order `nnctl --help` lists their commands; each decorates its functions onto `app`.
# isort: off
from nnctl.cli import run  # noqa: F401  train, eval, predict
from nnctl.cli import inspect  # noqa: F401  inspect params|model, validate, schema
from nnctl.cli import ops  # noqa: F401  runs, plot
from nnctl.cli import time  # noqa: F401  time
from nnctl.cli import learn  # noqa: F401  explain, sample
from nnctl.cli import gradcheck  # noqa: F401  gradcheck
from nnctl.cli import sweep  # noqa: F401  sweep
from nnctl.cli import export  # noqa: F401  export
from nnctl.cli import serve  # noqa: F401  serve
from nnctl.cli import data  # noqa: F401  data convert
# isort: on


def main() -> None:
    """The console script: run the app; Ctrl-C outside a command's own handling exits 130.

    A finished command leaves through `os._exit` once its output is flushed, the atexit handlers have run and
    other threads have ended: tearing the interpreter down (JAX's and XLA's objects) cost about 0.9 CPU-s per
    process and changes nothing on disk. Pydantic's plugin discovery (a scan of every installed package's
    metadata) is off unless the user's environment sets PYDANTIC_DISABLE_PLUGINS."""
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        app()
        code = 0
    except SystemExit as e:
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except KeyboardInterrupt:  # before a command installed its own handling (e.g. while Python imports)
        print("interrupted: SIGINT", file=sys.stderr)
        code = 130
    _exit(code)


def _exit(code: int) -> None:
    for f in (sys.stdout, sys.stderr):
        f.flush()
    atexit._run_exitfuncs()
    for t in threading.enumerate():
        if t is not threading.current_thread() and not t.daemon:
            t.join()
    os._exit(code)
