"""Every registered layer type: builds from a minimal spec, runs forward under jit, has the output shape
that shape threading predicts and the parameter count of an independent formula. Recurrent layers are
checked against a step-by-step numpy reference."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pydantic import TypeAdapter

from nnctl.layers import LAYERS, AnyLayer
from nnctl.layers.graph import Network, resolve_names, thread_shapes

ADAPTER = TypeAdapter(list[AnyLayer])


def build(raw):
    return tuple(ADAPTER.validate_python(resolve_names(raw)))


def conv_params(k, cin, filters, bias=True):
    return math.prod(k) * cin * filters + (filters if bias else 0)


def rnn_params(gates, f, u, directions=1):
    return directions * gates * (f * u + u * u + u)


def mha_params(f, heads, key_dim, out=None):
    out = out or f
    return 3 * (f * heads * key_dim + heads * key_dim) + heads * key_dim * out + out


def branch(a, b, merge):  # two dense branches off the input, merged
    return [
        {"type": "dense", "units": a, "name": "a", "inputs": ["input"]},
        {"type": "dense", "units": b, "name": "b", "inputs": ["input"]},
        {**merge, "inputs": ["a", "b"]},
    ]


# (id, layers (the last one is under test), input shape, expected output shape, expected parameters of the last)
CASES = [
    ("dense", [{"type": "dense", "units": 3}], (4,), (3,), 4 * 3 + 3),
    ("dropout", [{"type": "dropout", "rate": 0.5}], (4,), (4,), 0),
    ("flatten", [{"type": "flatten"}], (2, 3, 4), (24,), 0),
    ("reshape", [{"type": "reshape", "shape": [3, -1]}], (6,), (3, 2), 0),
    ("activation", [{"type": "activation", "activation": "softmax"}], (4,), (4,), 0),
    ("batch_norm", [{"type": "batch_norm"}], (5, 5, 3), (5, 5, 3), 2 * 3),
    ("layer_norm", [{"type": "layer_norm"}], (6, 4), (6, 4), 2 * 4),
    (
        "residual",
        [{"type": "residual", "layers": [{"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": "same"}]}],
        (6, 6, 2),
        (6, 6, 4),
        conv_params((3, 3), 2, 4) + conv_params((1, 1), 2, 4),
    ),
    (
        "residual_identity",
        [{"type": "residual", "layers": [{"type": "conv2d", "filters": 2, "kernel_size": 3, "padding": 1}]}],
        (6, 6, 2),
        (6, 6, 2),
        conv_params((3, 3), 2, 2),
    ),
    (
        "conv1d",
        [{"type": "conv1d", "filters": 3, "kernel_size": 3, "strides": 2, "padding": 1}],
        (10, 2),
        (5, 3),
        conv_params((3,), 2, 3),
    ),
    (
        "conv1d_same",
        [{"type": "conv1d", "filters": 4, "kernel_size": 4, "padding": "same", "use_bias": False}],
        (9, 1),
        (9, 4),
        conv_params((4,), 1, 4, bias=False),
    ),
    ("conv2d", [{"type": "conv2d", "filters": 4, "kernel_size": 3}], (7, 7, 3), (5, 5, 4), conv_params((3, 3), 3, 4)),
    (
        "conv2d_same_stride",
        [{"type": "conv2d", "filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"}],
        (7, 7, 3),
        (4, 4, 4),
        conv_params((3, 3), 3, 4),
    ),
    (
        "conv2d_dilation",
        [{"type": "conv2d", "filters": 2, "kernel_size": 3, "dilation": 2}],
        (7, 8, 1),
        (3, 4, 2),
        conv_params((3, 3), 1, 2),
    ),
    (
        "conv2d_rect_pads",
        [{"type": "conv2d", "filters": 2, "kernel_size": [3, 2], "strides": [1, 2], "padding": [1, [0, 1]]}],
        (5, 6, 2),
        (5, 3, 2),
        conv_params((3, 2), 2, 2),
    ),
    (
        "conv2d_transpose",
        [{"type": "conv2d_transpose", "filters": 3, "kernel_size": 3, "strides": 2}],
        (4, 4, 2),
        (9, 9, 3),
        conv_params((3, 3), 2, 3),
    ),
    (
        "conv2d_transpose_same",
        [{"type": "conv2d_transpose", "filters": 3, "kernel_size": 4, "strides": 2, "padding": "same"}],
        (4, 5, 2),
        (8, 10, 3),
        conv_params((4, 4), 2, 3),
    ),
    (
        "conv2d_transpose_pad",
        [{"type": "conv2d_transpose", "filters": 1, "kernel_size": 3, "strides": 2, "padding": 1}],
        (4, 4, 2),
        (7, 7, 1),
        conv_params((3, 3), 2, 1),
    ),
    (
        "depthwise_conv2d",
        [{"type": "depthwise_conv2d", "kernel_size": 3, "depth_multiplier": 2}],
        (7, 6, 3),
        (5, 4, 6),
        3 * 3 * 3 * 2 + 3 * 2,
    ),
    (
        "depthwise_conv2d_same_stride",
        [
            {
                "type": "depthwise_conv2d",
                "kernel_size": [3, 2],
                "strides": 2,
                "padding": "same",
                "dilation": [1, 2],
                "use_bias": False,
            }
        ],
        (7, 8, 4),
        (4, 4, 4),
        3 * 2 * 4,
    ),
    ("upsample", [{"type": "upsample", "size": 2}], (3, 4, 2), (6, 8, 2), 0),
    ("upsample_bilinear", [{"type": "upsample", "size": [2, 3], "method": "bilinear"}], (3, 4, 2), (6, 12, 2), 0),
    ("upsample_1d", [{"type": "upsample", "size": 3}], (5, 2), (15, 2), 0),
    ("max_pool2d", [{"type": "max_pool2d", "pool_size": 2}], (6, 7, 2), (3, 3, 2), 0),
    ("max_pool2d_overlap", [{"type": "max_pool2d", "pool_size": 3, "strides": 1}], (6, 6, 2), (4, 4, 2), 0),
    ("max_pool2d_same", [{"type": "max_pool2d", "pool_size": 2, "padding": "same"}], (5, 5, 2), (3, 3, 2), 0),
    ("avg_pool2d", [{"type": "avg_pool2d", "pool_size": 2}], (4, 4, 3), (2, 2, 3), 0),
    ("avg_pool2d_pad", [{"type": "avg_pool2d", "pool_size": 3, "strides": 2, "padding": 1}], (5, 5, 1), (3, 3, 1), 0),
    ("max_pool1d", [{"type": "max_pool1d", "pool_size": 2}], (7, 3), (3, 3), 0),
    ("avg_pool1d", [{"type": "avg_pool1d", "pool_size": 3, "strides": 1, "padding": "same"}], (7, 3), (7, 3), 0),
    ("global_avg_pool", [{"type": "global_avg_pool"}], (4, 4, 3), (3,), 0),
    ("global_max_pool", [{"type": "global_max_pool"}], (5, 2), (2,), 0),
    ("embedding", [{"type": "embedding", "vocab_size": 11, "features": 4}], (6,), (6, 4), 11 * 4),
    ("positional_embedding", [{"type": "positional_embedding"}], (6, 4), (6, 4), 6 * 4),
    ("positional_embedding_sin", [{"type": "positional_embedding", "kind": "sinusoidal"}], (6, 4), (6, 4), 0),
    ("simple_rnn", [{"type": "simple_rnn", "units": 4}], (5, 3), (4,), rnn_params(1, 3, 4)),
    (
        "simple_rnn_seq",
        [{"type": "simple_rnn", "units": 4, "return_sequences": True}],
        (5, 3),
        (5, 4),
        rnn_params(1, 3, 4),
    ),
    ("lstm", [{"type": "lstm", "units": 4}], (5, 3), (4,), rnn_params(4, 3, 4)),
    (
        "lstm_bi_seq",
        [{"type": "lstm", "units": 4, "bidirectional": True, "return_sequences": True}],
        (5, 3),
        (5, 8),
        rnn_params(4, 3, 4, 2),
    ),
    ("gru", [{"type": "gru", "units": 4}], (5, 3), (4,), rnn_params(3, 3, 4)),
    ("gru_bi", [{"type": "gru", "units": 4, "bidirectional": True}], (5, 3), (8,), rnn_params(3, 3, 4, 2)),
    (
        "multi_head_attention",
        [{"type": "multi_head_attention", "num_heads": 2, "key_dim": 3}],
        (5, 6),
        (5, 6),
        mha_params(6, 2, 3),
    ),
    (
        "multi_head_attention_causal",
        [{"type": "multi_head_attention", "num_heads": 1, "key_dim": 4, "causal": True, "output_dim": 3}],
        (5, 6),
        (5, 3),
        mha_params(6, 1, 4, 3),
    ),
    ("prelu", [{"type": "prelu"}], (4, 3), (4, 3), 3),
    ("prelu_shared", [{"type": "prelu", "shared": True}], (4, 3), (4, 3), 1),
    ("add", branch(3, 3, {"type": "add"}), (4,), (3,), 0),
    ("concat", branch(3, 2, {"type": "concat"}), (4,), (5,), 0),
    ("sum_pool1d", [{"type": "sum_pool1d", "pool_size": 2}], (7, 3), (3, 3), 0),
    ("sum_pool2d", [{"type": "sum_pool2d", "pool_size": 2, "padding": "same"}], (5, 5, 2), (3, 3, 2), 0),
    ("padding", [{"type": "padding", "padding": [1, [0, 2]], "mode": "reflect"}], (4, 5, 2), (6, 7, 2), 0),
    ("padding_1d", [{"type": "padding", "padding": 2, "mode": "replicate"}], (4, 3), (8, 3), 0),
    (
        "conv2d_reflect",
        [{"type": "conv2d", "filters": 3, "kernel_size": 3, "padding": "same", "padding_mode": "reflect"}],
        (6, 5, 2),
        (6, 5, 3),
        conv_params((3, 3), 2, 3),
    ),
    # AlexNet's second convolution: 5x5, 256 filters in 2 groups over 96 channels = 307,456 (torchvision: groups=1
    # gives 614,656); a smaller one here
    (
        "conv2d_groups",
        [{"type": "conv2d", "filters": 6, "kernel_size": 3, "groups": 2, "padding": 1}],
        (5, 5, 4),
        (5, 5, 6),
        conv_params((3, 3), 2, 6),
    ),
    (
        "conv3d",
        [{"type": "conv3d", "filters": 4, "kernel_size": [2, 3, 3]}],
        (4, 6, 6, 2),
        (3, 4, 4, 4),
        2 * 9 * 2 * 4 + 4,
    ),
    ("lrn", [{"type": "lrn"}], (4, 4, 7), (4, 4, 7), 0),
    ("adaptive_avg_pool", [{"type": "adaptive_avg_pool", "output_size": [3, 2]}], (7, 5, 2), (3, 2, 2), 0),
    ("adaptive_max_pool1d", [{"type": "adaptive_max_pool", "output_size": 4}], (9, 3), (4, 3), 0),
    (
        "max_pool2d_ceil",
        [{"type": "max_pool2d", "pool_size": 3, "strides": 2, "ceil_mode": True}],
        (8, 8, 1),
        (4, 4, 1),
        0,
    ),
    (
        "avg_pool2d_ceil",
        [{"type": "avg_pool2d", "pool_size": 2, "strides": 2, "padding": 1, "ceil_mode": True}],
        (5, 6, 1),
        (3, 4, 1),  # 5 rows: a 4th window would start in the padding, so PyTorch drops it
        0,
    ),
    (
        "time_distributed",
        [
            {
                "type": "time_distributed",
                "layers": [{"type": "conv2d", "filters": 2, "kernel_size": 3}, {"type": "flatten"}],
            }
        ],
        (3, 5, 5, 1),
        (3, 18),
        conv_params((3, 3), 1, 2),
    ),
    ("repeat_vector", [{"type": "repeat_vector", "n": 4}], (3,), (4, 3), 0),
    ("masking", [{"type": "masking", "mask_value": -1.0}], (5, 2), (5, 2), 0),
    ("rbf", [{"type": "rbf", "units": 5}], (3,), (5,), 5 * 3 + 5),
    ("rrelu", [{"type": "rrelu"}], (4, 3), (4, 3), 0),
]


def test_every_layer_type_has_a_case():
    covered = {build(layers)[-1].type for _, layers, *_ in CASES}
    assert covered == {name for name, _ in LAYERS.items()}


def _input(shape):
    return jnp.asarray(np.random.default_rng(0).uniform(0, 3, (2, *shape)), jnp.float32)


def random_variables(net, x, seed=0):
    """Variables of the right shapes (from jax.eval_shape: no init compile), filled with U(0.5, 1.5) * sign
    for parameters and U(0.5, 1.5) for statistics, so biases and running averages are not trivially 0/1."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(
        lambda x: net.init({"params": jax.random.key(0), "dropout": jax.random.key(0)}, x, train=False), x
    )
    out = {}
    for col, tree in shapes.items():

        def fill(s, col=col):
            v = rng.uniform(0.5, 1.5, s.shape)
            return jnp.asarray(v * rng.choice([-1, 1], s.shape) * 0.5 if col == "params" else v, s.dtype)

        out[col] = jax.tree.map(fill, tree)
    return out


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_layer_builds_runs_and_counts(case):
    name, raw, in_shape, want_shape, want_params = case
    layers = build(raw)
    shapes, out, problems, _ = thread_shapes(layers, in_shape)
    assert not problems
    assert out == want_shape  # what `inspect model` shows
    net, x = Network(layers), _input(in_shape)
    variables = random_variables(net, x)
    y = jax.jit(lambda v, x: net.apply(v, x, train=False))(variables, x)
    assert y.shape == (2, *want_shape)  # what the jitted forward pass gives
    assert bool(jnp.all(jnp.isfinite(y)))
    mine = variables.get("params", {}).get(layers[-1].name, {})
    assert sum(a.size for a in jax.tree.leaves(mine)) == want_params


