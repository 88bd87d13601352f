"""`nnctl explain` on recurrent models: backpropagation through time unrolled per step (the notes' S1, S2, S3
and ∂E3/∂Ws as a sum over paths), each path and the sum checked against an independent calculation and
against automatic differentiation."""

import math

import jax
import numpy as np
import pytest

from nnctl.app.explain import explain_spec
from tests.conftest import SPECS

WORKED = str(SPECS / "bptt_worked_example.yaml")
WX, WS, WY, XS, D = 0.5, 0.8, 1.5, (1.0, 0.5, -0.5), 0.5


def _by_hand():
    """The notes' formulas with the spec's numbers: states, then each path of ∂E3/∂Ws (path through S_i)."""
    s, states, zs = 0.0, [], []
    for x in XS:
        z = WX * x + WS * s
        s = math.tanh(z)
        zs.append(z)
        states.append(s)
    d = [1 - math.tanh(z) ** 2 for z in zs]  # tanh'
    de_ds3 = 2 * (WY * states[2] - D) * WY  # ∂E3/∂Y3 · ∂Y3/∂S3
    prev = [0.0, states[0], states[1]]
    paths = [
        de_ds3 * (d[2] * WS) * (d[1] * WS) * (d[0] * prev[0]),  # through S1
        de_ds3 * (d[2] * WS) * (d[1] * prev[1]),  # through S2
        de_ds3 * (d[2] * prev[2]),  # through S3
    ]
    return states, de_ds3, paths


@pytest.fixture(scope="module")
def doc():
    return explain_spec(WORKED)


def test_states_and_each_path_of_dE3_dWs_equal_the_notes_formulas(doc):
    (r,) = doc["steps"][0]["bptt"]
    states, _, paths = _by_hand()
    np.testing.assert_allclose(r["S"][:, 0, 0], states, rtol=1e-12)
    np.testing.assert_allclose(r["Ws_paths"][:, 0, 0], paths, rtol=1e-12, atol=1e-15)
    assert r["Ws_paths"].sum() == pytest.approx(sum(paths), rel=1e-12)


def test_the_sum_over_paths_is_the_autodiff_gradient(doc):
    (r,) = doc["steps"][0]["bptt"]

    def e3(ws):  # an independent jax version of the notes' network
        s = 0.0
        for x in XS:
            s = jax.numpy.tanh(WX * x + ws * s)
        return (D - WY * s) ** 2

    with jax.enable_x64(True):
        want = float(jax.grad(e3)(WS))
    assert r["Ws_paths"].sum() == pytest.approx(want, rel=1e-12)
    assert r["Ws_autodiff"][0, 0] == pytest.approx(want, rel=1e-12)
    assert r["states_vs_layer"] < 1e-12


def test_the_written_chain(doc):
    from nnctl.app.explain import render

    text = "\n".join(render(doc))
    states, de_ds3, paths = _by_hand()
    assert f"S1 = tanh(z1) = {states[0]:.9g}" in text and f"S3 = tanh(z3) = {states[2]:.9g}" in text
    assert "path 2: ∂E/∂S3 · ∂S3/∂S2 · ∂S2/∂Ws = " in text
    assert f"= {de_ds3:.9g} · " in text and f"= {paths[1]:.9g}" in text
    assert "(largest difference 0)" in text or "(largest difference 1" in text


SEQ = """\
data:
  source: inline
  x: [[[1.0, 0.2], [0.5, -0.3], [-0.5, 0.1], [0.3, 0.3]], [[0.2, 0.1], [-0.4, 0.6], [0.9, -0.2], [0.1, 0.0]]]
  y: [[[0.1], [0.2], [0.3], [0.4]], [[0.5], [0.1], [0.0], [0.2]]]
  task: regression
model:
  layers:
    - {type: dense, units: 2, activation: tanh}
    - {type: simple_rnn, units: 3, return_sequences: true, activation: relu, recurrent_init: identity}
    - {type: dense, units: 1}
train: {loss: mse, optimizer: {type: sgd, learning_rate: 0.1}, batch_size: full, epochs: 1}
"""


def test_many_to_many_relu_rnn_after_a_layer_sums_to_autodiff(tmp_path):
    p = tmp_path / "seq.yaml"
    p.write_text(SEQ)
    (r,) = explain_spec(str(p))["steps"][0]["bptt"]
    assert r["S"].shape == (4, 2, 3) and r["activation"] == "relu" and not r["many_to_one"]
    np.testing.assert_allclose(r["Ws_paths"].sum(axis=0), r["Ws_autodiff"], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(r["Wx_paths"].sum(axis=0), r["Wx_autodiff"], rtol=1e-10, atol=1e-14)
    assert r["states_vs_layer"] < 1e-12


def test_gated_and_bidirectional_cells_say_so_in_one_line():
    from nnctl.app.explain_bptt import bptt_records, render_bptt
    from tests.test_layers import build

    layers = build([{"type": "lstm", "units": 3}, {"type": "simple_rnn", "units": 2, "bidirectional": True}])
    lines = render_bptt(bptt_records(None, list(layers), {}, {}, None, None, {}))
    assert lines == [
        "    BPTT is written out per step for a one-direction simple_rnn; lstm_0 is a lstm (gated cells): "
        "its gradients are in the backward pass above",
        "    BPTT is written out per step for a one-direction simple_rnn; simple_rnn_1 is bidirectional: "
        "its gradients are in the backward pass above",
    ]


def test_json_has_the_paths(doc):
    import json

    from nnctl.app.explain import to_json

    (r,) = json.loads(json.dumps(to_json(doc)))["steps"][0]["bptt"]
    assert len(r["Ws_paths"]) == 3 and r["S"][2][0][0] == pytest.approx(_by_hand()[0][2])
