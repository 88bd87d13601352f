"""`shards`: a folder written by `nnctl data convert` (nnctl.data.shards), read from disk as training needs it.

The examples are not loaded: x is a lazy `Rows` view whose rows the host streaming thread gathers by index,
so data larger than memory trains under `train.data_placement: stream` (what `auto` picks for this source when
the data exceeds the device budget). Labels, class names and the task come from the manifest. The values were
checked finite when converted, so `data.missing` other than `error` has nothing to do and is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnctl.data.shards import MANIFEST, Rows, Store, read_manifest
from nnctl.data.sources.base import (
    DataInfo,
    DataSource,
    Raw,
    TargetFacts,
    data_source,
    reject_csv_options,
    reject_unused,
    require,
    resolve,
)
from nnctl.errors import DataError


@data_source("shards")
class ShardsSource(DataSource):
    order = 7
    folder_markers = (MANIFEST,)

    def check(self, data) -> None:
        require(data, "path")
        reject_csv_options(data)
        reject_unused(data, "shards", "x", "y", "target", "features", "test")
        if data.missing != "error":
            raise ValueError("data.missing applies when converting: shards hold no missing values")

    def _root(self, data, base_dir: Path) -> Path:
        root = resolve(data.path, base_dir)
        if not root.exists():
            raise DataError(f"no such shard folder: {root} (write one with nnctl data convert SRC {data.path})")
        return root

    def peek(self, data, base_dir: Path) -> DataInfo:
        m = read_manifest(self._root(data, base_dir))
        shape = tuple(m["x"]["shape"]) or (1,)
        names = m.get("class_names")
        if names:
            return DataInfo(shape, len(names))
        ys = [np.load(self._root(data, base_dir) / s["y"], allow_pickle=False) for s in m["shards"]]
        return DataInfo(shape, targets=TargetFacts.of(np.concatenate(ys)))

    def read(self, data, base_dir: Path, seed: int) -> Raw:
        root = self._root(data, base_dir)
        store = Store(root)
        m = store.manifest
        x = Rows(store, np.arange(len(store)), store.x_shape or (1,))
        if not len(store):
            raise DataError(f"{root}: the data set has no rows")
        return Raw(
            x,  # type: ignore[arg-type]  # lazy rows: prepare keeps them lazy
            store.y,
            class_names=m.get("class_names"),
            origin=str(root),
            task=m.get("task"),
            fingerprint=store.fingerprint(),
        )

    def read_inputs(self, p: Path, data, dataset) -> np.ndarray:
        """Every example of a converted folder, read into memory (predict writes one row per example)."""
        store = Store(p)
        return np.asarray(Rows(store, np.arange(len(store)), store.x_shape or (1,)))
