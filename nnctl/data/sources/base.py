"""What every data source implements, the registry of them, and the helpers they share.

A source is named by `data.source`: its registry name (`inline`, `csv`, `npz`), or `<name>:<dataset>` for a
source that takes a dataset name (`builtin:iris`). Each registered source validates the spec fields it uses
(`check`), tells the feature shape without loading everything (`peek`), reads the examples (`read`) and,
where it reads files, reads new inputs for `predict` (`read_inputs`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.errors import DataError, did_you_mean
from nnctl.registry import Registry


@dataclass
class Raw:
    """The examples of a source, before splitting and scaling."""

    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    class_names: list[str] | None = None
    origin: str = ""
    task: str | None = None  # known task (built-in regression sets), else inferred
    layout: Any = None  # csv: its CsvLayout (the feature columns and the categories of categorical ones)
    dropped: int = 0  # examples dropped for a missing value (data.missing: drop | mean)
    groups: np.ndarray | None = None  # csv data.group_by: each example's group (kept on one side of a split)
    fingerprint: dict | None = None  # {sha256, rows} known without hashing x (shards: from the manifest)


@dataclass(frozen=True)
class TargetFacts:
    """What the checks need to know about numeric targets: their range, spread and distinct values."""

    count: int
    lo: float
    hi: float
    mean: float
    std: float
    integral: bool
    distinct: tuple  # the sorted distinct values, at most 21 of them (more: n_distinct tells)
    n_distinct: int

    @staticmethod
    def of(y: np.ndarray) -> TargetFacts | None:
        """The facts of numeric targets (None for none, or non-numeric ones)."""
        if y.dtype.kind not in "biuf" or not y.size:
            return None
        f = y.astype(np.float64).reshape(-1)
        f = f[np.isfinite(f)]
        if not f.size:
            return None
        values = np.unique(f)
        return TargetFacts(
            int(len(y)),
            float(f.min()),
            float(f.max()),
            float(f.mean()),
            float(f.std()),
            bool(np.all(np.mod(f, 1) == 0)),
            tuple(float(v) for v in values[:21]),
            int(len(values)),
        )


@dataclass(frozen=True)
class DataInfo:
    """What `peek` tells about a source: the per-example feature shape, the class count when known (text
    labels, built-in classification sets) and, where the source reads them, facts about numeric targets."""

    x_shape: tuple | None
    num_classes: int | None = None
    targets: TargetFacts | None = None


class DataSource:
    """Base of every data source; subclasses are registered with `@data_source(name)`.

    `data` below is the spec's `DataSpec`; `base_dir` the directory relative paths are tried against."""

    name: str = ""  # set by @data_source
    order: int = 100  # position among the sources in the 'unknown data source' message
    takes_name: bool = False  # spelled `<name>:<dataset>` (builtin:iris) instead of just `<name>`
    suffixes: tuple[str, ...] = ()  # input-file suffixes `read_inputs` handles (predict)
    input_dirs: bool = False  # `read_inputs` reads a folder (of image files)
    folder_markers: tuple[str, ...] = ()  # a folder holding one of these files is this source's input (predict)
    own_keys: tuple[str, ...] = ()  # data-spec keys of OWNED_KEYS this source uses (the others reject them)

    def usage(self) -> str:
        """How the source is spelled in `data.source`."""
        return f"{self.name}:<name>" if self.takes_name else self.name

    def spellings(self) -> list[str]:
        """Every valid `data.source` value naming this source (for did-you-mean)."""
        return [self.name]

    def check_name(self, name: str) -> None:
        """Raise ValueError when `name` (after `<source>:`) names nothing; only for takes_name sources."""

    def check(self, data) -> None:
        """Raise ValueError when `data` lacks a field this source needs or sets one it does not use."""
        raise NotImplementedError

    def peek(self, data, base_dir: Path) -> DataInfo:
        """The per-example feature shape (and class count when known) without reading every example."""
        raise NotImplementedError

    def read(self, data, base_dir: Path, seed: int) -> Raw:
        """Every example of the source."""
        raise NotImplementedError

    def read_inputs(self, p: Path, data, dataset) -> np.ndarray:
        """The examples of an existing input file for `predict`, as float32 rows (before imputing)."""
        raise DataError(f"{p}: {self.name} files cannot be read as inputs")

    def input_names(self, p: Path, data) -> list[str] | None:
        """The names of the examples `read_inputs` reads from `p` (image files: their paths), else None."""
        return None


