"""`nnctl data convert`: a CSV, Parquet, npz file or an image folder written once as a shard folder
(nnctl.data.shards) that `data.source: shards` streams from disk.

The source is read a block of rows at a time (nnctl.data.convert_read) and written shard by shard into a
`.partial` folder; the manifest is written last and the folder renamed into place (nnctl.data.shard_writer),
so an interrupted convert never leaves a folder that reads as a complete data set, and rerunning it starts
again cleanly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nnctl.data.convert_read import Chunks, image_chunks, npz_chunks, table_chunks
from nnctl.data.shard_writer import ShardWriter
from nnctl.errors import DataError

TABLES = (".csv", ".tsv", ".txt", ".parquet", ".pq")
IMAGE_OPTIONS = ("--image-size", "--color-mode", "--resize")
COLOR_MODES = ("rgb", "grayscale")
RESIZES = ("stretch", "crop", "pad")


def source_chunks(
    src: Path,
    rows: int,
    target: str | None = None,
    features: list[str] | None = None,
    x: str = "x",
    y: str = "y",
    image_size: tuple[int, int] | None = None,
    color_mode: str = "rgb",
    resize: str = "stretch",
) -> tuple[str, Chunks]:
    """(kind, chunks) of `src`: an image folder, an npz file or a CSV/Parquet table (by its suffix). An
    option of another kind of source, or a bad choice, is an error (never silently ignored)."""
    if not src.exists():
        raise DataError(f"no such file or folder: {src}")
    suffix = "" if src.is_dir() else src.suffix.lower()
    kind = "images" if src.is_dir() else ("npz" if suffix == ".npz" else suffix.lstrip("."))
    given = {
        "--target": target is not None,
        "--feature": bool(features),
        "--x": x != "x",
        "--y": y != "y",
        "--image-size": image_size is not None,
        "--color-mode": color_mode != "rgb",
        "--resize": resize != "stretch",
    }
    uses = {"images": IMAGE_OPTIONS, "npz": ("--x", "--y")}.get(kind, ("--target", "--feature"))
    stray = [k for k, v in given.items() if v and k not in uses]
    if stray:
        raise DataError(f"{src}: {', '.join(stray)} do(es) not apply to {kind} sources (they take {', '.join(uses)})")
    for opt, value, choices in (("--color-mode", color_mode, COLOR_MODES), ("--resize", resize, RESIZES)):
        if value not in choices:
            raise DataError(f"{opt} {value!r}: choose {' or '.join(choices)}")
    if kind == "images":
        return kind, image_chunks(src, image_size, color_mode, resize, rows)
    if kind == "npz":
        return kind, npz_chunks(src, x, y, rows)
    if suffix in TABLES:
        if not target:
            raise DataError(f"{src}: converting a table needs --target COLUMN (the column to predict)")
        return kind, table_chunks(src, target, features, rows)
    raise DataError(f"{src}: cannot convert '{suffix}' files: give an image folder, .npz, {', '.join(TABLES)}")


def convert_data(
    src: str | Path,
    out: str | Path,
    *,
    chunk_rows: int = 8192,
    shard_mb: float | None = None,
    on_progress: Callable[[int, int | None], None] = lambda done, total: None,
    **options,
) -> dict:
    """Write `src` (see `source_chunks`, whose keyword `options` this takes) as a shard folder `out`.

    Returns: {out, kind, rows, shards, x_shape, x_dtype, class_names}.
    Raises: DataError naming the file, row and column of a problem; `out` is then not created."""
    src_p, out_p = Path(src).expanduser(), Path(out).expanduser()
    kind, chunks = source_chunks(src_p, max(1, chunk_rows), **options)
    writer = ShardWriter(out_p, None)
    if shard_mb:
        writer.shard_bytes = int(shard_mb * (1 << 20))
    try:
        on_progress(0, chunks.total)
        for xb, yb in chunks.blocks:
            writer.add(xb, yb)
            on_progress(writer.rows, chunks.total)
        m = writer.finish(chunks.class_names, str(src_p))
    except BaseException:
        writer.abandon()
        raise
    return {
        "out": str(out_p),
        "kind": kind,
        "rows": m["rows"],
        "shards": len(m["shards"]),
        "x_shape": m["x"]["shape"],
        "x_dtype": m["x"]["dtype"],
        "class_names": m["class_names"],
    }
