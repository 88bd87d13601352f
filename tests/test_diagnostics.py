"""`train.diagnostics`: per-layer records measured on the device each epoch, plain-words flags at the end (a
deliberately bad net gets the right flag, a healthy one none), the per-layer figure, and no effect on training."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from nnctl.app import train_run
from nnctl.app.diagnose import diagnose
from nnctl.app.plots import plot_runs
from nnctl.engine.diagnostics import dead_fraction, saturated_fraction
from nnctl.errors import SpecError
from nnctl.spec import load_spec, load_text
from tests.conftest import SPECS

HEAD = """
seed: 0
data: {source: "builtin:iris", normalize: standard}
train:
  loss: categorical_crossentropy
  optimizer: {type: %s, learning_rate: %s}
  epochs: 3
  diagnostics: %s
model:
  layers:
"""
SIGMOID = "    - {type: dense, units: 8, activation: sigmoid, kernel_init: {type: normal, stddev: 0.01}}\n"
BAD = {
    "deep_sigmoid": HEAD % ("sgd", 0.1, "true") + SIGMOID * 5 + "    - {type: dense, units: 3, activation: softmax}\n",
    "dead_relu": HEAD % ("adam", 0.01, "true")
    + "    - {type: dense, units: 16, activation: relu, bias_init: {type: constant, value: -100}}\n"
    + "    - {type: dense, units: 3, activation: softmax}\n",
}
HEALTHY = (  # batch_norm and dropout: the probe pass updates no batch statistics and draws its own dropout
    "    - {type: dense, units: 16, activation: relu, kernel_init: he_normal}\n"
    "    - {type: dense, units: 8, activation: tanh}\n"
    "    - {type: batch_norm}\n"
    "    - {type: dropout, rate: 0.1}\n"
    "    - {type: dense, units: 3, activation: softmax}\n"
)


def _weights(res):
    return serialization.msgpack_restore((res.run_dir / "weights.msgpack").read_bytes())


def _train(tmp, name, text):
    path = tmp / f"{name}.yaml"
    path.write_text(text)
    return train_run(str(path), out=str(tmp / name))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("diag")
    out = {name: _train(tmp, name, text) for name, text in BAD.items()}
    out["healthy"] = _train(tmp, "healthy", HEAD % ("adam", 0.01, "true") + HEALTHY)
    out["healthy_off"] = _train(tmp, "healthy_off", HEAD % ("adam", 0.01, "false") + HEALTHY)
    return out


def test_deep_sigmoid_with_tiny_init_is_flagged_as_vanishing(runs):
    flags = runs["deep_sigmoid"].summary["diagnostics"]
    assert len(flags) == 1 and "vanishing gradients" in flags[0], flags
    assert flags[0].startswith("the gradient norm of dense_0 (layer 1) is ") and "dense_5's (layer 6)" in flags[0]
    last = runs["deep_sigmoid"].records[-1]
    assert last["diag/dense_0/grad_norm"] < 1e-3 * last["diag/dense_5/grad_norm"]


def test_relu_with_huge_negative_bias_is_flagged_dead(runs):
    flags = runs["dead_relu"].summary["diagnostics"]
    assert flags == [flags[0]] and flags[0].startswith("dense_0: 100% of ReLU units dead since epoch 1"), flags
    assert "leaky_relu" in flags[0]
    assert [r["diag/dense_0/dead_fraction"] for r in runs["dead_relu"].records] == [1.0, 1.0, 1.0]


def test_healthy_net_gets_no_flag_and_every_record(runs):
    res = runs["healthy"]
    assert res.summary["diagnostics"] == []
    rec = res.records[-1]
    for layer in ("dense_0", "dense_1", "batch_norm_2", "dense_4"):
        assert rec[f"diag/{layer}/grad_norm"] > 0 and rec[f"diag/{layer}/weight_norm"] > 0
        assert 0 < rec[f"diag/{layer}/update_ratio"] < 1
    assert 0 <= rec["diag/dense_0/dead_fraction"] < 0.5 and 0 <= rec["diag/dense_1/saturated_fraction"] < 0.5
    assert "diag/dense_4/dead_fraction" not in rec  # the output layer's activation is the head: not watched
    lines = (res.run_dir / "metrics.jsonl").read_text().splitlines()
    assert "diag/dense_0/grad_norm" in json.loads(lines[-1])


def test_diagnostics_do_not_change_training(runs):
    on, off = runs["healthy"].records, runs["healthy_off"].records
    assert [r["train/loss"] for r in on] == [r["train/loss"] for r in off]
    for a, b in zip(jax.tree.leaves(_weights(runs["healthy"])), jax.tree.leaves(_weights(runs["healthy_off"]))):
        np.testing.assert_array_equal(a, b)  # batch statistics included
    assert not any(k.startswith("diag/") for k in off[-1]) and "diagnostics" not in runs["healthy_off"].summary


def test_plot_draws_the_per_layer_figure(runs, tmp_path):
    res = plot_runs([str(runs["healthy"].run_dir)], str(tmp_path / "c.png"), with_confusion=False)
    assert res["diagnostics"] == [str(tmp_path / "c-diagnostics.png")]
    assert (tmp_path / "c-diagnostics.png").stat().st_size > 10_000
    res = plot_runs([str(runs["healthy_off"].run_dir)], str(tmp_path / "d.png"), with_confusion=False)
    assert res["diagnostics"] == []


def test_fractions_by_hand():
    a = jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 2.0]])  # unit 0 is 0 for both examples
    assert float(dead_fraction(a)) == pytest.approx(1 / 3)
    s = jnp.array([0.005, 0.5, 0.995, 0.9])
    assert float(saturated_fraction(s, "sigmoid")) == 0.5
    assert float(saturated_fraction(jnp.array([-0.999, 0.0, 0.995, 0.5]), "tanh")) == 0.5


def test_exploding_gradients_flag_from_records():
    spec = load_text(HEAD % ("sgd", 0.1, "true") + HEALTHY).spec
    recs = [{"epoch": 1, "diag/dense_0/grad_norm": 5e3, "diag/dense_1/grad_norm": 1.0, "diag/dense_4/grad_norm": 1.0}]
    (flag,) = diagnose(recs, spec)
    assert flag.startswith("the gradient norm of dense_0 (layer 1) is 5e+03 of dense_4's (layer 5): exploding")
    recs[0]["diag/dense_0/grad_norm"] = 2.0
    assert diagnose(recs, spec) == []


def test_gan_refuses_diagnostics_with_a_located_error():
    with pytest.raises(SpecError) as e:
        load_spec(SPECS / "gan_ring.yaml", overrides=("train.diagnostics=true",))
    assert "train.diagnostics" in str(e.value) and "one supervised network" in str(e.value) and "gan" in str(e.value)


def test_saturation_flag_from_records():
    spec = load_text(HEAD % ("sgd", 0.1, "true") + HEALTHY).spec
    recs = [{"epoch": e, "diag/dense_1/saturated_fraction": v} for e, v in [(1, 0.9), (2, 0.2), (3, 0.6), (4, 0.75)]]
    (flag,) = diagnose(recs, spec)
    assert flag.startswith("dense_1: 75% of tanh outputs saturated (near -1 or 1) since epoch 3"), flag
    recs[-1]["diag/dense_1/saturated_fraction"] = 0.4
    assert diagnose(recs, spec) == []
