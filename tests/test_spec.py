"""The spec loader: located one-pass errors, did-you-mean, overrides, round trips, safety."""

import json

import pytest
import yaml

from nnctl.errors import SpecError
from nnctl.spec import load_spec, load_text
from nnctl.spec.models import Spec
from tests.conftest import SPECS

GOOD = """\
data: {source: builtin:iris}
model:
  layers:
    - {type: dense, units: 8, activation: relu}
    - {type: dense, units: 3, activation: softmax}
train: {loss: categorical_crossentropy, metrics: [accuracy]}
"""


def problems(text, file="spec.yaml"):
    with pytest.raises(SpecError) as e:
        load_text(text, file)
    return [str(p) for p in e.value.problems]


def test_all_mistakes_in_one_pass_with_locations():
    text = """\
data:
  source: builtin:irsi
  normalize: standrad
model:
  layers:
    - {type: dens, units: 3}
    - {type: dense, unitz: 3, activation: sigmiod}
train:
  loss: categorical_crossentropy
  optimizer: {type: adamm}
"""
    got = problems(text)
    want = [
        "spec.yaml:2:11: data.source: unknown built-in dataset 'irsi'. Did you mean 'iris'?",
        "spec.yaml:3:14: data.normalize: 'standrad' is not allowed. Did you mean 'standard'? Choices: none, minmax, standard",
        "spec.yaml:6:14: model.layers[0].type: unknown layer type 'dens'. Did you mean 'dense'?",
        "spec.yaml:7:43: model.layers[1].activation: unknown activation type 'sigmiod'. Did you mean 'sigmoid'?",
        "spec.yaml:7:21: model.layers[1].unitz: unknown key 'unitz'. Did you mean 'units'?",
        "spec.yaml:10:21: train.optimizer.type: unknown optimizer type 'adamm'. Did you mean 'adam'?",
    ]
    for w in want:
        assert any(g.startswith(w) for g in got), (w, got)


@pytest.mark.parametrize(
    "mutate,fragment",
    [
        (lambda s: s.replace("units: 8", "units: eight"), "model.layers[0].units: input should be a valid integer"),
        (lambda s: s.replace("units: 8, ", ""), "model.layers[0]: missing required key 'units' for type 'dense'"),
        (
            lambda s: s.replace("metrics: [accuracy]", "metrics: [acuracy]"),
            "unknown metric 'acuracy'. Did you mean 'accuracy'?",
        ),
        (
            lambda s: s.replace("loss: categorical_crossentropy", "loss: categorical_crossentropyy"),
            "unknown loss type 'categorical_crossentropyy'",
        ),
        (lambda s: s + "extra: 1\n", ": extra: unknown key 'extra'"),
        (lambda s: s.replace("{loss:", "{batch_size: 0, loss:"), "batch_size must be positive or 'full'"),
        (lambda s: s.replace("{loss:", "{epochs: 5, steps: 3, loss:"), "give epochs or steps, not both"),
        (
            lambda s: s.replace("{loss:", "{gradient_clipping: {max_norm: 1, max_value: 1}, loss:"),
            "give exactly one of max_norm (L2 norm) or max_value (elementwise)",
        ),
        (
            lambda s: s.replace("{loss:", "{gradient_clipping: {max_value: 1, per_tensor: true}, loss:"),
            "per_tensor applies to max_norm only",
        ),
        (
            lambda s: s.replace("{loss:", "{early_stopping: {monitor: val_acuracy}, loss:"),
            "unknown monitor 'val_acuracy'. Did you mean",
        ),
        (lambda s: s.replace("{loss:", "{early_stopping: {monitor: val_loss}, loss:"), "needs validation data"),
        (lambda s: s.replace("{loss:", "{freeze: ['dense_9/*'], loss:"), "'dense_9/*' matches no parameter"),
        (
            lambda s: s.replace("{loss:", "{optimizer: {type: adamw, weight_decay: 0.1}, weight_decay: 0.1, loss:"),
            "weight decay is given twice",
        ),
        (
            lambda s: s.replace("{loss:", "{optimizer: {type: sgd, learning_rate: {type: step}}, loss:"),
            "give exactly one of `every_epochs` or `boundaries`",
        ),
        (
            lambda s: s.replace("units: 3, activation: softmax", "units: 4, activation: softmax"),
            "the data has 3 classes but the last layer outputs 4 values",
        ),
        (
            lambda s: s.replace("{type: dense, units: 8, activation: relu}", "{type: reshape, shape: [2, 3]}"),
            "(reshape) cannot reshape (4,) (4 values) to [2, 3]",
        ),
        (
            lambda s: s.replace("layers:\n", "input_shape: [2, 2, 1]\n  layers:\n"),
            "(dense) expects a vector (or a sequence of vectors), got (2, 2, 1): add a flatten layer",
        ),
        (
            lambda s: s.replace(
                "{type: dense, units: 3, activation: softmax}",
                "{type: dense, units: 3, activation: softmax, inputs: [dense_7]}",
            ),
            "unknown input 'dense_7'. Did you mean 'dense_0'?",
        ),
        (  # found by tests/test_fuzz.py: an empty list crashed the mask and shape checks (IndexError)
            lambda s: s.replace(
                "{type: dense, units: 3, activation: softmax}",
                "{type: dense, units: 3, activation: softmax, inputs: []}",
            ),
            "model.layers[1].inputs: list should have at least 1 item",
        ),
        (
            lambda s: s.replace("activation: relu", "activation: {type: leaky_relu, slope: 0.1}"),
            "unknown key 'slope'. Did you mean",
        ),
        (lambda s: s.replace("source: builtin:iris", "source: csv, path: nowhere.csv, target: y"), "no such CSV file"),
    ],
)
def test_catalogue(mutate, fragment):
    got = problems(mutate(GOOD))
    assert any(fragment in g for g in got), (fragment, got)
    assert all(g.startswith("spec.yaml:") or g.startswith("nowhere") for g in got)