# ------------------------------------------------------------------------------------ golden numbers


def count(layers, in_shape):
    from nnctl.kinds.base import abstract_variables

    v = abstract_variables(Network(layers), in_shape)
    return sum(math.prod(a.shape) for a in jax.tree.leaves(v.get("params", {})))


def test_one_3x3x3_filter_with_a_bias_has_28_parameters():
    assert count(build([{"type": "conv2d", "filters": 1, "kernel_size": 3}]), (8, 8, 3)) == 28


def test_first_vgg_layer():
    layers = build([{"type": "conv2d", "filters": 64, "kernel_size": 3, "padding": 1}])
    assert thread_shapes(layers, (224, 224, 3))[1] == (224, 224, 64)
    assert count(layers, (224, 224, 3)) == 1792


def test_padding_one_keeps_128x128():
    layers = build([{"type": "conv2d", "filters": 8, "kernel_size": 3, "strides": 1, "padding": 1}])
    assert thread_shapes(layers, (128, 128, 3))[1] == (128, 128, 8)


@pytest.mark.parametrize("padding,want", [("same", (8, 8, 8)), ("valid", (6, 6, 8))])
def test_3x3_depthwise_on_8x8x4_with_multiplier_2(padding, want):
    layers = build([{"type": "depthwise_conv2d", "kernel_size": 3, "depth_multiplier": 2, "padding": padding}])
    assert thread_shapes(layers, (8, 8, 4))[1] == want
    assert count(layers, (8, 8, 4)) == 3 * 3 * 4 * 2 + 8 == 80


