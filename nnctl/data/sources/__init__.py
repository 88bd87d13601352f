"""Data sources: one module per `data.source` kind, each registering itself in DATA_SOURCES.

Every module in this package except `base` is imported here, so a new source is one new file with a
`@data_source(name)` class.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from nnctl.data.sources.base import (
    DATA_SOURCES,
    DataInfo,
    DataSource,
    Raw,
    check_owned_keys,
    check_source,
    data_source,
    resolve,
    source_kind,
)

__all__ = [
    "DATA_SOURCES",
    "DataInfo",
    "DataSource",
    "Raw",
    "check_owned_keys",
    "check_source",
    "data_source",
    "read",
    "resolve",
    "source_kind",
]

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")


def read(data, base_dir: Path, seed: int) -> Raw:
    """Every example of the source `data` (a DataSpec) names."""
    return DATA_SOURCES.get(source_kind(data.source)).read(data, base_dir, seed)
