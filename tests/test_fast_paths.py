"""The hand-written fast paths of pooling and recurrent layers give autodiff's numbers:

* `window_max` / `global_max` (custom VJP): gradients equal autodiff of `max` on data without ties, and follow
  the documented tie rule (each tied input gets the full output gradient) where there are ties;
* the time-major input projection of recurrent layers (`project`): outputs and gradients equal the batch-major
  einsum it replaced, every cell, both directions;
* `simple_rnn`'s `activation` is the recurrence's activation (Keras), and `activation: relu` with
  `recurrent_init: identity` computes the IRNN recurrence h_t = relu(x_t W + h_{t-1} + b) exactly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pydantic import TypeAdapter

from nnctl.layers import AnyLayer
from nnctl.layers.graph import Network, resolve_names
from nnctl.layers.pool import _windows, global_max, window_max
from nnctl.layers.recurrent import project

ADAPTER = TypeAdapter(list[AnyLayer])


def build(raw):
    return tuple(ADAPTER.validate_python(resolve_names(raw)))


def autodiff_window_max(x, k):
    w, axes = _windows(x, k)
    return w.max(axis=axes)


@pytest.mark.parametrize("shape,k", [((3, 6, 6, 4), (3, 2)), pytest.param((2, 9, 5), (3,), marks=pytest.mark.slow)])
def test_window_max_gradient_equals_autodiff_without_ties(shape, k):
    x = jax.random.normal(jax.random.key(0), shape)  # continuous values: no ties
    out_shape = jax.eval_shape(lambda x: autodiff_window_max(x, k), x).shape
    wy = jax.random.normal(jax.random.key(1), out_shape)
    want_y = jax.jit(autodiff_window_max, static_argnums=1)(x, k)
    np.testing.assert_array_equal(window_max(x, k), want_y)
    want = jax.jit(jax.grad(lambda x: (autodiff_window_max(jax.nn.relu(x), k) * wy).sum()))(x)
    got = jax.jit(jax.grad(lambda x: (window_max(jax.nn.relu(x), k) * wy).sum()))(x)
    np.testing.assert_array_equal(got, want)


def test_window_max_tie_rule_gives_every_tied_input_the_full_gradient():
    x = jnp.array([[1.0, 3.0, 5.0, 5.0], [2.0, 3.0, 5.0, 1.0]]).reshape(1, 2, 4, 1)  # two 2x2 windows, tied maxima
    g = jax.grad(lambda x: (window_max(x, (2, 2)) * jnp.array([10.0, 100.0]).reshape(1, 1, 2, 1)).sum())(x)
    np.testing.assert_array_equal(g.reshape(2, 4), [[0, 10, 100, 100], [0, 10, 100, 0]])
    # autodiff splits a tie equally: the two rules agree wherever a window's maximum is unique
    a = jax.grad(lambda x: (autodiff_window_max(x, (2, 2)) * jnp.array([10.0, 100.0]).reshape(1, 1, 2, 1)).sum())(x)
    np.testing.assert_allclose(a.reshape(2, 4), [[0, 5, 100 / 3, 100 / 3], [0, 5, 100 / 3, 0]], rtol=1e-6)


def test_global_max_gradient_equals_autodiff_and_tie_rule():
    x = jax.random.normal(jax.random.key(2), (3, 5, 4, 2))
    wy = jax.random.normal(jax.random.key(3), (3, 2))
    want = jax.jit(jax.grad(lambda x: (x.max(axis=(1, 2)) * wy).sum()))(x)
    got = jax.jit(jax.grad(lambda x: (global_max(x) * wy).sum()))(x)
    np.testing.assert_array_equal(got, want)
    ties = jnp.array([[[1.0], [4.0], [4.0]]])  # (1, 3 steps, 1 channel)
    np.testing.assert_array_equal(jax.grad(lambda x: 2.0 * global_max(x).sum())(ties).ravel(), [0, 2, 2])


def test_pool_layers_use_the_fast_max_and_match_reduce_window():
    """max_pool2d with non-overlapping windows (the reshape path) equals flax's reduce_window pooling."""
    import flax.linen as nn

    (layer,) = build([{"type": "max_pool2d", "pool_size": 2}])
    x = jax.random.normal(jax.random.key(4), (2, 7, 6, 3))  # 7 rows: the last is cropped
    got = jax.jit(Network((layer,)).apply)({}, x)
    np.testing.assert_array_equal(got, jax.jit(lambda x: nn.max_pool(x, (2, 2), strides=(2, 2)))(x))
    jaxpr = str(jax.make_jaxpr(jax.grad(lambda x: Network((layer,)).apply({}, x).sum()))(x))
    assert "custom_vjp" in jaxpr


# ------------------------------------------------------------------------------ recurrent projection


def batch_major_projection(x, w, b):
    """The projection as it was before: einsum over the batch-major input, then time-major gates."""
    d = w.shape[0]
    xd = jnp.stack([x, x[:, ::-1]]) if d == 2 else x[None]
    xp = jnp.einsum("dbtf,dfg->tdbg", xd, w)
    return xp + b.reshape(1, d, 1, -1)


