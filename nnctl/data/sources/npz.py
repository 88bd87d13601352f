"""`npz`: named arrays in a NumPy .npz file (`data.x`, `data.y`, optionally a fixed `data.test` split)."""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npformat

from nnctl.data.sources.base import DataInfo, DataSource, Raw, data_source, existing_file, reject_csv_options, require
from nnctl.errors import DataError, did_you_mean

UNREADABLE = (OSError, ValueError, zipfile.BadZipFile, EOFError)  # what np.load raises for a damaged file


def host_memory() -> int:
    """Bytes of RAM of this machine (8 GiB where it cannot be told)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def check_sizes(p: Path) -> None:
    """Every array's header read before any array is: a header claiming more bytes than its member of the zip
    holds, or more than this machine's memory, is a DataError naming the array (not a 14 TiB allocation)."""
    ram = host_memory()
    try:
        with zipfile.ZipFile(p) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as f:
                    major, _ = npformat.read_magic(f)
                    read = npformat.read_array_header_1_0 if major == 1 else npformat.read_array_header_2_0
                    shape, _, dtype = read(f, max_header_size=100_000)
                    header = f.tell()
                need = math.prod(shape) * dtype.itemsize
                name = info.filename[:-4]
                if need + header > info.file_size:
                    raise DataError(
                        f"{p}: array '{name}' claims shape {shape} ({need:,} bytes) but the file holds "
                        f"{max(info.file_size - header, 0):,} bytes of it: the file is damaged or forged"
                    )
                if need > ram:
                    raise DataError(
                        f"{p}: array '{name}' of shape {shape} needs {need:,} bytes, more than this machine's "
                        f"{ram:,} bytes of memory"
                    )
    except UNREADABLE as e:
        raise DataError(f"{p}: not a readable npz file ({type(e).__name__}: {e})") from None


def _array(z, p: Path, name: str, what: str) -> np.ndarray:
    if name not in z.files:
        raise DataError(f"{p}: no array '{name}' for {what}.{did_you_mean(name, z.files)} Arrays: {', '.join(z.files)}")
    try:
        return np.asarray(z[name])
    except ValueError as e:
        raise DataError(f"{p}: array '{name}' cannot be read without pickle ({e})") from None


def read_npz(data, p: Path) -> Raw:
    """The x, y (and test) arrays `data` names in the npz file `p`."""
    check_sizes(p)
    try:
        z = np.load(p, allow_pickle=False)
    except UNREADABLE as e:
        raise DataError(f"{p}: not a readable npz file ({e})") from None
    with z:
        x, y = _array(z, p, data.x, "x"), _array(z, p, data.y, "y")
        xt = yt = None
        if data.test:
            bad = set(data.test) - {"x", "y"}
            if bad or len(data.test) != 2:
                raise DataError(f"{p}: data.test must be {{x: name, y: name}}, got {data.test}")
            xt, yt = _array(z, p, data.test["x"], "test x"), _array(z, p, data.test["y"], "test y")
    for name, a in (("x", x), ("y", y)):
        if a.dtype.kind not in "biuf":
            raise DataError(f"{p}: array '{getattr(data, name)}' has dtype {a.dtype}; expected numbers")
    return Raw(x.astype(np.float32), y, xt if xt is None else xt.astype(np.float32), yt, origin=str(p))


@data_source("npz")
class NpzSource(DataSource):
    order = 3
    suffixes = (".npz",)

    def check(self, data) -> None:
        require(data, "path", "x", "y")
        if not (isinstance(data.x, str) and isinstance(data.y, str)):
            raise ValueError("npz data needs x and y as array names")
        reject_csv_options(data)

    def peek(self, data, base_dir: Path) -> DataInfo:
        p = existing_file(data, base_dir, "npz")
        check_sizes(p)
        try:
            with np.load(p, allow_pickle=False) as z:
                if data.x not in z.files:
                    raise DataError(f"{p}: no array '{data.x}' (arrays: {', '.join(z.files)})")
                shape = z[data.x].shape
        except UNREADABLE as e:
            raise DataError(f"{p}: not a readable npz file ({e})") from None
        return DataInfo(tuple(shape[1:]) if len(shape) > 1 else (1,))

    def read(self, data, base_dir: Path, seed: int) -> Raw:
        return read_npz(data, existing_file(data, base_dir))

    def read_inputs(self, p: Path, data, dataset) -> np.ndarray:
        """The array named like the training input (`data.x`), else `x`, else the file's first one."""
        check_sizes(p)
        with np.load(p, allow_pickle=False) as z:
            name = data.x if isinstance(data.x, str) and data.x in z.files else ("x" if "x" in z.files else z.files[0])
            x = np.asarray(z[name])
        if x.dtype.kind not in "biuf":
            raise DataError(f"{p}: array '{name}' has dtype {x.dtype}; expected numbers")
        return x.astype(np.float32)
