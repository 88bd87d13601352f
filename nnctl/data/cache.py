"""An on-disk cache of decoded examples (image sources), so a second run decodes nothing.

Entries are .npz files named by a key over the file list (paths, sizes, modification times), the labels and
the decoding options: changing, adding or removing a file, or an option, makes a new key. The directory is
`$NNCTL_DATA_CACHE_DIR`, else `$XDG_CACHE_HOME/nnctl/data`, else `~/.cache/nnctl/data`;
`NNCTL_DATA_CACHE_DIR=off` turns it off. Entries are written to a temporary file and renamed into place, so
an interrupted write leaves no partial entry; an entry that cannot be read is ignored (decoded again).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

CACHE_ENV = "NNCTL_DATA_CACHE_DIR"
_OFF = {"", "0", "off", "none", "false", "no"}
VERSION = 1  # bump when the decoding changes


def cache_dir() -> Path | None:
    raw = os.environ.get(CACHE_ENV)
    if raw is not None:
        return None if raw.strip().lower() in _OFF else Path(raw).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nnctl" / "data"


def cache_key(files: list[Path], labels: list[str], options: tuple) -> str:
    h = hashlib.sha256(json.dumps([VERSION, list(options), labels]).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


def load_cached(key: str) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(x, y, skipped) stored under `key`, or None."""
    d = cache_dir()
    if d is None or not (d / f"{key}.npz").is_file():
        return None
    try:
        with np.load(d / f"{key}.npz", allow_pickle=False) as z:
            return np.asarray(z["x"]), np.asarray(z["y"]), int(z["skipped"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None


def store_cached(key: str, x: np.ndarray, y: np.ndarray, skipped: int) -> None:
    """Store an entry; a cache directory that cannot be written is skipped silently (the run goes on)."""
    d = cache_dir()
    if d is None:
        return
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=d, suffix=".part")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, x=x, y=y, skipped=np.int64(skipped))
        os.replace(tmp, d / f"{key}.npz")
    except OSError:
        Path(tmp).unlink(missing_ok=True)
