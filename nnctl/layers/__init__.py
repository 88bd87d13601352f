"""Layer families. Importing this package registers every layer type; a new family is one module
listed in FAMILIES."""

from __future__ import annotations

import importlib
from typing import Annotated, Union

from pydantic import Field

from nnctl.layers.base import LAYERS, LayerSpec, Shape, ShapeError, register_layer  # noqa: F401

FAMILIES = ["core", "norm", "blocks", "conv", "pool", "recurrent", "embedding", "attention", "merge"]

for _m in FAMILIES:
    importlib.import_module(f"nnctl.layers.{_m}")

AnyLayer = Annotated[Union[tuple(cls for _, cls in LAYERS.items())], Field(discriminator="type")]  # type: ignore

for _, _cls in LAYERS.items():
    if "AnyLayer" in str(_cls.model_fields.get("layers", "")) or not _cls.__pydantic_complete__:
        _cls.model_rebuild(_types_namespace={"AnyLayer": AnyLayer})