def test_depthwise_convolves_each_channel_with_its_own_filters():
    """Output channel c * M + m is input channel c convolved with filter m of that channel (Keras' order)."""
    layers = build([{"type": "depthwise_conv2d", "kernel_size": 3, "depth_multiplier": 2, "padding": 1}])
    net = Network(layers)
    x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 5, 6, 3)), jnp.float32)
    v = random_variables(net, x)
    y = np.asarray(jax.jit(lambda v, x: net.apply(v, x))(v, x))
    p = v["params"][layers[0].name]
    k, b = np.asarray(p["kernel"], np.float64), np.asarray(p["bias"], np.float64)
    xp = np.pad(np.asarray(x, np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    for c in range(3):
        for m in range(2):
            o = c * 2 + m
            want = sum(xp[:, i : i + 5, j : j + 6, c] * k[i, j, 0, o] for i in range(3) for j in range(3)) + b[o]
            np.testing.assert_allclose(y[..., o], want, rtol=1e-5, atol=1e-5)


def test_depthwise_warns_like_conv2d_when_a_stride_does_not_tile():
    layers = build([{"type": "depthwise_conv2d", "kernel_size": 2, "strides": 2}])
    _, out, problems, warnings = thread_shapes(layers, (5, 5, 2))
    assert not problems and out == (2, 2, 2)
    assert "(5 + 0 − 2)/2 + 1 = 2.5, the last row/column is dropped" in warnings[0][1]


def test_windowed_layers_need_the_step_loop_nested_or_not():
    from nnctl.layers.base import needs_step_loop

    slow = {name for name, cls in LAYERS.items() if cls.slow_in_scan}
    assert slow == {
        "conv1d",
        "conv2d",
        "conv2d_transpose",
        "depthwise_conv2d",
        "max_pool1d",
        "max_pool2d",
        "avg_pool1d",
        "avg_pool2d",
        "conv3d",
        "sum_pool1d",
        "sum_pool2d",
    }
    assert not needs_step_loop(build([{"type": "dense", "units": 2}, {"type": "global_avg_pool"}]))
    assert needs_step_loop(build([{"type": "maxpool2d"}]))  # an alias counts too
    nested = build([{"type": "residual", "layers": [{"type": "conv2d", "filters": 2, "kernel_size": 1}]}])
    assert needs_step_loop(nested)


@pytest.mark.parametrize("f,u", [(3, 4), (10, 7), (1, 32)])
def test_lstm_is_4x_and_gru_3x_a_simple_rnn(f, u):
    n = {t: count(build([{"type": t, "units": u}]), (6, f)) for t in ("simple_rnn", "lstm", "gru")}
    assert n["lstm"] == 4 * n["simple_rnn"] and n["gru"] == 3 * n["simple_rnn"]


def test_notes_cnn_for_28x28_digits():
    layers = build(
        [
            {"type": "conv2d", "filters": 14, "kernel_size": 5, "padding": "same", "activation": "relu"},
            {"type": "max_pool2d", "pool_size": 2, "strides": 2},
            {"type": "conv2d", "filters": 36, "kernel_size": 5, "padding": "same", "activation": "relu"},
            {"type": "max_pool2d", "pool_size": 2, "strides": 2},
            {"type": "flatten"},
            {"type": "dense", "units": 1764, "activation": "relu"},
            {"type": "dropout", "rate": 0.4},
            {"type": "dense", "units": 10},
        ]
    )
    shapes = thread_shapes(layers, (28, 28, 1))[0]
    assert [shapes[x.name] for x in layers[:5]] == [(28, 28, 14), (14, 14, 14), (14, 14, 36), (7, 7, 36), (1764,)]


# ------------------------------------------------------------------------------- shape warnings/errors


def test_untiled_stride_warns_with_the_arithmetic():
    layers = build(
        [
            {"type": "conv2d", "filters": 1, "kernel_size": 3, "padding": "same"},
            {"type": "conv2d", "filters": 1, "kernel_size": 2, "strides": 2},
        ]
    )
    _, out, problems, warnings = thread_shapes(layers, (5, 5, 1))
    assert not problems and out == (2, 2, 1)
    ((where, msg),) = warnings
    assert where == (1,)
    assert msg == (
        "conv2d_1: input 5, kernel 2, stride 2, padding 0: (5 + 0 − 2)/2 + 1 = 2.5, the last row/column "
        "is dropped; `same` padding tiles it"
    )


def test_pool_warning_suggests_a_padding_that_tiles():
    _, _, _, warnings = thread_shapes(build([{"type": "max_pool1d", "pool_size": 3, "strides": 3}]), (8, 1))
    assert (
        "input 8, pool 3, stride 3, padding 0: (8 + 0 − 3)/3 + 1 = 2.66667, the last 2 steps are dropped"
        in warnings[0][1]
    )
    assert "padding 2 or `same` tiles it" in warnings[0][1]


def test_tiling_input_has_no_warning():
    assert thread_shapes(build([{"type": "conv2d", "filters": 1, "kernel_size": 2, "strides": 2}]), (6, 6, 1))[3] == []


@pytest.mark.parametrize(
    "raw,shape,fragment",
    [
        ({"type": "conv2d", "filters": 1, "kernel_size": 5}, (3, 3, 1), "kernel (5) is larger than the padded input"),
        ({"type": "conv2d", "filters": 1, "kernel_size": 3}, (9,), "expects (height, width, channels)"),
        ({"type": "conv1d", "filters": 1, "kernel_size": 3}, (40,), "reshape, shape: [40, 1]"),
        ({"type": "conv2d", "filters": 1, "kernel_size": [3, 3, 3]}, (5, 5, 1), "needs 2 value(s)"),
        ({"type": "max_pool2d", "pool_size": 4}, (3, 3, 1), "pool (4) is larger than the padded input"),
        ({"type": "lstm", "units": 2}, (7,), "expects a sequence (steps, features)"),
        ({"type": "multi_head_attention", "num_heads": 1, "key_dim": 2}, (4, 4, 1), "expects a sequence"),
        (
            {"type": "conv2d_transpose", "filters": 1, "kernel_size": 2, "padding": 2},
            (3, 3, 1),
            "at most kernel_size - 1",
        ),
    ],
)
def test_impossible_shapes_are_spec_errors(raw, shape, fragment):
    _, out, problems, _ = thread_shapes(build([raw]), shape)
    assert out is None and len(problems) == 1
    assert fragment in problems[0][1]


def test_merge_shape_errors():
    _, _, problems, _ = thread_shapes(build(branch(3, 2, {"type": "add"})), (4,))
    assert "inputs must have the same shape" in problems[0][1]
    raw = [
        {"type": "conv2d", "filters": 2, "kernel_size": 3, "name": "a", "inputs": ["input"]},
        {"type": "conv2d", "filters": 2, "kernel_size": 1, "name": "b", "inputs": ["input"]},
        {"type": "concat", "inputs": ["a", "b"]},
    ]
    _, _, problems, _ = thread_shapes(build(raw), (5, 5, 1))
    assert "only axis -1 may differ" in problems[0][1]


# --------------------------------------------------------------------------- recurrent vs a reference


def _sig(z):
    return 1 / (1 + np.exp(-z))


def reference_rnn(cell, p, x, bidirectional, return_sequences):
    """Step by step in numpy, one direction at a time, straight from the equations."""
    w, rk, b = (np.asarray(p[k], np.float64) for k in ("kernel", "recurrent_kernel", "bias"))
    dirs = [(w[i], rk[i], b[i]) for i in range(2)] if bidirectional else [(w, rk, b)]
    x = np.asarray(x, np.float64)
    outs = []
    for d, (W, U, bb) in enumerate(dirs):
        u = U.shape[0]
        seq = x if d == 0 else x[:, ::-1]
        h = np.zeros((x.shape[0], u))
        c = np.zeros_like(h)
        hs = []
        for t in range(x.shape[1]):
            xt = seq[:, t]
            if cell == "simple_rnn":
                h = np.tanh(xt @ W + h @ U + bb)
            elif cell == "lstm":
                z = xt @ W + h @ U + bb
                i, f, g, o = z[:, :u], z[:, u : 2 * u], z[:, 2 * u : 3 * u], z[:, 3 * u :]
                c = _sig(f) * c + _sig(i) * np.tanh(g)
                h = _sig(o) * np.tanh(c)
            else:
                Wz, Wr, Wh = W[:, :u], W[:, u : 2 * u], W[:, 2 * u :]
                Uz, Ur, Uh = U[:, :u], U[:, u : 2 * u], U[:, 2 * u :]
                bz, br, bh = bb[:u], bb[u : 2 * u], bb[2 * u :]
                z = _sig(xt @ Wz + h @ Uz + bz)
                r = _sig(xt @ Wr + h @ Ur + br)
                hh = np.tanh(xt @ Wh + (r * h) @ Uh + bh)
                h = z * h + (1 - z) * hh
            hs.append(h)
        hs = np.stack(hs, 1)
        outs.append((hs if d == 0 else hs[:, ::-1]) if return_sequences else h)
    return np.concatenate(outs, -1)


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional,return_sequences", [(False, False), (True, True)])
def test_recurrent_matches_step_by_step_reference(cell, bidirectional, return_sequences):
    layers = build([{"type": cell, "units": 3, "bidirectional": bidirectional, "return_sequences": return_sequences}])
    net = Network(layers)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 4, 2)), jnp.float32)
    v = random_variables(net, x, seed=3)
    y = jax.jit(lambda v, x: net.apply(v, x))(v, x)
    want = reference_rnn(cell, v["params"][layers[0].name], x, bidirectional, return_sequences)
    np.testing.assert_allclose(np.asarray(y), want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell,return_sequences", [("lstm", True), ("simple_rnn", False)])
def test_bidirectional_matches_pytorch(cell, return_sequences):
    """Same weights in torch.nn.LSTM/RNN (same gate order i, f, g, o): same outputs, both directions."""
    torch = pytest.importorskip("torch")
    layers = build([{"type": cell, "units": 3, "bidirectional": True, "return_sequences": return_sequences}])
    net = Network(layers)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 5, 2)), jnp.float32)
    v = random_variables(net, x)
    y = np.asarray(jax.jit(lambda v, x: net.apply(v, x))(v, x))
    p = {k: np.asarray(a) for k, a in v["params"][layers[0].name].items()}
    t = (torch.nn.LSTM if cell == "lstm" else torch.nn.RNN)(2, 3, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for d, suffix in enumerate(["", "_reverse"]):
            getattr(t, f"weight_ih_l0{suffix}").copy_(torch.tensor(p["kernel"][d].T))
            getattr(t, f"weight_hh_l0{suffix}").copy_(torch.tensor(p["recurrent_kernel"][d].T))
            getattr(t, f"bias_ih_l0{suffix}").copy_(torch.tensor(p["bias"][d]))
            getattr(t, f"bias_hh_l0{suffix}").zero_()
        out, h = t(torch.tensor(np.asarray(x)))
        hn = h[0] if cell == "lstm" else h
        want = out.numpy() if return_sequences else torch.cat([hn[0], hn[1]], -1).numpy()
    np.testing.assert_allclose(y, want, atol=1e-5)


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm"])
@pytest.mark.parametrize("directions", [1, 2])
@pytest.mark.parametrize("sequences", [True, False])
def test_hand_written_recurrent_backward_equals_autodiff(cell, directions, sequences):
    """`fast_recurrence`'s backward pass (kernel gradient as one matmul after the scan, the LSTM's gate
    factors kept over the projected inputs) gives the gradients autodiff of the plain scan gives, for the
    kernel, the inputs and the initial state, with cotangents on both the outputs and the final carry, and
    on the final carry alone when the outputs are not asked for (`sequences=False`)."""
    from nnctl.layers.recurrent import GATES, fast_recurrence, step_fn

    t, b, u = 5, 3, 4
    g = GATES[cell]
    ks = jax.random.split(jax.random.key(2), 5)
    rk = jax.random.normal(ks[0], (directions, u, g * u)) * 0.5
    xp = jax.random.normal(ks[1], (t, directions, b, g * u))
    h0 = jax.random.normal(ks[2], (directions, b, u)) * 0.3
    carry0 = (h0, jax.random.normal(ks[3], (directions, b, u)) * 0.3) if cell == "lstm" else h0
    wy = jax.random.normal(ks[4], (t, directions, b, u))

    def loss(fn, rk, xp, carry0):
        carry, ys = fn(rk, xp, carry0)
        last = jax.tree.leaves(carry)
        return (ys * wy).sum() * sequences + sum((c**2).sum() for c in last)

    step = step_fn(cell, u)
    plain = lambda rk, xp, c0: jax.lax.scan(lambda c, p: step(rk, c, p), c0, xp)
    fast = lambda rk, xp, c0: fast_recurrence(cell, rk, xp, c0, sequences)
    if sequences:
        np.testing.assert_allclose(fast(rk, xp, carry0)[1], plain(rk, xp, carry0)[1], rtol=1e-6, atol=1e-6)
    else:
        assert fast(rk, xp, carry0)[1] is None
        fast = lambda rk, xp, c0: (fast_recurrence(cell, rk, xp, c0, False)[0], 0.0)
    for a, b_ in zip(jax.tree.leaves(fast(rk, xp, carry0)[0]), jax.tree.leaves(plain(rk, xp, carry0)[0])):
        np.testing.assert_allclose(a, b_, rtol=1e-6, atol=1e-6)
    want = jax.grad(lambda *a: loss(plain, *a), argnums=(0, 1, 2))(rk, xp, carry0)
    got = jax.jit(jax.grad(lambda *a: loss(fast, *a), argnums=(0, 1, 2)))(rk, xp, carry0)
    for a, b_ in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
        np.testing.assert_allclose(b_, a, rtol=1e-5, atol=1e-5)


def test_recurrence_is_a_compiled_scan():
    layers = build([{"type": "lstm", "units": 3, "bidirectional": True}])
    net = Network(layers)
    x = jnp.zeros((2, 30, 2))
    v = random_variables(net, x)
    jaxpr = str(jax.make_jaxpr(lambda v, x: net.apply(v, x))(v, x))
    assert jaxpr.count("scan[") == 1  # both directions in one scan, not 30 unrolled steps


def test_lstm_forget_bias_starts_at_one():
    layers = build([{"type": "lstm", "units": 2, "kernel_init": "zeros", "recurrent_init": "zeros"}])
    b = Network(layers).init(jax.random.key(0), jnp.zeros((1, 3, 1)))["params"][layers[0].name]["bias"]
    np.testing.assert_array_equal(np.asarray(b), [0, 0, 1, 1, 0, 0, 0, 0])


# ----------------------------------------------------------------------------- train vs eval behaviour


def test_batch_norm_in_conv_stack_uses_running_statistics_at_eval():
    layers = build([{"type": "conv2d", "filters": 2, "kernel_size": 3, "padding": "same"}, {"type": "batch_norm"}])
    net = Network(layers)
    x = jnp.asarray(np.random.default_rng(0).normal(3.0, 2.0, (4, 5, 5, 1)), jnp.float32)
    v = net.init(jax.random.key(0), x)
    assert set(v) == {"params", "batch_stats"}
    assert "batch_stats" not in jax.tree_util.tree_structure(v["params"]).__repr__()
    y_train, upd = net.apply(v, x, train=True, mutable=["batch_stats"])
    assert abs(float(y_train.mean())) < 1e-4  # normalised with the batch's own statistics
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), upd["batch_stats"], v["batch_stats"])
    assert max(jax.tree.leaves(moved)) > 0
    y_eval = net.apply({**v, **upd}, x, train=False)  # running statistics: not the batch's
    assert abs(float(y_eval.mean())) > 1e-3


def test_dropout_only_in_training():
    net = Network(build([{"type": "dropout", "rate": 0.5}]))
    x = jnp.ones((2, 4, 4, 3))
    v = net.init(jax.random.key(0), x)
    np.testing.assert_array_equal(np.asarray(net.apply(v, x, train=False)), np.asarray(x))
    t = net.apply(v, x, train=True, rngs={"dropout": jax.random.key(1)})
    assert 0.2 < float(jnp.mean(t == 0)) < 0.8
