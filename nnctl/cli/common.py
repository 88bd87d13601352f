"""What every command module shares: the --json / --quiet options, the console, error guarding and output.

Only typer is imported here at start-up; rich and nnctl load inside the helpers, when a command runs.
"""

from __future__ import annotations

import warnings
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


def error(message: Any) -> None:
    """`error: ...` on stderr (also under --quiet: errors always reach stderr)."""
    console(stderr=True).print(f"[bold red]error:[/] {esc(message)}", markup=True, soft_wrap=True, highlight=False)


def _show_note(message: Any, category: type[Warning], *args: Any, **kw: Any) -> None:
    from nnctl.rundir import RunNote

    if issubclass(category, RunNote):
        console(stderr=True).print(f"[bold yellow]warning:[/] {esc(message)}", soft_wrap=True, highlight=False)
    else:
        _plain_show(message, category, *args, **kw)


_plain_show = warnings.showwarning


def guard(fn: Callable[[], Any], as_json: bool) -> Any:
    """Run a command body; user errors and failed file operations (no such directory, no permission, disk
    full) become a message and an exit code, not a traceback. Notes of the library (`nnctl.rundir.RunNote`)
    are printed on stderr as `warning: ...` when they happen."""
    from nnctl.errors import NnctlError, SpecError
    from nnctl.startup import release
    from nnctl.strictjson import dumps

    release()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_note
            return fn()
    except (NnctlError, OSError) as e:
        if isinstance(e, OSError):
            where = f"{e.filename}: " if e.filename else ""
            e = NnctlError(f"{where}{e.strerror or e}")
        if as_json:
            doc: dict[str, Any] = {"ok": False, "error": type(e).__name__, "message": str(e)}
            if isinstance(e, SpecError):
                doc["problems"] = [p.__dict__ for p in e.problems]
            print(dumps(doc))
        else:
            error(e)
        raise typer.Exit(e.exit_code) from None


def emit(doc: Any, as_json: bool, quiet: bool, render: Callable[[], None]) -> None:
    """A command's result: one strict JSON document with --json (non-finite numbers as null, see
    nnctl.strictjson), nothing with --quiet, else `render()`."""
    if as_json:
        from nnctl.strictjson import dumps

        print(dumps(doc, default=str))
    elif not quiet:
        render()


def fmt(v: Any) -> str:
    """A value in a table: floats to 4 significant digits."""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
