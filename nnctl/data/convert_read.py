"""Reading a data set in chunks for `nnctl data convert`: npz arrays, CSV and Parquet tables, image folders.

Each reader returns `Chunks`: the row count (when known before reading), the class names (text labels and
image folders: sorted) and an iterator of (x, y) blocks of at most `rows` examples, so a file larger than
memory is converted a block at a time. Tables take numeric feature columns (default: every column but the
target); a text feature column, a missing or infinite value, or a target column the table lacks is an error
naming the file, the row and the column.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from numpy.lib import format as npformat

from nnctl.data.sources.images import decode, folder_listing, same_size
from nnctl.data.sources.parquet import _pq
from nnctl.errors import DataError, did_you_mean


@dataclass
class Chunks:
    total: int | None
    class_names: list[str] | None
    blocks: Iterator[tuple[np.ndarray, np.ndarray]]


def _npz_member(zf: zipfile.ZipFile, p: Path, name: str) -> tuple[Any, tuple, np.dtype]:
    """An open stream on array `name` of the npz, positioned after its header; its shape and dtype."""
    if f"{name}.npy" not in zf.namelist():
        names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
        raise DataError(f"{p}: no array '{name}'.{did_you_mean(name, names)} Arrays: {', '.join(names)}")
    f = zf.open(f"{name}.npy")
    major, _ = npformat.read_magic(f)
    read = npformat.read_array_header_1_0 if major == 1 else npformat.read_array_header_2_0
    shape, fortran, dtype = read(f, max_header_size=100_000)
    if fortran or dtype.hasobject or dtype.kind not in "biuf":
        raise DataError(f"{p}: array '{name}' ({dtype}{', Fortran order' if fortran else ''}) is not plain numbers")
    return f, tuple(shape), dtype


def npz_chunks(p: Path, x: str, y: str, rows: int) -> Chunks:
    """Arrays `x` and `y` of the npz file `p`, read from the zip a block of rows at a time."""
    try:
        zf = zipfile.ZipFile(p)
    except (OSError, zipfile.BadZipFile) as e:
        raise DataError(f"{p}: not a readable npz file ({e})") from None
    (fx, sx, dx), (fy, sy, dy) = _npz_member(zf, p, x), _npz_member(zf, p, y)
    if sx[:1] != sy[:1]:
        raise DataError(f"{p}: '{x}' has {sx[0]} rows but '{y}' has {sy[0]}")

    def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        with zf, fx, fy:
            for i in range(0, sx[0], rows):
                n = min(rows, sx[0] - i)
                a = [
                    np.frombuffer(f.read(n * int(np.prod(s[1:])) * d.itemsize), d)
                    for f, s, d in ((fx, sx, dx), (fy, sy, dy))
                ]
                if any(len(v) != n * int(np.prod(s[1:])) for v, s in zip(a, (sx, sy))):
                    raise DataError(f"{p}: the arrays end before row {i + n}: the file is truncated")
                yield a[0].reshape(n, *sx[1:]), a[1].reshape(n, *sy[1:])

    return Chunks(sx[0], None, blocks())


def _table_block(frame: Any, p: Path, row0: int, target: str, features: list[str], labels: list | None):
    """(x float32, y) of one block of a table; problems named by row (from 1) and column."""
    for c in features:
        col = frame[c]
        if col.dtype.kind not in "biuf":
            r = _first_text(col)
            raise DataError(
                f"{p}, row {row0 + r + 1}, column '{c}': text value {col.iloc[r]!r}: convert takes numeric "
                "feature columns (encode this column as numbers first, or leave it out with --features)"
            )
    x = frame[features].to_numpy(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(f"{p}, row {row0 + int(r) + 1}, column '{features[c]}': missing or infinite value {x[r, c]}")
    t = frame[target]
    if labels is not None:
        y = np.searchsorted(np.asarray(labels, object), t.astype(str).to_numpy(object)).astype(np.int64)
    else:
        y = t.to_numpy()
        if y.dtype.kind == "f" and np.isnan(y).any():
            raise DataError(f"{p}, row {row0 + int(np.argmax(np.isnan(y))) + 1}, column '{target}': missing target")
        y = y.astype(np.int64 if y.dtype.kind in "biu" else np.float32)
    return x, y


def _first_text(col: Any) -> int:
    """The position of the first value of `col` that is not a number."""
    for i, v in enumerate(col):
        try:
            float(v)
        except (TypeError, ValueError):
            return i
    return 0


def _columns(p: Path, names: list[str], target: str, features: list[str] | None) -> list[str]:
    for c in [target, *(features or [])]:
        if c not in names:
            what = "the target" if c == target else "a feature"
            raise DataError(f"{p}: no column '{c}' for {what}.{did_you_mean(c, names)} Columns: {', '.join(names)}")
    return features or [c for c in names if c != target]


def table_chunks(p: Path, target: str, features: list[str] | None, rows: int) -> Chunks:
    """A CSV (pandas, read in chunks) or Parquet file (pyarrow, in record batches); text targets -> classes."""
    if p.suffix.lower() in (".parquet", ".pq"):
        try:
            pf = _pq().ParquetFile(p)
        except (OSError, ValueError) as e:
            raise DataError(f"{p}: not a readable parquet file ({e})") from None
        names, total = list(pf.schema_arrow.names), pf.metadata.num_rows
        feats = _columns(p, names, target, features)
        t = pf.read(columns=[target]).column(0).to_pandas()
        frames: Callable[[], Iterator[Any]] = lambda: (
            b.to_pandas() for b in pf.iter_batches(batch_size=rows, columns=[*feats, target])
        )
    else:
        import pandas as pd  # lazy: pandas costs ~0.9 s to import (as in nnctl.data.csv_table)

        try:
            names = [c.strip() for c in pd.read_csv(p, nrows=0).columns]
        except (OSError, ValueError, UnicodeDecodeError) as e:
            raise DataError(f"{p}: not a readable CSV file ({e})") from None
        feats = _columns(p, names, target, features)
        t = pd.read_csv(p, usecols=[target], skipinitialspace=True)[target]
        total = len(t)
        frames = lambda: pd.read_csv(p, usecols=[*feats, target], chunksize=rows, skipinitialspace=True)
    labels = sorted(set(t.astype(str))) if t.dtype.kind not in "biuf" else None  # text labels: classes, sorted

    def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        row0 = 0
        for frame in frames():
            frame = frame.reset_index(drop=True)
            yield _table_block(frame, p, row0, target, feats, labels)
            row0 += len(frame)

    return Chunks(int(total), labels, blocks())


def image_chunks(root: Path, image_size: tuple | None, color_mode: str, resize: str, rows: int) -> Chunks:
    """An image folder (one sub-folder per class), decoded with Pillow a block of files at a time to uint8."""
    files, labels, classes = folder_listing(root)
    opts = SimpleNamespace(image_size=image_size, color_mode=color_mode, resize=resize)
    index = {c: k for k, c in enumerate(classes)}

    def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        first: tuple[np.ndarray, Path] | None = None
        for i in range(0, len(files), rows):
            images = []
            for f in files[i : i + rows]:
                try:
                    a = decode(f, opts)
                except (OSError, ValueError, SyntaxError) as e:
                    raise DataError(f"{f}: not a readable image ({type(e).__name__}: {e}); fix or remove it") from None
                first = first or (a, f)
                same_size(a, first[0], str(f), str(first[1]))
                images.append(a)
            yield np.stack(images), np.array([index[c] for c in labels[i : i + rows]], np.int64)

    return Chunks(len(files), classes, blocks())
