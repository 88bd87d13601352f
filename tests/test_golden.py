"""Numbers the course notes give, reproduced exactly."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnctl.app import train_run
from nnctl.app.inspect import params_report
from nnctl.kinds import MODEL_KINDS
from nnctl.spec import load_spec, load_text
from tests.conftest import SPECS

MLP_1024 = """
data: {source: inline, x: [%s], y: [[0]]}
model:
  input_shape: [1024]
  layers:
    - {type: dense, units: 5}
    - {type: dense, units: 10}
    - {type: dense, units: 10}
    - {type: dense, units: 1000}
train: {loss: mse}
""" % ([0] * 1024)


def test_mlp_parameter_count_16295():
    rep = params_report(load_text(MLP_1024))
    per_layer = [layer["count"] for layer in rep["layers"]]
    assert per_layer == [5125, 60, 110, 11000]
    assert rep["totals"]["total"]["count"] == 16295
    assert rep["totals"]["trainable"]["count"] == 16295
    assert rep["totals"]["non_trainable"]["count"] == 0


def _apply(spec_text, x):
    loaded = load_text(spec_text)
    net = MODEL_KINDS.get("sequential").network(loaded.spec.model, None)
    variables = net.init(jax.random.key(0), jnp.zeros((1, *loaded.analysis.input_shape)))
    return np.asarray(net.apply(variables, jnp.asarray(x, jnp.float32)))


NEURON = """
data: {source: inline, x: [[2, 3]], y: [[1]]}
model:
  layers:
    - {type: dense, units: 1, activation: sigmoid, kernel_init: {type: values, values: [[0], [1]]},
       bias_init: {type: constant, value: 4}}
train: {loss: mse}
"""

NET_221 = """
data: {source: inline, x: [[2, 3]], y: [[1]]}
model:
  layers:
    - {type: dense, units: 2, activation: sigmoid, kernel_init: {type: values, values: [[0, 0], [1, 1]]}, bias_init: zeros}
    - {type: dense, units: 1, activation: sigmoid, kernel_init: {type: values, values: [[0], [1]]}, bias_init: zeros}
train: {loss: mse}
"""


def test_single_neuron_outputs_0_999():
    out = _apply(NEURON, [[2, 3]])
    assert out[0, 0] == pytest.approx(0.99909, abs=1e-5)
    assert round(float(out[0, 0]), 3) == 0.999


def test_221_network_outputs_0_7216():
    assert _apply(NET_221, [[2, 3]])[0, 0] == pytest.approx(0.7216, abs=1e-4)


@pytest.fixture(scope="module")
def worked_one_step(tmp_path_factory):
    out = tmp_path_factory.mktemp("bp") / "run"
    return train_run(str(SPECS / "backprop_worked_example.yaml"), out=str(out), overrides=("train.epochs=1",))


def test_worked_example_initial_error(worked_one_step):
    # the loss of epoch 1 is computed with the initial weights, before the update
    assert worked_one_step.records[0]["train/loss"] == pytest.approx(0.298371109, abs=1e-7)


def test_worked_example_forward_outputs():
    loaded = load_spec(SPECS / "backprop_worked_example.yaml")
    net = MODEL_KINDS.get("sequential").network(loaded.spec.model, None)
    variables = net.init(jax.random.key(0), jnp.zeros((1, 2)))
    out = np.asarray(net.apply(variables, jnp.array([[0.05, 0.10]])))
    assert out[0] == pytest.approx([0.75136507, 0.772928465], abs=1e-7)


def test_worked_example_one_step_weights(worked_one_step):
    from flax import serialization

    w = serialization.msgpack_restore((worked_one_step.run_dir / "weights.msgpack").read_bytes())
    p = w["params"]
    # kernels are [inputs, units]: w1 = i1->h1, w5 = h1->o1
    assert float(p["dense_0"]["kernel"][0, 0]) == pytest.approx(0.149780716, abs=1e-6)
    assert float(p["dense_1"]["kernel"][0, 0]) == pytest.approx(0.35891648, abs=1e-6)
    # biases are frozen by `freeze: ["*/bias"]`
    assert float(p["dense_0"]["bias"][0]) == pytest.approx(0.35)
    assert float(p["dense_1"]["bias"][1]) == pytest.approx(0.60)


def test_worked_example_10000_epochs(tmp_path):
    res = train_run(str(SPECS / "backprop_worked_example.yaml"), out=str(tmp_path / "run"))
    assert res.summary["epochs_run"] == 10000
    assert res.records[-1]["train/loss"] == pytest.approx(3.51e-5, rel=0.02)


def test_xor_reaches_100_percent(tmp_path):
    res = train_run(str(SPECS / "xor.yaml"), out=str(tmp_path / "run"))
    assert res.summary["final"]["train/accuracy"] == 1.0
    assert math.isfinite(res.summary["final"]["train/loss"])
