"""A data set on disk, read by row index without loading it: a folder of `.npy` shards and a manifest.

`nnctl data convert` writes it (nnctl.data.shard_writer); `data.source: shards` reads it. The folder holds
`x-00000.npy`, `y-00000.npy`, ... (rows in order, every shard `rows_per_shard` rows but the last) and
`manifest.json`, written last: the row count of every shard, the per-example shape and dtype of x and y, each
file's SHA-256, class names and where the data came from. A folder without a complete manifest (a convert
interrupted halfway), a shard whose header disagrees with the manifest (rows, shape, dtype) or whose file is
shorter than its header says is refused with an error naming the file.

x rows are read by index (`Rows.take`) in the host streaming thread (nnctl.data.stream) with one positioned
read per row straight into the window buffer, so the data is never held whole and the process's resident
memory stays near the windows in flight, whatever the data's size (the kernel's page cache keeps what it can
and reclaims it as it needs). y is small (one label per example) and is read whole.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numpy.lib import format as npformat

from nnctl.errors import DataError

FORMAT = "nnctl-shards"
VERSION = 1
MANIFEST = "manifest.json"
CHUNK_BYTES = 4 << 20  # rows read at a time by a pass over the data (statistics, np.asarray)
DTYPES = ("float32", "float64", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "bool")


def read_manifest(root: Path) -> dict:
    """The manifest of the shard folder `root`, checked for its keys; a located DataError otherwise."""
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (data.source: shards reads a folder written by nnctl data convert)")
    p = root / MANIFEST
    if not p.is_file():
        raise DataError(
            f"{p}: missing: {root} is not a complete data set (a convert interrupted before it finished leaves no "
            "manifest; run nnctl data convert again)"
        )
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{p}: not a readable manifest ({e})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise DataError(f"{p}: not an nnctl data set manifest (format is not '{FORMAT}')")
    if m.get("version") != VERSION:
        raise DataError(f"{p}: manifest version {m.get('version')!r}; this nnctl reads version {VERSION}")
    for key in ("rows", "x", "y", "shards"):
        if key not in m:
            raise DataError(f"{p}: manifest has no '{key}' (it is incomplete or damaged)")
    for part in ("x", "y"):
        if m[part].get("dtype") not in DTYPES or not isinstance(m[part].get("shape"), list):
            raise DataError(f"{p}: manifest '{part}' needs a shape (list) and a dtype (one of {', '.join(DTYPES)})")
    counted = sum(int(s["rows"]) for s in m["shards"])
    if counted != m["rows"] or not m["shards"]:
        raise DataError(f"{p}: the shards hold {counted} rows but the manifest says {m['rows']}")
    return m


def _check_npy(p: Path, rows: int, shape: list, dtype: str) -> int:
    """The offset of the rows in a shard file, after checking its header and length against the manifest."""
    try:
        f = open(p, "rb")  # noqa: SIM115  (closed by the `with f` below, after the error handling)
    except OSError as e:
        raise DataError(f"{p}: missing or unreadable shard ({e.strerror}); the data set is incomplete") from None
    with f:
        try:
            major, _ = npformat.read_magic(f)
            read = npformat.read_array_header_1_0 if major == 1 else npformat.read_array_header_2_0
            got_shape, fortran, got_dtype = read(f, max_header_size=100_000)
        except ValueError as e:
            raise DataError(f"{p}: not a .npy shard ({e})") from None
        offset = f.tell()
    want = (rows, *shape)
    if tuple(got_shape) != want:
        raise DataError(f"{p}: the shard holds shape {list(got_shape)} but the manifest says {list(want)}")
    if np.dtype(got_dtype) != np.dtype(dtype) or fortran:
        raise DataError(f"{p}: the shard's dtype is {got_dtype} but the manifest says {dtype}")
    need = offset + math.prod(want) * np.dtype(dtype).itemsize
    size = p.stat().st_size
    if size < need:
        raise DataError(f"{p}: the file has {size:,} bytes but its {list(want)} rows need {need:,}: truncated")
    return offset


class Store:
    """An opened shard folder: every x shard checked and held open, y read whole."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest = m = read_manifest(root)
        self.x_shape = tuple(int(v) for v in m["x"]["shape"])
        self.x_dtype = np.dtype(m["x"]["dtype"])
        self.row_bytes = math.prod(self.x_shape) * self.x_dtype.itemsize
        rows = [int(s["rows"]) for s in m["shards"]]
        self.starts = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
        shards = list(zip(m["shards"], rows))
        self.offsets = np.array([_check_npy(root / s["x"], r, m["x"]["shape"], m["x"]["dtype"]) for s, r in shards])
        ys = []
        for s, r in shards:
            offset = _check_npy(root / s["y"], r, m["y"]["shape"], m["y"]["dtype"])
            count = r * math.prod(m["y"]["shape"])
            ys.append(np.fromfile(root / s["y"], m["y"]["dtype"], count, offset=offset).reshape(r, *m["y"]["shape"]))
        self.y = np.concatenate(ys)
        self.fds = [os.open(root / s["x"], os.O_RDONLY) for s, _ in shards]
        weakref.finalize(self, _close_all, list(self.fds))

    def __len__(self) -> int:
        return int(self.starts[-1])

    def fingerprint(self) -> dict:
        """{sha256, rows}: a hash of the shards' checksums and the class names (the data as converted)."""
        h = hashlib.sha256(json.dumps([[s["x_sha256"], s["y_sha256"]] for s in self.manifest["shards"]]).encode())
        h.update(repr(self.manifest.get("class_names")).encode())
        return {"sha256": h.hexdigest(), "rows": len(self)}

    def read(self, g: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Rows `g` (global indices) of x into `out[: len(g)]` (C-contiguous): one positioned read per row,
        in file order, straight into `out`. Reads, not a memory map: with large page-cache folios a fault maps
        megabytes around a row, so a window of random rows would map much of the file into the process."""
        out = out[: len(g)]
        assert out.flags.c_contiguous, "rows are read into a contiguous buffer"
        if not len(g) or not self.row_bytes:
            return out
        mv = memoryview(out.reshape(-1).view(np.uint8).data)
        rb = self.row_bytes
        shard = np.searchsorted(self.starts, g, side="right") - 1
        where = self.offsets[shard] + (g - self.starts[shard]) * rb
        order = np.lexsort((where, shard))
        fds = self.fds
        for j, s, o in zip(order.tolist(), shard[order].tolist(), where[order].tolist()):
            if os.preadv(fds[s], [mv[j * rb : (j + 1) * rb]], o) != rb:
                raise DataError(f"{self.root / self.manifest['shards'][s]['x']}: a row ends early: the file shrank")
        return out


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


class Rows:
    """A lazy selection of x rows of a Store: indexing gives another selection; `take` and `np.asarray` read.

    `example_shape` is the per-example shape the rows are read as (a reshape of the stored one) and `affine`
    the split's scaling (shift, scale), applied in place to every block read, as `Scaler.apply` computes it
    (float32 (x - shift) / scale), so a split is a view that costs no memory."""

    def __init__(self, store: Store, index: np.ndarray, shape: tuple, affine: tuple | None = None) -> None:
        self.store, self.index, self.example_shape, self.affine = store, index, tuple(shape), affine

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple:
        return (len(self.index), *self.example_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.example_shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)  # as every source gives x (images stored as uint8 are read as float32)

    @property
    def nbytes(self) -> int:
        return len(self.index) * math.prod(self.example_shape) * self.dtype.itemsize

    def __getitem__(self, key) -> Rows:
        return Rows(self.store, np.atleast_1d(self.index[key]), self.example_shape, self.affine)

    def reshaped(self, shape: tuple) -> Rows:
        return Rows(self.store, self.index, shape, self.affine)

    def scaled(self, shift: np.ndarray, scale: np.ndarray) -> Rows:
        """These rows read as (x - shift) / scale, per feature (unscaled rows only)."""
        assert self.affine is None, "rows are scaled once"
        return Rows(self.store, self.index, self.example_shape, (shift, scale))

    def take(self, flat: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Rows `flat` (positions in this selection) into `out[: len(flat)]` (float32, contiguous), as
        `np.take(x, flat, 0, out)` would, scaled in place."""
        g = self.index[flat]
        dst = out[: len(g)]
        stored = dst.reshape((len(g), *self.store.x_shape))
        if self.store.x_dtype == stored.dtype:
            self.store.read(g, stored)
        else:
            stored[...] = self.store.read(g, np.empty(stored.shape, self.store.x_dtype))
        if self.affine is not None:
            rows = dst.reshape(len(g), -1)
            np.subtract(rows, self.affine[0], out=rows)
            np.divide(rows, self.affine[1], out=rows)
        return dst

    def chunks(self, rows: int | None = None) -> Iterator[np.ndarray]:
        """The rows in order, `rows` at a time (default: about CHUNK_BYTES), read and scaled."""
        rows = rows or max(1, CHUNK_BYTES // max(1, math.prod(self.example_shape) * 4))
        for i in range(0, len(self.index), rows):
            n = min(rows, len(self.index) - i)
            yield self.take(np.arange(i, i + n), np.empty((n, *self.example_shape), self.dtype))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        i = 0
        for block in self.chunks():
            out[i : i + len(block)] = block
            i += len(block)
        return out if dtype is None else out.astype(dtype)


def take_rows(x, flat: np.ndarray, out: np.ndarray) -> np.ndarray:
    """`np.take(x, flat, axis=0, out=out)` for arrays and for lazy Rows."""
    if isinstance(x, Rows):
        return x.take(flat, out)
    return np.take(x, flat, axis=0, out=out)


def materialized(a):
    """`a` read into memory when it is lazy Rows, else `a` itself."""
    return np.asarray(a) if isinstance(a, Rows) else a
