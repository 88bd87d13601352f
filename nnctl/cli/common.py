"""What every command module shares: the --json / --quiet options, the console, error guarding and output.

Only typer is imported here at start-up; rich and nnctl load inside the helpers, when a command runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as one JSON document on stdout.", metavar="")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.", metavar="")]


def console(stderr: bool = False) -> Any:
    """A rich console (stdout, or stderr) that does not colour numbers on its own."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def esc(obj: Any) -> str:
    """User text as rich text: messages can contain [brackets] that must not be read as markup."""
    from rich.markup import escape

    return escape(str(obj))


def guard(fn: Callable[[], Any], as_json: bool) -> Any:
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
            console(stderr=True).print(f"[bold red]error:[/] {esc(e)}", markup=True, soft_wrap=True, highlight=False)
        raise typer.Exit(e.exit_code) from None


def emit(doc: Any, as_json: bool, quiet: bool, render: Callable[[], None]) -> None:
    """A command's result: one JSON document with --json, nothing with --quiet, else `render()`."""
    if as_json:
        print(json.dumps(doc, default=str))
    elif not quiet:
        render()


def fmt(v: Any) -> str:
    """A value in a table: floats to 4 significant digits."""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
