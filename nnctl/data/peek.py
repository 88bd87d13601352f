"""What a data source looks like (feature shape, class count) without loading it all."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnctl.errors import DataError


@dataclass(frozen=True)
class DataInfo:
    x_shape: tuple | None
    num_classes: int | None = None


def resolve(path: str, base_dir: Path) -> Path:
    p = Path(path).expanduser()
    if not p.is_absolute() and not p.exists() and (base_dir / p).exists():
        p = base_dir / p
    return p


def peek(data, base_dir: Path) -> DataInfo:
    src = data.source
    if src.startswith("builtin:"):
        from nnctl.data.builtin import BUILTINS
        b = BUILTINS[src.split(":", 1)[1]]
        return DataInfo(b.x_shape, b.num_classes)
    if src == "inline":
        try:
            x = np.asarray(data.x, dtype=np.float32)
        except (ValueError, TypeError):
            raise DataError("inline x: rows must be numbers, all of the same length") from None
        if x.ndim < 1 or len(x) == 0:
            raise DataError("inline x is empty")
        return DataInfo(tuple(x.shape[1:]) if x.ndim > 1 else (1,))
    if src == "csv":
        p = resolve(data.path, base_dir)
        if not p.exists():
            raise DataError(f"no such CSV file: {p}")
        from nnctl.data.sources import csv_delimiter, csv_header, csv_layout, csv_rows
        delimiter = csv_delimiter(p, data.delimiter)
        header = csv_header(p, delimiter)
        rows = csv_rows(p, header, delimiter) if data.categorical else None  # categories: read the column
        return DataInfo((csv_layout(data, p, header, rows).width,))
    if src == "npz":
        p = resolve(data.path, base_dir)
        if not p.exists():
            raise DataError(f"no such npz file: {p}")
        try:
            with np.load(p, allow_pickle=False) as z:
                if data.x not in z.files:
                    raise DataError(f"{p}: no array '{data.x}' (arrays: {', '.join(z.files)})")
                shape = z[data.x].shape
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            raise DataError(f"{p}: not a readable npz file ({e})") from None
        return DataInfo(tuple(shape[1:]) if len(shape) > 1 else (1,))
    raise DataError(f"unknown source {src}")
