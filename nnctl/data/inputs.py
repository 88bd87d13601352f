"""New inputs for `predict`: a csv, npz or parquet file, an image file or a folder of them, a Hugging Face
dataset saved to disk or a converted shard folder, read the way the run's training data was prepared."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from nnctl.data.prepare import check_finite
from nnctl.data.sources import DATA_SOURCES, DataSource
from nnctl.errors import DataError

DEFAULT_INPUT_SOURCE = "csv"  # reads a file whose suffix no source claims (.txt, .tsv, none) as delimited text


def input_source(p: Path) -> DataSource:
    """The source whose `suffixes` include `p`'s (.npz: npz; .png: images); for a folder, the source whose
    `folder_markers` it holds (a save_to_disk dataset: hf; a converted data set: shards), else the one reading
    folders (images); else DEFAULT_INPUT_SOURCE."""
    if p.is_dir():
        for _, source in DATA_SOURCES.items():
            if any((p / m).is_file() for m in source.folder_markers):
                return source
    for _, source in DATA_SOURCES.items():
        if (source.input_dirs and p.is_dir()) or (p.suffix.lower() in source.suffixes and not p.is_dir()):
            return source
    return DATA_SOURCES.get(DEFAULT_INPUT_SOURCE)


def input_names(path: str, data_spec) -> list[str] | None:
    """The names of the examples in an input (the image files of a folder), or None (rows of a table)."""
    p = Path(path)
    return input_source(p).input_names(p, data_spec) if p.exists() else None


def read_inputs(path: str, data_spec, data) -> np.ndarray:
    """The examples of an input file (csv or npz) as the model's inputs: csv columns by the names the run was
    trained on (categorical ones one-hot encoded the same way), missing values filled as in training.

    `data_spec`: the run's DataSpec; `data`: its prepared Dataset (imputer, csv layout, input shape)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"no such input file: {p}")
    x = input_source(p).read_inputs(p, data_spec, data)
    x = data.imputer.apply(x)
    check_finite(x, str(p))
    n = math.prod(data.input_shape)
    if math.prod(x.shape[1:]) != n:
        raise DataError(
            f"{p}: examples have {math.prod(x.shape[1:])} values, the model expects {list(data.input_shape)}"
        )
    return x.reshape((len(x), *data.input_shape))
