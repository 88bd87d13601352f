"""Values of the layers added for the notes (sum pooling, reflect/replicate padding, LRN, grouped and 3-D
convolutions, time_distributed, repeat_vector, RBF, RReLU) against numpy formulas, golden parameter counts,
and the notes' video model (a CNN per frame, then an RNN over the frames) training."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnctl.app import train_run
from nnctl.layers.graph import Network
from tests.test_layers import build, count, random_variables

RNG = np.random.default_rng(0)


def run(raw, x, train=False, seed=0):
    layers = build(raw)
    net = Network(layers)
    x = jnp.asarray(x, jnp.float32)
    v = random_variables(net, x, seed)
    rngs = {"dropout": jax.random.key(seed)} if train else {}
    return np.asarray(net.apply(v, x, train=train, rngs=rngs)), v


def test_sum_pool_is_the_window_sum():
    x = RNG.normal(size=(1, 4, 4, 1))
    y, _ = run([{"type": "sum_pool2d", "pool_size": 2}], x)
    want = x[0, :, :, 0].reshape(2, 2, 2, 2).sum(axis=(1, 3))
    np.testing.assert_allclose(y[0, :, :, 0], want, rtol=1e-5)


@pytest.mark.parametrize("mode,np_mode", [("reflect", "reflect"), ("replicate", "edge"), ("zeros", "constant")])
def test_padding_modes_match_numpy(mode, np_mode):
    x = RNG.normal(size=(1, 3, 4, 2))
    y, _ = run([{"type": "padding", "padding": [1, 2], "mode": mode}], x)
    np.testing.assert_allclose(y, np.pad(x, ((0, 0), (1, 1), (2, 2), (0, 0)), mode=np_mode), rtol=1e-6)


def test_reflect_1d_is_the_notes_picture():
    y, _ = run([{"type": "padding", "padding": 2, "mode": "reflect"}], np.array([[[1], [2], [3], [4]]]))
    assert y[0, :, 0].tolist() == [3, 2, 1, 2, 3, 4, 3, 2]  # d c b | a b c d | c b a, border not repeated


def test_reflect_padding_wider_than_the_input_is_a_shape_error():
    from nnctl.layers.graph import thread_shapes

    _, _, problems, _ = thread_shapes(build([{"type": "padding", "padding": 3, "mode": "reflect"}]), (3, 1))
    assert problems and "reflect padding 3 needs an axis longer than it" in problems[0][1]


def test_conv_with_reflect_padding_equals_padding_then_valid_conv():
    x = RNG.normal(size=(1, 5, 5, 2))
    conv = {"type": "conv2d", "filters": 3, "kernel_size": 3, "name": "c"}
    a, _ = run([{**conv, "padding": 1, "padding_mode": "reflect"}], x)
    b, _ = run([{"type": "padding", "padding": 1, "mode": "reflect", "name": "p"}, {**conv, "inputs": ["p"]}], x)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_lrn_matches_alexnets_formula():
    x = RNG.normal(size=(1, 2, 2, 6))
    y, _ = run([{"type": "lrn", "size": 3, "alpha": 0.5, "beta": 0.75, "k": 2.0}], x)
    want = np.empty_like(x)
    for c in range(6):
        s = (x[..., max(0, c - 1) : c + 2] ** 2).sum(-1)
        want[..., c] = x[..., c] / (2.0 + 0.5 * s) ** 0.75
    np.testing.assert_allclose(y, want, rtol=1e-5)


def test_grouped_conv_is_two_convolutions_side_by_side():
    x = RNG.normal(size=(1, 5, 5, 4))
    y, v = run([{"type": "conv2d", "filters": 6, "kernel_size": 3, "groups": 2, "name": "g"}], x)
    k, b = np.asarray(v["params"]["g"]["kernel"]), np.asarray(v["params"]["g"]["bias"])  # k: [3, 3, 2, 6]
    for g in range(2):
        xs = x[..., 2 * g : 2 * g + 2]
        for o in range(3 * g, 3 * g + 3):
            want = sum(xs[0, i : i + 3, j : j + 3, :] * k[i, j, :, o] for i in range(3) for j in range(3))
            np.testing.assert_allclose(y[0, :, :, o], want.sum(-1) + b[o], rtol=1e-4, atol=1e-5)


def test_alexnet_second_convolution_has_307456_parameters_in_two_groups():
    conv = {"type": "conv2d", "filters": 256, "kernel_size": 5, "padding": 2}
    assert count(build([{**conv, "groups": 2}]), (27, 27, 96)) == 5 * 5 * 48 * 256 + 256 == 307456
    assert count(build([conv]), (27, 27, 96)) == 614656  # ungrouped, as torchvision's AlexNet


def test_groups_must_divide_the_channels():
    from nnctl.layers.graph import thread_shapes

    _, _, problems, _ = thread_shapes(
        build([{"type": "conv2d", "filters": 4, "kernel_size": 1, "groups": 3}]), (4, 4, 6)
    )
    assert problems and "groups 3 must divide" in problems[0][1]


def test_conv3d_output_size_and_parameters():
    layers = build([{"type": "conv3d", "filters": 8, "kernel_size": 3, "strides": [1, 2, 2], "padding": 1}])
    from nnctl.layers.graph import thread_shapes

    assert thread_shapes(layers, (16, 32, 32, 3))[1] == (16, 16, 16, 8)
    assert count(layers, (16, 32, 32, 3)) == 27 * 3 * 8 + 8 == 656


def test_time_distributed_applies_the_same_block_to_every_frame():
    x = RNG.normal(size=(2, 3, 4))
    y, v = run([{"type": "time_distributed", "name": "td", "layers": [{"type": "dense", "units": 2, "name": "d"}]}], x)
    p = v["params"]["td"]["d"]
    np.testing.assert_allclose(y, x @ np.asarray(p["kernel"]) + np.asarray(p["bias"]), rtol=1e-5, atol=1e-6)


def test_repeat_vector_and_rbf_formulas():
    x = RNG.normal(size=(2, 3))
    y, _ = run([{"type": "repeat_vector", "n": 4}], x)
    np.testing.assert_allclose(y, np.repeat(x[:, None], 4, axis=1), rtol=1e-6)
    y, v = run([{"type": "rbf", "units": 5, "name": "r"}], x)
    c, g = np.asarray(v["params"]["r"]["centers"]), np.exp(np.asarray(v["params"]["r"]["log_gamma"]))
    want = np.exp(-g * ((x[:, None, :] - c[None]) ** 2).sum(-1))
    np.testing.assert_allclose(y, want, rtol=1e-5)


def test_rrelu_draws_slopes_in_training_and_uses_their_mean_otherwise():
    x = -np.ones((2, 500))
    ev, _ = run([{"type": "rrelu", "lower": 0.1, "upper": 0.3}], x)
    np.testing.assert_allclose(ev, -0.2, rtol=1e-6)
    tr, _ = run([{"type": "rrelu", "lower": 0.1, "upper": 0.3}], x, train=True)
    assert (-tr).min() >= 0.1 and (-tr).max() <= 0.3 and (-tr).std() > 0.04
    pos, _ = run([{"type": "rrelu"}], np.abs(x), train=True)
    np.testing.assert_allclose(pos, 1.0)


VIDEO = """
data:
  source: inline
  x: {x}
  y: [0, 1, 0, 1]
