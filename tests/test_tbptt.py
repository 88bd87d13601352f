"""Truncated backpropagation through time (`train.tbptt: k`): with k >= T the gradients are full BPTT's; with a
smaller k they are those of a hand-written RNN whose state is a constant for autodiff every k steps, and the
loss at the last step no longer reaches the first steps' inputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pydantic import TypeAdapter

from nnctl.errors import SpecError
from nnctl.layers import AnyLayer
from nnctl.layers.graph import Network, resolve_names
from tests.conftest import SPECS

T = 6


def _net(layer):
    return Network(tuple(TypeAdapter(list[AnyLayer]).validate_python(resolve_names([{**layer, "name": "rnn"}]))))


def _reference(p, x, k):
    """h_t = tanh(x_t W + h_{t-1} U + b) written out, the state entering steps k, 2k, ... cut from the gradient."""
    w, u, b = p["kernel"], p["recurrent_kernel"], p["bias"]
    h, ys = jnp.zeros((x.shape[0], u.shape[0])), []
    for t in range(x.shape[1]):
        if k is not None and t % k == 0:
            h = jax.lax.stop_gradient(h)
        h = jnp.tanh(x[:, t] @ w + h @ u + b[None])
        ys.append(h)
    return jnp.stack(ys, 1)


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, T, 3)), jnp.float32)
    c = jnp.asarray(rng.normal(size=(2, T, 2)), jnp.float32)  # a loss weighting every step's output
    v = _net({"type": "simple_rnn", "units": 2, "return_sequences": True}).init(jax.random.key(0), x)
    return x, c, v


def _grads(k, tiny):
    x, c, v = tiny
    net = _net({"type": "simple_rnn", "units": 2, "return_sequences": True, "tbptt": k})
    return jax.grad(lambda p: (net.apply({"params": p}, x) * c).sum())(v["params"])["rnn"]


def test_tbptt_of_at_least_t_steps_is_full_bptt(tiny):
    x, c, v = tiny
    full = _grads(None, tiny)  # the hand-written backward pass of the unmasked layer
    for k in (T, T + 3):
        for name, g in _grads(k, tiny).items():
            np.testing.assert_allclose(g, full[name], rtol=1e-5, atol=1e-6)


def test_small_tbptt_matches_a_hand_written_truncated_rnn(tiny):
    x, c, v = tiny
    p = v["params"]["rnn"]
    ref = jax.grad(lambda q: (_reference(q, x, 2) * c).sum())(p)
    got = _grads(2, tiny)
    for name in ref:
        np.testing.assert_allclose(got[name], ref[name], rtol=1e-5, atol=1e-6)
    full = jax.grad(lambda q: (_reference(q, x, None) * c).sum())(p)
    assert not np.allclose(ref["recurrent_kernel"], full["recurrent_kernel"])  # really truncated


@pytest.mark.parametrize(
    "cell", ["simple_rnn", pytest.param("lstm", marks=pytest.mark.slow), pytest.param("gru", marks=pytest.mark.slow)]
)
def test_the_last_state_no_longer_reaches_the_first_steps(cell, tiny):
    x = tiny[0]
    for k, reaches in ((None, True), (2, False), (T, True)):
        net = _net({"type": cell, "units": 2, "tbptt": k})
        v = net.init(jax.random.key(0), x)
        dx = jax.grad(lambda xb, net=net, v=v: net.apply(v, xb).sum())(x)
        assert bool(np.any(np.abs(dx[:, 0]) > 0)) == reaches, (cell, k)
        assert np.all(np.abs(dx[:, -1]) > 0)  # the last chunk's own steps always get a gradient


@pytest.mark.slow
def test_train_tbptt_sets_every_recurrent_layer_and_trains(tmp_path):
    from nnctl.app import train_run
    from nnctl.spec import load_spec

    spec = str(SPECS / "waveforms_lstm_tbptt.yaml")
    assert load_spec(spec).spec.model.layers[1].tbptt == 10
    res = train_run(spec, str(tmp_path / "run"), ("train.epochs=2", "data.n_samples=128", "data.validation_split=0"))
    assert res.summary["status"] == "finished"
    assert res.records[-1]["train/loss"] < res.records[0]["train/loss"]


def test_tbptt_without_a_recurrent_layer_is_an_error():
    from nnctl.spec import load_spec

    with pytest.raises(SpecError) as e:
        load_spec(str(SPECS / "xor.yaml"), ("train.tbptt=3",))
    assert "this model has none" in str(e.value)
