"""Writing a shard folder (nnctl.data.shards) in chunks: never a truncated data set under the final name.

Shards are written into `.<name>.partial` beside the destination, each file fsynced as it is closed; the
manifest (row counts, shapes, dtypes, SHA-256 of every file) is written last, and only then is the folder
renamed to its final name. An interrupted convert leaves the `.partial` folder (never a folder the reader
accepts); the next convert to the same destination deletes it and starts again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
from numpy.lib import format as npformat

from nnctl.data.shards import FORMAT, MANIFEST, VERSION
from nnctl.errors import DataError

SHARD_BYTES = 256 << 20  # x bytes per shard (rows per shard are sized from it)


def partial_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.partial"


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _save(p: Path, a: np.ndarray) -> None:
    with open(p, "wb") as f:
        npformat.write_array(f, np.ascontiguousarray(a), allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


class ShardWriter:
    """Rows appended in chunks of any size (`add`), cut into shards of `rows_per_shard`; `finish` writes the
    manifest and moves the folder into place."""

    def __init__(self, out: Path, rows_per_shard: int | None = None) -> None:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise DataError(f"{out}: already exists; choose a new folder (or delete it to convert again)")
        self.out, self.tmp = out, partial_dir(out)
        if self.tmp.exists():
            shutil.rmtree(self.tmp)  # what an interrupted convert left: start again
        self.tmp.mkdir(parents=True)
        self.rows_per_shard = rows_per_shard
        self.shard_bytes = SHARD_BYTES
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.pending_rows = 0
        self.shards: list[dict] = []
        self.x_spec: tuple | None = None
        self.y_spec: tuple | None = None

    @property
    def rows(self) -> int:
        return sum(s["rows"] for s in self.shards) + self.pending_rows

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        """Append examples; every chunk must have the first chunk's per-example shapes and dtypes."""
        if len(x) != len(y):
            raise DataError(f"{self.out}: a chunk has {len(x)} inputs but {len(y)} targets")
        spec = ((x.shape[1:], x.dtype), (y.shape[1:], y.dtype))
        if self.x_spec is None:
            self.x_spec, self.y_spec = spec
            per_row = max(1, int(np.prod(x.shape[1:])) * x.dtype.itemsize)
            self.rows_per_shard = self.rows_per_shard or max(1, self.shard_bytes // per_row)
        elif spec != (self.x_spec, self.y_spec):
            raise DataError(
                f"{self.out}: rows {self.rows}+ have x {list(x.shape[1:])} {x.dtype}, y {list(y.shape[1:])} {y.dtype} "
                f"but the first rows had x {list(self.x_spec[0])} {self.x_spec[1]}, y {list(self.y_spec[0])} "  # type: ignore[index]
                f"{self.y_spec[1]}"  # type: ignore[index]
            )
        self.pending.append((x, y))
        self.pending_rows += len(x)
        assert self.rows_per_shard is not None  # sized from the first chunk above
        while self.pending_rows >= self.rows_per_shard:
            self._flush(self.rows_per_shard)

    def _flush(self, n: int) -> None:
        xs, ys = np.concatenate([x for x, _ in self.pending]), np.concatenate([y for _, y in self.pending])
        rest = (xs[n:], ys[n:])
        self.pending, self.pending_rows = ([rest] if len(rest[0]) else []), len(rest[0])
        i = len(self.shards)
        names = {"x": f"x-{i:05d}.npy", "y": f"y-{i:05d}.npy"}
        _save(self.tmp / names["x"], xs[:n])
        _save(self.tmp / names["y"], ys[:n])
        self.shards.append({"rows": n, **names, **{f"{k}_sha256": _sha256(self.tmp / v) for k, v in names.items()}})

    def finish(self, class_names: list[str] | None, source: str, task: str | None = None) -> dict:
        """Write the last shard and the manifest, then move the folder to its final name; the manifest."""
        if self.pending_rows:
            self._flush(self.pending_rows)
        if not self.shards or self.x_spec is None or self.y_spec is None:
            shutil.rmtree(self.tmp)
            raise DataError(f"{source}: no examples to convert")
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "rows": sum(s["rows"] for s in self.shards),
            "x": {"shape": list(self.x_spec[0]), "dtype": str(self.x_spec[1])},
            "y": {"shape": list(self.y_spec[0]), "dtype": str(self.y_spec[1])},
            "class_names": class_names,
            "task": task,
            "source": source,
            "shards": self.shards,
        }
        p = self.tmp / MANIFEST
        with open(p, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        if self.out.exists():
            self.out.rmdir()  # an empty folder (checked in __init__)
        os.replace(self.tmp, self.out)
        return manifest

    def abandon(self) -> None:
        """Delete the partial folder (an error while converting)."""
        shutil.rmtree(self.tmp, ignore_errors=True)


def verify(root: Path) -> list[str]:
    """The shard files of `root` whose SHA-256 differs from the manifest's (an empty list: all intact)."""
    m = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    return [s[k] for s in m["shards"] for k in ("x", "y") if _sha256(root / s[k]) != s[f"{k}_sha256"]]
