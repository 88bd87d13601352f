"""What a data source looks like (feature shape, class count) without loading it all."""

from __future__ import annotations

from pathlib import Path

from nnctl.data.sources import DATA_SOURCES, DataInfo, resolve, source_kind
from nnctl.errors import DataError

__all__ = ["DataInfo", "peek", "resolve"]


def peek(data, base_dir: Path) -> DataInfo:
    """The per-example feature shape (and class count when known) of the source `data` (a DataSpec) names."""
    kind = source_kind(data.source)
    if kind not in DATA_SOURCES:
        raise DataError(f"unknown source {data.source}")
    return DATA_SOURCES.get(kind).peek(data, base_dir)