def test_yaml_syntax_error_is_located():
    got = problems("data: {source: builtin:iris\nmodel: [\n")
    assert got[0].startswith("spec.yaml:") and "invalid YAML" in got[0]


def test_yaml_bomb_refused_quickly():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi")
    )
    got = problems(bomb)
    assert "refusing to load it" in got[0]


def test_python_tags_are_refused():
    got = problems("data: !!python/object/apply:os.system ['echo hi']\n")
    assert "not allowed" in got[0] or "unsupported YAML" in got[0]


def test_duplicate_keys_are_errors():
    assert "appears twice" in problems("seed: 1\nseed: 2\n" + GOOD)[0]


def test_set_overrides_and_their_errors():
    loaded = load_text(GOOD, overrides=("train.epochs=3", "model.layers[0].units=5", "train.optimizer.type=sgd"))
    assert loaded.spec.train.epochs == 3 and loaded.spec.model.layers[0].units == 5
    assert loaded.spec.train.optimizer.type == "sgd"
    with pytest.raises(SpecError) as e:
        load_text(GOOD, overrides=("model.layers[0].units=-4",))
    assert str(e.value.problems[0]).startswith("--set model.layers[0].units=-4: model.layers[0].units")


def test_defaults_are_filled_and_round_trip():
    spec = load_spec(SPECS / "iris.yaml").spec
    dumped = yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True))
    again = load_text(dumped).spec
    assert again == spec
    assert spec.model.layers[0].name == "dense_0" and spec.model.layers[1].inputs == ["dense_0"]
    assert spec.train.optimizer.b1 == 0.9


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_spec_validates(path):
    load_spec(path, require_sources=False)  # transfer specs name a run that is trained first


def test_json_schema_lists_layers_and_optimizers():
    schema = Spec.model_json_schema()
    text = json.dumps(schema)
    for name in ("dense", "batch_norm", "adam", "lion", "leaky_relu", "he_normal", "cosine"):
        assert f'"{name}"' in text