model:
  input_shape: [3, 6, 6, 1]     # 3 frames of 6x6
  layers:
    - type: time_distributed     # the same small CNN on every frame
      layers:
        - {{type: conv2d, filters: 2, kernel_size: 3, activation: relu}}
        - {{type: max_pool2d, pool_size: 2}}
        - {{type: flatten}}
    - {{type: simple_rnn, units: 4}}   # then an RNN over the frames
    - {{type: dense, units: 2}}
train: {{loss: categorical_crossentropy, optimizer: adam, epochs: 2, batch_size: 2}}
"""


def test_notes_video_model_a_cnn_per_frame_then_an_rnn_trains(tmp_path):
    x = np.round(RNG.uniform(size=(4, 108)), 2).tolist()
    spec = tmp_path / "video.yaml"
    spec.write_text(VIDEO.format(x=x))
    res = train_run(str(spec), out=str(tmp_path / "run"))
    assert res.summary["epochs_run"] == 2 and math.isfinite(res.records[-1]["train/loss"])
    # conv 3*3*1*2 + 2 = 20, simple_rnn 8*4 + 4*4 + 4 = 52, dense 4*2 + 2 = 10
    from nnctl.app.inspect import params_report
    from nnctl.spec import load_spec

    assert params_report(load_spec(spec))["totals"]["total"]["count"] == 20 + 52 + 10
