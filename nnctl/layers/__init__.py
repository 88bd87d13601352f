"""Layer families. Importing this package registers every layer type: each module in this folder is a
family and is imported here, so a new family is one new file. `base` and `graph` are the machinery, not
families; a helper module that registers no layers is named with a leading underscore."""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, Union

from pydantic import Field, TypeAdapter, ValidationError
from pydantic_core import core_schema

from nnctl.layers.base import LAYERS, LayerSpec, Shape, ShapeError, register_layer  # noqa: F401

NOT_FAMILIES = {"base", "graph"}

FAMILIES = sorted(
    m.name for m in pkgutil.iter_modules(__path__) if m.name not in NOT_FAMILIES and not m.name.startswith("_")
)

for _m in FAMILIES:
    importlib.import_module(f"{__name__}.{_m}")


class _ByType:
    """Validates a layer as the discriminated union over every layer class would, building only the classes
    a spec uses (the layer classes defer their pydantic schemas: building all of them cost every process
    about 0.1 CPU-s).

    A mapping whose `type` names a layer is validated by that class alone. Anything else, and any layer that
    fails its class's validation, is validated again by the whole union (built then, once), so every error
    is the union's own: the same types, locations (with the tag) and contexts that `nnctl.spec` turns into
    located messages. The JSON Schema is the union's."""

    def __init__(self, union: Any):
        self.union = union
        self._adapter: TypeAdapter | None = None
        self._generating = False  # inside the JSON Schema of the union (see __get_pydantic_json_schema__)

    def adapter(self) -> TypeAdapter:
        if self._adapter is None:
            self._adapter = TypeAdapter(self.union)
        return self._adapter

    def validate(self, value: Any) -> Any:
        name = value.get("type") if isinstance(value, dict) else None
        if isinstance(name, str) and name in LAYERS:
            try:
                return LAYERS.get(name).model_validate(value)
            except ValidationError:
                pass  # the union's own error, below
        return self.adapter().validate_python(value)

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self.validate)

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> Any:
        full = self.adapter().core_schema  # {definitions, schema: the tagged union}
        if self._generating:  # a layer holding layers, inside the union: its members are being defined
            return handler(_by_reference(full["schema"]))
        self._generating = True
        try:
            return handler(full)
        finally:
            self._generating = False


def _by_reference(union: Any) -> Any:
    """The tagged union with each member a reference to its model (the JSON Schema refers to every model)."""

    def ref(member: Any) -> Any:
        while "ref" not in member and "schema" in member:  # a validator around the model
            member = member["schema"]
        return core_schema.definition_reference_schema(member["ref"]) if "ref" in member else member

    return {**union, "choices": {tag: ref(m) for tag, m in union["choices"].items()}}


if TYPE_CHECKING:
    # Statically, any registered layer: every member of the runtime union is a LayerSpec subclass.
    AnyLayer: TypeAlias = LayerSpec
else:
    # Any registered layer class, chosen by `type`. The annotation stays the union (nnctl.spec reads it to
    # locate errors); `_ByType` validates it.
    _LAYER_UNION = Union[tuple(cls for _, cls in LAYERS.items())]
    AnyLayer = Annotated[_LAYER_UNION, _ByType(Annotated[_LAYER_UNION, Field(discriminator="type")])]

for _, _cls in LAYERS.items():
    if "AnyLayer" in str(_cls.model_fields.get("layers", "")):
        _cls.model_rebuild(_types_namespace={"AnyLayer": AnyLayer})
