"""`nnctl data convert SRC OUT`: write a data set once as a shard folder that training streams from disk."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from nnctl.cli import app
from nnctl.cli.common import JsonOpt, QuietOpt, console, emit, guard

data_app = typer.Typer(no_args_is_help=True, help="Prepare data sets for training.")
app.add_typer(data_app, name="data")


class _Bar:
    """A rich progress bar on a terminal; elsewhere (logs, CI) one line per tenth of the rows."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.plain = quiet, not sys.stderr.isatty()
        self.bar: Any = None
        self.task: Any = None
        self.shown = -1

    def __call__(self, done: int, total: int | None) -> None:
        if self.quiet:
            return
        if self.plain:
            tenth = done * 10 // total if total else -1
            if tenth > self.shown or not done:
                self.shown = tenth
                print(f"converted {done:,} / {total if total is not None else '?':,} rows", file=sys.stderr)
            return
        if self.bar is None:
            from rich.progress import Progress

            self.bar = Progress(console=console(stderr=True), transient=False)
            self.bar.start()
            self.task = self.bar.add_task("converting", total=total)
        self.bar.update(self.task, completed=done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@data_app.command("convert")
def convert(
    src: Annotated[str, typer.Argument(help="An image folder (one sub-folder per class), .npz, .csv or .parquet.")],
    out: Annotated[str, typer.Argument(help="The folder to write (must not exist, or be empty).")],
    target: Annotated[str | None, typer.Option(help="csv/parquet: the target column.")] = None,
    features: Annotated[list[str] | None, typer.Option("--feature", help="csv/parquet: a feature column.")] = None,
    x: Annotated[str, typer.Option(help="npz: the input array.")] = "x",
    y: Annotated[str, typer.Option(help="npz: the target array.")] = "y",
    image_size: Annotated[tuple[int, int] | None, typer.Option(help="images: HEIGHT WIDTH.")] = None,
    color_mode: Annotated[str, typer.Option(help="images: rgb or grayscale.")] = "rgb",
    resize: Annotated[str, typer.Option(help="images, with --image-size: stretch, crop or pad.")] = "stretch",
    chunk_rows: Annotated[int, typer.Option(help="Rows read and written at a time.")] = 8192,
    shard_mb: Annotated[float | None, typer.Option(help="Megabytes of inputs per shard file (default 256).")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """Write SRC once as a shard folder OUT; train on it with `data: {source: shards, path: OUT}`."""
    bar = _Bar(quiet or as_json)

    def body():
        from nnctl.app.convert import convert_data

        try:
            return convert_data(
                src,
                out,
                chunk_rows=chunk_rows,
                shard_mb=shard_mb,
                on_progress=bar,
                target=target,
                features=features or None,
                x=x,
                y=y,
                image_size=image_size,
                color_mode=color_mode,
                resize=resize,
            )
        finally:
            bar.close()

    res = guard(body, as_json)
    classes = f", {len(res['class_names'])} classes" if res["class_names"] else ""
    emit(
        res,
        as_json,
        quiet,
        lambda: console().print(
            f"wrote {res['rows']:,} examples of shape {res['x_shape']} ({res['x_dtype']}{classes}) "
            f"in {res['shards']} shard(s) to {res['out']}"
        ),
    )
