"""The notes' perceptron: step(0) = 1 and the perceptron learning rule (`loss: perceptron` under sgd) train a
single step unit on AND and OR; every weight equals Rosenblatt's rule worked by hand."""

import numpy as np
import pytest
from flax import serialization

from nnctl.app import train_run
from tests.conftest import SPECS

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float64)
TARGETS = {"and": [0, 0, 0, 1], "or": [0, 1, 1, 1]}


def rule(t, eta=0.1, epochs=10):
    """w <- w + eta (t - o) x, b <- b + eta (t - o), o = step(w.x + b) with step(0) = 1, in data order."""
    w, b = np.zeros(2), 0.0
    for _ in range(epochs):
        for x, ti in zip(X, t):
            o = float(x @ w + b >= 0)
            w, b = w + eta * (ti - o) * x, b + eta * (ti - o)
    return w, b


@pytest.mark.parametrize("gate", sorted(TARGETS))
def test_perceptron_rule_learns_gate(gate, tmp_path):
    y = "[[" + "], [".join(str(v) for v in TARGETS[gate]) + "]]"
    res = train_run(str(SPECS / "perceptron_and.yaml"), out=str(tmp_path / gate), overrides=(f"data.y={y}",))
    assert res.summary["final"]["train/accuracy"] == 1.0
    p = serialization.msgpack_restore((res.run_dir / "weights.msgpack").read_bytes())["params"]["dense_0"]
    w, b = rule(TARGETS[gate])
    np.testing.assert_allclose(np.asarray(p["kernel"])[:, 0], w, atol=1e-6)
    assert float(p["bias"][0]) == pytest.approx(b, abs=1e-6)
    o = (X @ w + b >= 0).astype(int)
    assert o.tolist() == TARGETS[gate]  # the hand-worked rule separates the gate too