DATA_SOURCES: Registry[DataSource] = Registry("data source")
IMAGE_KEYS = ("image_size", "color_mode", "resize", "on_bad_file")  # data keys only image sources use
OWNED_KEYS = (*IMAGE_KEYS, "hf_split")  # data keys a source must declare in `own_keys` to accept


def check_owned_keys(data, source: DataSource) -> None:
    """ValueError naming the OWNED_KEYS that `data` sets and its source does not use, and the sources that do."""
    for k in OWNED_KEYS:
        if getattr(data, k) is not None and k not in source.own_keys:
            users = [s.name for s in ordered_sources() if k in s.own_keys]
            raise ValueError(f"data.{k} applies to source {' and '.join(users)} only, not {source.name}")


def data_source(name: str) -> Callable[[type], type]:
    """Class decorator: register one instance of a DataSource subclass under `name`."""

    def deco(cls: type) -> type:
        source = cls()
        source.name = name
        DATA_SOURCES.register(name)(source)
        return cls

    return deco


def source_kind(source: str) -> str:
    """The registry name in a `data.source` value: 'builtin:iris' -> 'builtin', 'csv' -> 'csv'."""
    return source.split(":", 1)[0]


def ordered_sources() -> list[DataSource]:
    """The registered sources in message order."""
    return sorted((s for _, s in DATA_SOURCES.items()), key=lambda s: (s.order, s.name))


def check_source(value: str) -> str:
    """`value` when it names a registered source (and dataset), else ValueError naming the choices."""
    kind, sep, arg = value.partition(":")
    if kind in DATA_SOURCES:
        src = DATA_SOURCES.get(kind)
        if src.takes_name == bool(sep):
            if src.takes_name:
                src.check_name(arg)
            return value
    sources = ordered_sources()
    plain = [s for s in sources if not s.takes_name]
    named = [s for s in sources if s.takes_name]
    hint = did_you_mean(value, [n for s in plain + named for n in s.spellings()])
    usages = [s.usage() for s in named + plain]
    listed = f"{', '.join(usages[:-1])} or {usages[-1]}" if len(usages) > 1 else usages[0]
    raise ValueError(f"unknown data source '{value}'.{hint} Use {listed}")


def resolve(path: str, base_dir: Path) -> Path:
    """`path` as given when it exists (or is absolute), else relative to `base_dir` when it exists there."""
    p = Path(path).expanduser()
    if not p.is_absolute() and not p.exists() and (base_dir / p).exists():
        p = base_dir / p
    return p


def existing_file(data, base_dir: Path, what: str | None = None) -> Path:
    """`data.path` resolved, or a DataError: 'no such {what} file' (peek), else the longer read-time message."""
    p = resolve(data.path, base_dir)
    if not p.exists():
        raise DataError(
            f"no such {what} file: {p}"
            if what
            else f"no such file: {p} (data.path is relative to the spec file or the working directory)"
        )
    return p


CSV_OPTIONS = ("categorical", "delimiter", "exclude", "encoding", "decimal", "thousands", "na_values", "group_by")


def reject_csv_options(data) -> None:
    """ValueError when a non-csv source sets one of the CSV_OPTIONS."""
    used = [k for k in CSV_OPTIONS if getattr(data, k, None) not in (None, [], ".")]
    if used:
        verb = "applies" if len(used) == 1 else "apply"
        raise ValueError(f"{', '.join('data.' + k for k in used)} {verb} to csv sources only")


def reject_unused(data, source: str, *fields: str) -> None:
    """ValueError naming the `fields` that `data` sets although its source does not use them."""
    used = [k for k in fields if getattr(data, k) not in (None, [], {})]
    if used:
        raise ValueError(f"source {source} does not use data.{', data.'.join(used)}")


def require(data, *fields: str) -> None:
    """ValueError naming the `fields` the source needs that `data` leaves unset."""
    missing = [k for k in fields if getattr(data, k) is None]
    if missing:
        raise ValueError(f"source {data.source} needs {', '.join(missing)}")
