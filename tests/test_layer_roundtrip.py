"""Every layer's spec survives serialization (like Keras' get_config/from_config tests): for every row of the
layer table in test_layers.py, the layer dumped to plain data (every field, defaults included), written as
YAML, read back by the spec reader and validated again is the same layer; and a whole spec holding it
survives the run directory's resolved-spec writer (`spec.yaml`) and `load_spec`. A field that does not
round-trip (a lossy serializer, a default that `exclude_none` changes, a type that YAML mangles) fails here.
"""

from __future__ import annotations

from typing import Literal

import pytest
import yaml
from pydantic import Field, TypeAdapter, field_serializer

from nnctl import rundir
from nnctl.layers import LAYERS, AnyLayer
from nnctl.layers.base import LayerSpec
from nnctl.spec import load_spec, load_text
from nnctl.spec.yamlio import load_yaml
from tests.test_layers import CASES, build

ONE_LAYER = TypeAdapter(AnyLayer)


def roundtrip(layer: LayerSpec, adapter: TypeAdapter = ONE_LAYER) -> LayerSpec:
    """dump (every field) -> YAML text -> the spec's YAML reader -> validation; asserts nothing changed."""
    data = layer.model_dump(mode="json", exclude_defaults=False)
    text = yaml.safe_dump(data, sort_keys=False)
    again = adapter.validate_python(load_yaml(text, "<layer>").data)
    assert type(again) is type(layer), text
    assert again == layer, f"{layer.type} does not round-trip:\n{text}"
    assert again.model_dump(mode="json", exclude_defaults=False) == data, text
    return again


def test_the_table_has_a_row_for_every_registered_layer():
    covered = {LAYERS.canonical(build(raw)[-1].type) for _, raw, *_ in CASES}
    missing = {name for name, _ in LAYERS.items()} - covered
    assert not missing, f"add a row to CASES in tests/test_layers.py for: {', '.join(sorted(missing))}"


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_layer_spec_round_trips_through_yaml(case):
    _, raw, *_ = case
    for layer in build(raw):
        roundtrip(layer)


SPEC = """
data: {{source: builtin:xor}}
model:
  input_shape: {shape}
  layers: {layers}
train: {{loss: mse, optimizer: sgd, epochs: 1}}
"""


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_layer_round_trips_through_the_resolved_spec_file(case, tmp_path):
    _, raw, in_shape, *_ = case
    text = SPEC.format(shape=list(in_shape), layers=yaml.safe_dump(raw, default_flow_style=True).strip())
    first = load_text(text, check=False).spec
    rundir.write_spec(tmp_path, first)
    again = load_spec(tmp_path / rundir.SPEC, check=False).spec
    for a, b in zip(first.model.layers, again.model.layers, strict=True):
        assert b == a, f"{a.type} changed through spec.yaml:\n{(tmp_path / rundir.SPEC).read_text()}"
    assert again == first


class _Lossy(LayerSpec):
    """A layer whose `scale` is written rounded: the round trip must notice."""

    type: Literal["lossy"] = "lossy"
    scale: float = Field(1.0)

    @field_serializer("scale")
    def _rounded(self, v):
        return round(v)


def test_a_field_that_does_not_round_trip_fails():
    adapter = TypeAdapter(_Lossy)
    roundtrip(_Lossy(scale=2.0), adapter)
    with pytest.raises(AssertionError, match="lossy does not round-trip"):
        roundtrip(_Lossy(scale=2.5), adapter)
