"""`builtin:<name>`: a dataset generated or shipped with scikit-learn (see nnctl.data.builtin)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnctl.data.builtin import BUILTINS, Builtin
from nnctl.data.sources.base import DataInfo, DataSource, Raw, data_source, reject_csv_options
from nnctl.errors import choices_text, did_you_mean


def dataset(data) -> Builtin:
    """The built-in dataset `data.source` names (`builtin:<name>`)."""
    return BUILTINS[data.source.split(":", 1)[1]]


@data_source("builtin")
class BuiltinSource(DataSource):
    order = 0
    takes_name = True

    def spellings(self) -> list[str]:
        return [f"builtin:{n}" for n in sorted(BUILTINS)]

    def check_name(self, name: str) -> None:
        names = sorted(BUILTINS)
        if name not in names:
            raise ValueError(
                f"unknown built-in dataset '{name}'.{did_you_mean(name, names)} Choices: {choices_text(names)}"
            )

    def check(self, data) -> None:
        reject_csv_options(data)

    def peek(self, data, base_dir: Path) -> DataInfo:
        b = dataset(data)
        return DataInfo(b.x_shape, b.num_classes)

    def read(self, data, base_dir: Path, seed: int) -> Raw:
        b = dataset(data)
        x, y = b.load(seed, data.n_samples, data.noise)
        return Raw(
            np.asarray(x, np.float32),
            np.asarray(y),
            origin=data.source,
            task="regression" if b.num_classes is None else None,
        )
