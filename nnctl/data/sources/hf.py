"""`hf`: a Hugging Face `datasets` dataset on local disk: a folder written by `save_to_disk` (read with
`load_from_disk`), or local files its packaged readers load (a .csv, .parquet, .json or .jsonl file, or an
image folder with one sub-folder per class). Nothing is downloaded (the library runs offline) and only
packaged readers are used, so no code from the data is run.

`hf_split` picks the split to train on (default `train`; a single dataset is its own `train`), `test: {split:
name}` a fixed test split. `x` is the input column (or a list of numeric columns, concatenated), `y` the label
column: a ClassLabel gives the class names, text labels become classes (sorted), numbers stay numbers.
Image columns are converted and sized like `source: images` (`color_mode`, `image_size`, `resize`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.data.cache import cache_dir
from nnctl.data.sources.base import (
    IMAGE_KEYS,
    DataInfo,
    DataSource,
    Raw,
    data_source,
    existing_file,
    reject_csv_options,
    reject_unused,
    require,
)
from nnctl.data.sources.images import channels, fit_image, same_size
from nnctl.errors import DataError, did_you_mean

INSTALL = "source hf needs the Hugging Face datasets library: pip install 'nnctl[hf]' (or pip install datasets)"
SAVED = ("dataset_dict.json", "state.json")  # the files of a folder written by save_to_disk
READERS = {".csv": "csv", ".parquet": "parquet", ".json": "json", ".jsonl": "json"}


def _hd() -> Any:
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # never reach the network
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import datasets as hd  # lazy: an optional dependency that takes about a second to import
    except ImportError:
        raise DataError(INSTALL) from None
    hd.disable_progress_bars()
    hd.logging.set_verbosity_error()
    return hd


def load_splits(data, base_dir: Path) -> tuple[Path, dict]:
    """(path, {split name: Dataset}) of what `data.path` names."""
    hd = _hd()
    p = existing_file(data, base_dir, "dataset")
    cache = cache_dir()
    kw = {"cache_dir": str(cache / "hf")} if cache else {}
    try:
        if p.is_dir() and any((p / m).is_file() for m in SAVED):
            d = hd.load_from_disk(str(p))
        elif p.is_dir():
            d = hd.load_dataset("imagefolder", data_dir=str(p), **kw)
        elif p.suffix.lower() in READERS:
            d = hd.load_dataset(READERS[p.suffix.lower()], data_files=str(p), **kw)
        else:
            raise DataError(
                f"{p}: not a dataset folder written by save_to_disk, an image folder, or a {', '.join(READERS)} file"
            )
    except (OSError, ValueError, TypeError, KeyError, hd.exceptions.DatasetGenerationError) as e:
        raise DataError(f"{p}: the datasets library cannot read it ({type(e).__name__}: {e})") from None
    return p, (dict(d) if isinstance(d, hd.DatasetDict) else {"train": d})


def split_of(p: Path, splits: dict, name: str, key: tuple) -> Any:
    if name not in splits:
        names = sorted(splits)
        raise DataError(f"{p}: no split '{name}'.{did_you_mean(name, names)} Splits: {', '.join(names)}", key)
    return splits[name]


def _check_columns(p: Path, ds: Any, data) -> list[str]:
    xs = [data.x] if isinstance(data.x, str) else list(data.x)
    for k, c in [*(("x", c) for c in xs), ("y", data.y)]:
        if c not in ds.column_names:
            raise DataError(
                f"{p}: no column '{c}' for data.{k}.{did_you_mean(c, ds.column_names)} "
                f"Columns: {', '.join(ds.column_names)}",
                ("data", k),
            )
    return xs


def _images(p: Path, ds: Any, col: str, data) -> np.ndarray:
    out: list[np.ndarray] = []
    for i, im in enumerate(ds[col]):
        if im is None:
            raise DataError(f"{p}: row {i}, column '{col}': no image")
        a = fit_image(im, data)
        if out:
            same_size(a, out[0], f"{p}: row {i}, column '{col}'", "row 0")
        out.append(a)
    return np.stack(out) if out else np.empty((0, 1, 1, channels(data)), np.uint8)


def column(p: Path, ds: Any, col: str, data) -> np.ndarray:
    """One column as an array: images decoded and sized, numbers (and equal-length lists of them) as they are."""
    hd = _hd()
    if isinstance(ds.features[col], hd.Image):
        return _images(p, ds, col, data)
    a = ds.select_columns([col]).with_format("numpy")[:][col]
    if a.dtype == object or a.dtype.kind not in "biuf":
        sample = next((v for v in a.ravel() if v is not None), None)
        what = "lists of different lengths" if isinstance(sample, np.ndarray) else f"values like {str(sample)!r}"
        raise DataError(f"{p}: column '{col}' holds {what}; inputs must be numbers, equal-length lists or images")
    return a


def inputs(p: Path, ds: Any, xs: list[str], data) -> np.ndarray:
    if len(xs) == 1:
        a = column(p, ds, xs[0], data)
        return (a if a.ndim > 1 else a[:, None]).astype(np.float32)
    return np.concatenate([column(p, ds, c, data).reshape(len(ds), -1) for c in xs], 1).astype(np.float32)


def labels(p: Path, splits: list, col: str) -> tuple[list[np.ndarray], list[str] | None]:
    """The label column of each dataset in `splits`, and the class names (ClassLabel names or sorted text)."""
    hd = _hd()
    feature = splits[0].features[col]
    if isinstance(feature, hd.ClassLabel):
        ys = [np.asarray(ds[col], np.int64) for ds in splits]
        for ds, y in zip(splits, ys):
            if (y < 0).any():  # the datasets convention for "no label" (unlabelled test splits)
                where = f"split '{ds.split}', " if ds.split else ""
                raise DataError(f"{p}: {where}row {int(np.argmax(y < 0))}: no label (-1) in '{col}'")
        return ys, list(feature.names)
    raw = [ds.select_columns([col]).with_format("numpy")[:][col] for ds in splits]
    if all(r.dtype.kind in "biuf" for r in raw):
        return raw, None
    if any(v is None for r in raw for v in r.ravel()):
        raise DataError(f"{p}: column '{col}' has missing labels")
    values = [[str(v) for v in r.ravel()] for r in raw]
    names = sorted({v for vs in values for v in vs})
    index = {c: i for i, c in enumerate(names)}
    return [np.array([index[v] for v in vs], np.int64) for vs in values], names


@data_source("hf")
class HfSource(DataSource):
    order = 6
    own_keys = (*IMAGE_KEYS, "hf_split")
    folder_markers = SAVED

    def check(self, data) -> None:
        require(data, "path", "x", "y")
        if not isinstance(data.y, str) or not (
            isinstance(data.x, str) or (data.x and all(isinstance(c, str) for c in data.x))
        ):
            raise ValueError("hf data needs x as a column name (or a list of them) and y as a column name")
        if data.test is not None and set(data.test) != {"split"}:
            raise ValueError(f"hf data: test must be {{split: <name>}}, got {data.test}")
        reject_csv_options(data)
        reject_unused(data, "hf", "target", "features")

    def peek(self, data, base_dir: Path) -> DataInfo:
        p, splits = load_splits(data, base_dir)
        ds = split_of(p, splits, data.hf_split or "train", ("data", "hf_split"))
        xs = _check_columns(p, ds, data)
        hd = _hd()
        feature = ds.features[data.y]
        classes = feature.num_classes if isinstance(feature, hd.ClassLabel) else None
        if not len(ds):
            return DataInfo(None, classes)
        return DataInfo(inputs(p, ds.select(range(1)), xs, data).shape[1:], classes)

    def read(self, data, base_dir: Path, seed: int) -> Raw:
        p, splits = load_splits(data, base_dir)
        ds = split_of(p, splits, data.hf_split or "train", ("data", "hf_split"))
        xs = _check_columns(p, ds, data)
        sets = [ds]
        if data.test is not None:
            sets.append(split_of(p, splits, data.test["split"], ("data", "test", "split")))
            _check_columns(p, sets[1], data)
        ys, names = labels(p, sets, data.y)
        x = inputs(p, ds, xs, data)
        xt = inputs(p, sets[1], xs, data) if len(sets) > 1 else None
        origin = f"{p} [{data.hf_split or 'train'}]"
        return Raw(x, ys[0], xt, ys[1] if len(ys) > 1 else None, class_names=names, origin=origin)

    def read_inputs(self, p: Path, data, dataset) -> np.ndarray:
        """The training input column(s) (`data.x`) of a save_to_disk folder: a dataset, or a DatasetDict's
        `test` split (else its only split); images decoded and sized as in training."""
        hd = _hd()
        try:
            d = hd.load_from_disk(str(p))
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise DataError(f"{p}: the datasets library cannot read it ({type(e).__name__}: {e})") from None
        if isinstance(d, hd.DatasetDict):
            if "test" not in d and len(d) != 1:
                raise DataError(f"{p}: predict reads its 'test' split, or its only one; it has {', '.join(sorted(d))}")
            d = d["test"] if "test" in d else next(iter(d.values()))
        xs = [data.x] if isinstance(data.x, str) else list(data.x)
        for c in xs:
            if c not in d.column_names:
                raise DataError(
                    f"{p}: no column '{c}' (the run's input).{did_you_mean(c, d.column_names)} "
                    f"Columns: {', '.join(d.column_names)}"
                )
        return inputs(p, d, xs, data)
