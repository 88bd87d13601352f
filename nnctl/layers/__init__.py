"""Layer families. Importing this package registers every layer type: each module in this folder is a
family and is imported here, so a new family is one new file. `base` and `graph` are the machinery, not
families; a helper module that registers no layers is named with a leading underscore."""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Annotated, TypeAlias, Union

from pydantic import Field

from nnctl.layers.base import LAYERS, LayerSpec, Shape, ShapeError, register_layer  # noqa: F401

NOT_FAMILIES = {"base", "graph"}

FAMILIES = sorted(
    m.name for m in pkgutil.iter_modules(__path__) if m.name not in NOT_FAMILIES and not m.name.startswith("_")
)

for _m in FAMILIES:
    importlib.import_module(f"{__name__}.{_m}")

if TYPE_CHECKING:
    # Statically, any registered layer: every member of the runtime union is a LayerSpec subclass.
    AnyLayer: TypeAlias = LayerSpec
else:
    # A pydantic discriminated union over every registered layer class, built at import time.
    AnyLayer = Annotated[Union[tuple(cls for _, cls in LAYERS.items())], Field(discriminator="type")]

for _, _cls in LAYERS.items():
    if "AnyLayer" in str(_cls.model_fields.get("layers", "")) or not _cls.__pydantic_complete__:
        _cls.model_rebuild(_types_namespace={"AnyLayer": AnyLayer})
