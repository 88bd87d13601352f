"""Numbers as people write them: 3e-4, 1e3 and 1.5E+2 are numbers in a spec and in --set (YAML 1.2 floats;
PyYAML's YAML 1.1 resolver reads an exponent without a dot as a string). Quoted, they stay strings."""

from __future__ import annotations

import typing

import pytest
from pydantic import BaseModel

from nnctl.activations import ACTIVATIONS
from nnctl.initializers import INITIALIZERS
from nnctl.layers import LAYERS
from nnctl.losses import LOSSES
from nnctl.optim import OPTIMIZERS, SCHEDULES
from nnctl.spec import load_text
from nnctl.spec.models import DataSpec, EarlyStoppingSpec, TrainSpec
from nnctl.spec.yamlio import load_yaml, parse_scalar

IRIS = """\
data: {source: builtin:iris, validation_split: 0.2}
model:
  layers:
    - {type: dense, units: 8, activation: relu}
    - {type: dropout, rate: 5e-1}
    - {type: dense, units: 3, activation: softmax}
train:
  loss: categorical_crossentropy
  optimizer: {type: adam, learning_rate: 3e-4}
  weight_decay: 1E-5
  epochs: 1e3
  batch_size: 16
"""


@pytest.mark.parametrize(
    "text,value",
    [
        ("3e-4", 3e-4),
        ("1e3", 1000.0),
        ("1.5E+2", 150.0),
        ("-2e-1", -0.2),
        (".5e1", 5.0),
        ("1e-3", 1e-3),
        ("0.1", 0.1),
        ("10", 10),
    ],
)
def test_plain_scalars_are_numbers(text, value):
    assert load_yaml(f"a: {text}").data == {"a": value}
    assert parse_scalar(text) == value


@pytest.mark.parametrize("text", ["'3e-4'", '"1e3"', "e5", "1e", "3e-4x", "abc"])
def test_quoted_and_non_numbers_stay_strings(text):
    assert isinstance(load_yaml(f"a: {text}").data["a"], str)


def test_a_spec_written_like_keras_code_loads():
    spec = load_text(IRIS, "iris.yaml").spec
    assert spec.train.optimizer.learning_rate == pytest.approx(3e-4)
    assert spec.train.weight_decay == pytest.approx(1e-5)
    assert spec.train.epochs == 1000 and isinstance(spec.train.epochs, int)
    assert spec.model.layers[1].rate == pytest.approx(0.5)


def test_set_overrides_take_exponents():
    spec = load_text(
        IRIS,
        "iris.yaml",
        (
            "train.optimizer.learning_rate=1e-2",
            "train.epochs=2e1",
            "train.optimizer={type: sgd, learning_rate: {type: cosine, initial: 5e-2}}",
        ),
    ).spec
    assert spec.train.epochs == 20
    assert spec.train.optimizer.learning_rate.initial == pytest.approx(5e-2)


def _members(ann) -> list:
    """The types a field annotation admits (Annotated and unions unwrapped)."""
    if typing.get_origin(ann) is typing.Annotated:
        return _members(typing.get_args(ann)[0])
    if typing.get_origin(ann) in (typing.Union, type(int | None)):
        return [m for a in typing.get_args(ann) for m in _members(a)]
    return [ann]


def _numeric_fields(model: type[BaseModel]) -> list[tuple[str, type]]:
    out = []
    for name, f in model.model_fields.items():
        members = _members(f.annotation)
        if any(typing.get_origin(m) in (list, tuple) for m in members):
            continue  # per-axis lists: their elements are covered by the scalar case
        if float in members:
            out.append((name, float))
        elif int in members and bool not in members:
            out.append((name, int))
    return out


def _option_models():
    for reg in (ACTIVATIONS, INITIALIZERS, LOSSES, OPTIMIZERS, SCHEDULES):
        for name, model in reg.models.items():
            yield f"{reg.kind}:{name}", model
    for name, cls in LAYERS.items():
        yield f"layer:{name}", cls
    for model in (DataSpec, TrainSpec, EarlyStoppingSpec):
        yield model.__name__, model


CASES = [(where, model, field, kind) for where, model in _option_models() for field, kind in _numeric_fields(model)]


def test_the_table_covers_numeric_fields():
    assert len(CASES) > 40 and any(f == "learning_rate" for _, _, f, _ in CASES)


@pytest.mark.parametrize("where,model,field,kind", CASES, ids=[f"{w}.{f}" for w, _, f, _ in CASES])
def test_every_numeric_field_reads_exponent_notation(where, model, field, kind):
    """The YAML `field: 1e0` reaches every numeric field of the schema as the number 1."""
    value = load_yaml(f"{field}: 1e0").data[field]
    assert value == 1.0 and isinstance(value, float)
    adapter_type = model.model_fields[field].annotation
    from pydantic import TypeAdapter

    got = TypeAdapter(adapter_type).validate_python(value)
    assert got == 1