@pytest.mark.slow  # the layer-level test below covers both directions in the fast suite
@pytest.mark.parametrize("d", [1, 2])
def test_time_major_projection_equals_batch_major(d):
    ks = jax.random.split(jax.random.key(5), 4)
    x = jax.random.normal(ks[0], (3, 7, 5))
    w = jax.random.normal(ks[1], (d, 5, 8))
    b = jax.random.normal(ks[2], (d, 8))
    wy = jax.random.normal(ks[3], (7, d, 3, 8))
    np.testing.assert_allclose(
        jax.jit(project)(x, w, b), jax.jit(batch_major_projection)(x, w, b), rtol=1e-6, atol=1e-6
    )
    loss = lambda f: lambda x, w, b: (f(x, w, b) * wy).sum()
    want = jax.jit(jax.grad(loss(batch_major_projection), argnums=(0, 1, 2)))(x, w, b)
    got = jax.jit(jax.grad(loss(project), argnums=(0, 1, 2)))(x, w, b)
    for a, g in zip(want, got):
        np.testing.assert_allclose(g, a, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "cell,bidirectional,return_sequences",
    [pytest.param("simple_rnn", True, True, marks=pytest.mark.slow), ("lstm", False, False), ("gru", True, True)],
)
def test_recurrent_layer_gradients_equal_the_batch_major_formulation(
    cell, bidirectional, return_sequences, monkeypatch
):
    """Whole layer: outputs and parameter/input gradients with the time-major projection equal those with
    the batch-major einsum (the implementation before it), to float rounding."""
    from nnctl.layers import recurrent

    layers = build([{"type": cell, "units": 3, "bidirectional": bidirectional, "return_sequences": return_sequences}])
    net = Network(layers)
    x = jax.random.normal(jax.random.key(6), (2, 5, 3))
    v = net.init(jax.random.key(7), x)
    both = lambda v, x: (net.apply(v, x), jax.grad(lambda v, x: (net.apply(v, x) ** 2).sum(), argnums=(0, 1))(v, x))
    y_new, g_new = jax.jit(both)(v, x)
    monkeypatch.setattr(recurrent, "project", batch_major_projection)
    y_old, g_old = jax.jit(lambda v, x: both(v, x))(v, x)
    np.testing.assert_allclose(y_new, y_old, rtol=1e-6, atol=1e-6)
    for a, g in zip(jax.tree.leaves(g_old), jax.tree.leaves(g_new)):
        np.testing.assert_allclose(g, a, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------ simple_rnn activation


def irnn_reference(x, w, b):
    """The notes' ReLU recurrence with identity recurrent weights: h_t = relu(x_t W + h_{t-1} + b)."""
    h = np.zeros((x.shape[0], w.shape[1]))
    hs = []
    for t in range(x.shape[1]):
        h = np.maximum(0.0, x[:, t] @ w + h + b)
        hs.append(h)
    return np.stack(hs, 1)


def test_relu_simple_rnn_with_identity_init_is_the_irnn():
    raw = {"type": "simple_rnn", "units": 4, "activation": "relu", "recurrent_init": "identity"}
    raw_bias = {"bias_init": {"type": "constant", "value": 0.1}}
    layers = build([{**raw, **raw_bias, "return_sequences": True}])
    net = Network(layers)
    x = jax.random.normal(jax.random.key(8), (3, 6, 2))
    v = jax.jit(net.init)(jax.random.key(9), x)
    p = v["params"][layers[0].name]
    np.testing.assert_array_equal(p["recurrent_kernel"], np.eye(4))
    w, b = np.asarray(p["kernel"], np.float64), np.asarray(p["bias"], np.float64)
    want = irnn_reference(np.asarray(x, np.float64), w, b)
    np.testing.assert_allclose(jax.jit(net.apply)(v, x), want, rtol=1e-6, atol=1e-6)
    assert (want < 0).sum() == 0 and (want == 0).sum() > 0 and want.max() > 1.0  # relu, unbounded, not tanh
    (one,) = build([{**raw, **raw_bias}])
    np.testing.assert_allclose(jax.jit(Network((one,)).apply)(v, x), want[:, -1], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("bidirectional", [pytest.param(False, marks=pytest.mark.slow), True])
def test_explicit_tanh_equals_the_default_and_is_applied_once(bidirectional):
    default, explicit = (
        build([{"type": "simple_rnn", "units": 3, "bidirectional": bidirectional, **extra}])
        for extra in ({}, {"activation": "tanh"})
    )
    x = jax.random.normal(jax.random.key(10), (2, 5, 2))
    v = jax.jit(Network(default).init)(jax.random.key(11), x)
    y = [jax.jit(Network(n).apply)(v, x) for n in (default, explicit)]
    np.testing.assert_allclose(y[1], y[0], rtol=1e-6, atol=1e-6)
    g = [jax.jit(jax.grad(lambda v, n=n: (Network(n).apply(v, x) ** 2).sum()))(v) for n in (default, explicit)]
    for a, b in zip(*(jax.tree.leaves(t) for t in g)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_identity_initializer_shapes():
    from nnctl.initializers import INITIALIZERS

    (layer,) = build([{"type": "dense", "units": 3, "kernel_init": {"type": "identity", "gain": 0.5}}])
    init = INITIALIZERS.build(layer.kernel_init)
    key = jax.random.key(0)
    np.testing.assert_array_equal(init(key, (2, 3)), 0.5 * np.eye(2, 3))
    k = np.asarray(init(key, (3, 3, 2, 2)))  # conv kernel: identity map at the window's centre
    assert k[1, 1].tolist() == [[0.5, 0.0], [0.0, 0.5]] and np.abs(k).sum() == 1.0
    np.testing.assert_array_equal(init(key, (4,)), [0.5] * 4)
