"""`nnctl inspect params --explain`: every layer type's count written as its formula, and the formula's value
is the real count of the layer's variables (the layer table of tests/test_layers.py, every case)."""

import json
import math

import jax
import pytest
from typer.testing import CliRunner

from nnctl.app.explain_params import FORMULAS, evaluate, explained, layer_formula
from nnctl.cli import app
from nnctl.kinds.base import abstract_variables
from nnctl.layers import LAYERS
from nnctl.layers.graph import Network, thread_shapes
from tests.conftest import SPECS
from tests.test_layers import CASES, build


def _arrays(layers, in_shape):
    """(path, shape) of every variable (parameters and statistics) of the last layer."""
    name = layers[-1].name
    out = []
    for tree in abstract_variables(Network(layers), in_shape).values():
        for kp, leaf in jax.tree_util.tree_flatten_with_path(tree.get(name, {}))[0]:
            out.append(("/".join(str(getattr(k, "key", k)) for k in kp), tuple(leaf.shape)))
    return out


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_formula_value_is_the_real_count(case):
    _, raw, in_shape, _, _ = case
    layers = build(raw)
    shapes = thread_shapes(layers, in_shape)[0]
    last = layers[-1]
    arrays = _arrays(layers, in_shape)
    text = layer_formula(last, shapes[last.inputs[0]])
    assert text is not None, f"{last.type} has no parameter formula: add one to nnctl/app/explain_params.py"
    assert evaluate(text) == sum(math.prod(s) for _, s in arrays), (last.type, text, arrays)
    assert explained(last, shapes[last.inputs[0]], arrays)["source"] == "formula"


def test_every_layer_type_with_parameters_has_a_formula():
    missing = [n for n, cls in LAYERS.items() if (cls.has_params or n in ("residual", "time_distributed"))]
    assert [n for n in missing if n not in FORMULAS] == []


def test_the_issue_examples_and_the_notes_numbers():
    vgg = build([{"type": "conv2d", "filters": 64, "kernel_size": 3, "padding": 1}])
    assert layer_formula(vgg[0], (224, 224, 3)) == "3·3·3·64 + 64"
    lstm = build([{"type": "lstm", "units": 32}])
    assert layer_formula(lstm[0], (40, 1)) == "4·32·(1 + 32 + 1)" and evaluate("4·32·(1 + 32 + 1)") == 4352
    one_filter = build([{"type": "conv2d", "filters": 1, "kernel_size": 3}])  # the notes' 3x3x3 filter: 28
    assert evaluate(layer_formula(one_filter[0], (128, 128, 3))) == 28


def test_a_formula_that_disagrees_with_the_arrays_is_never_printed():
    dense = build([{"type": "dense", "units": 3}])[0]
    d = explained(dense, (4,), [("dense_0/kernel", (5, 3)), ("dense_0/bias", (3,))])  # not 4 inputs
    assert d == {"formula": "kernel 5·3 + bias 3", "count": 18, "source": "arrays"}


def test_cli_prints_the_formulas_and_json_has_them():
    spec = str(SPECS / "waveforms_lstm.yaml")
    res = CliRunner().invoke(app, ["inspect", "params", spec, "--explain"])
    assert res.exit_code == 0, res.output
    assert "4·32·(1 + 32 + 1) = 4,352" in res.output and "32·10 + 10 = 330" in res.output
    doc = json.loads(CliRunner().invoke(app, ["inspect", "params", spec, "--explain", "--json"]).output)
    assert [f["count"] for f in doc["formulas"]] == [0, 4352, 330]
    assert sum(f["count"] for f in doc["formulas"]) == doc["totals"]["total"]["count"]
    plain = json.loads(CliRunner().invoke(app, ["inspect", "params", spec, "--json"]).output)
    assert "formulas" not in plain
