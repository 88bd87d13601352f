"""`nnctl explain`: the notes' worked backpropagation example, line by line, from the training code."""

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from nnctl.app.explain import explain_spec
from nnctl.cli import app
from tests.conftest import SPECS

WORKED = str(SPECS / "backprop_worked_example.yaml")

# (label as printed, value in the notes, decimals the notes give)
NOTES = [
    ("H1", 0.3775, 4),
    ("H1_final", 0.593269992, 9),
    ("y1", 1.10590597, 8),
    ("y1_final", 0.75136507, 8),
    ("E_total", 0.298371109, 9),
    ("dE/dw5", 0.0821670407, 10),
    ("w5_new", 0.35891648, 8),
    ("dE/dw1", 0.000438568, 9),
    ("w1_new", 0.149780716, 9),
]


@pytest.fixture(scope="module")
def text():
    res = CliRunner().invoke(app, ["explain", WORKED])
    assert res.exit_code == 0, res.output
    return res.output


def _printed(text, label):
    m = re.search(rf"(?:^|\s){re.escape(label)} = (?:[A-Za-z][^=\n]* = )?(-?[0-9][0-9.e-]*)", text, re.M)
    assert m, f"{label} not printed"
    return float(m.group(1))


@pytest.mark.parametrize("label,value,decimals", NOTES)
def test_worked_example_line_by_line(text, label, value, decimals):
    got = _printed(text, label)
    # the notes round intermediate values; ours agree to the last digit they print (within one unit)
    assert abs(got - value) <= 1.01 * 10**-decimals, (label, got, value)


def test_worked_example_exact_lines(text):
    for line in (
        "H1 = x1*w1 + x2*w2 + b1_1 = 0.3775",
        "H1_final = sigmoid(H1) = 0.593269992",
        "y1_final = sigmoid(y1) = 0.75136507",
        "E_total = 0.298371109",
        "w5_new = 0.35891648",
        "w1_new = 0.149780716",
    ):
        assert line in text
    assert "(frozen)" in text  # the biases are fixed in the notes' example


def test_json_is_the_same_data():
    res = CliRunner().invoke(app, ["explain", WORKED, "--json", "--steps", "2"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    s1, s2 = doc["steps"]
    assert s1["loss"] == pytest.approx(0.298371109, abs=1e-9)
    out = s1["layers"][1]
    assert out["z"][0][0] == pytest.approx(1.10590597, abs=1e-8)
    assert out["grads"]["kernel"][0][0] == pytest.approx(0.0821670406, abs=1e-10)
    assert out["updated"]["kernel"][0][0] == pytest.approx(0.35891648, abs=1e-8)
    hid = s1["layers"][0]
    assert hid["updated"]["kernel"][0][0] == pytest.approx(0.149780716, abs=1e-9)
    assert hid["updated"]["bias"] == hid["params"]["bias"] == [0.35, 0.35]
    # step 2 starts from step 1's updated weights: the error goes down
    assert s2["layers"][1]["params"]["kernel"] == out["updated"]["kernel"]
    assert s2["loss"] < s1["loss"]


def test_explained_update_is_the_training_step(tmp_path):
    """explain's update is the training step itself: after 3 steps its weights equal a 3-epoch run's."""
    from nnctl.app import train_run

    doc = explain_spec(WORKED, steps=3)
    res = train_run(WORKED, str(tmp_path / "r"), ("train.epochs=3",))
    from nnctl import rundir

    w = rundir.read_msgpack(res.run_dir / rundir.WEIGHTS)["params"]
    np.testing.assert_allclose(w["dense_0"]["kernel"], doc["steps"][-1]["layers"][0]["updated"]["kernel"], rtol=1e-6)


def test_large_layers_are_summarised():
    rows = np.random.default_rng(0).uniform(size=(6, 64)).round(3).tolist()
    spec = f"""
data: {{source: inline, x: {rows}, y: [0, 1, 2, 3, 4, 5]}}
model:
  layers:
    - {{type: dense, units: 32, activation: relu}}
    - {{type: dense, units: 10, activation: softmax}}
train: {{loss: categorical_crossentropy, batch_size: 4}}
"""
    import pathlib
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = pathlib.Path(d) / "s.yaml"
        p.write_text(spec)
        res = CliRunner().invoke(app, ["explain", str(p), "--sample", "3"])
        assert res.exit_code == 0, res.output
        assert "inputs x: shape [1, 64], norm" in res.output
        assert "z: shape [1, 32]" in res.output
        assert "dE/ddense_0/kernel: shape [64, 32]" in res.output
        assert "example 3" in res.output
        bad = CliRunner().invoke(app, ["explain", str(p), "--sample", "6"])
        assert bad.exit_code == 2 and "--sample must be between" in bad.output


NO_WEIGHTS = """\
data: {source: inline, x: [[1.0, 2.0, 0.5], [0.1, 0.2, 3.0], [2.0, 0.1, 0.1], [0.3, 3.0, 0.2]], y: [1, 2, 0, 1]}
model:
  layers:
    - {type: activation, activation: softmax}
train: {loss: categorical_crossentropy, epochs: 2}
"""

ONE_NEURON = """\
data: {source: inline, x: [[0.05, 0.10], [0.3, 0.2]], y: [[0.01], [0.9]]}
model:
  layers:
    - {type: dense, units: 1, activation: sigmoid}
train: {loss: mse, optimizer: {type: sgd, learning_rate: 0.5}, epochs: 2}
"""


def test_a_model_without_weights_trains_evaluates_and_explains(tmp_path):
    """The notes' softmax worked example: no parameters at all (was KeyError: 'params')."""
    from nnctl.app import evaluate_run, train_run
    from nnctl.app.explain import explain_spec

    spec = tmp_path / "softmax.yaml"
    spec.write_text(NO_WEIGHTS)
    res = train_run(str(spec), out=str(tmp_path / "r"))
    assert res.summary["status"] == "finished" and res.summary["parameters"] == 0
    assert evaluate_run(res.run_dir, "train")["metrics"]["loss"] > 0
    doc = explain_spec(str(spec))
    assert [r["name"] for r in doc["steps"][0]["layers"]] == ["activation_0"]


def test_explain_a_single_neuron(tmp_path):
    """A one-layer model (the notes' single neuron / perceptron) (was: not enough values to unpack)."""
    from nnctl.app.explain import explain_spec

    spec = tmp_path / "neuron.yaml"
    spec.write_text(ONE_NEURON)
    layers = explain_spec(str(spec), steps=2)["steps"][1]["layers"]
    assert [r["name"] for r in layers] == ["dense_0"] and "delta" in layers[0] and "updated" in layers[0]


# Every example spec (and every layer type): tests/test_explain_sweep.py
