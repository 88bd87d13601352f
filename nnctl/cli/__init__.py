"""The `nnctl` command line: each command is a few lines over a library function (nnctl.app).

Only typer is imported at start-up, so `nnctl --help` is instant; JAX loads when a command needs it (the CLI
is the one place with function-local imports). User mistakes (NnctlError) print a located message and exit 2
(130/143 when interrupted); never a traceback.
"""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Train neural networks from YAML specs (Flax + Optax, compiled by XLA).",
)

# The command modules, in the order `nnctl --help` lists their commands; each decorates its functions onto `app`.
# isort: off
from nnctl.cli import run  # noqa: F401  train, eval, predict
from nnctl.cli import inspect  # noqa: F401  inspect params|model, validate, schema
from nnctl.cli import ops  # noqa: F401  runs, plot
from nnctl.cli import time  # noqa: F401  time
from nnctl.cli import learn  # noqa: F401  explain, sample
# isort: on


def main() -> None:
    """The console script: run the app; Ctrl-C outside a command's own handling exits 130."""
    try:
        app()
    except KeyboardInterrupt:  # before a command installed its own handling (e.g. while Python imports)
        print("interrupted: SIGINT", file=sys.stderr)
        sys.exit(130)
