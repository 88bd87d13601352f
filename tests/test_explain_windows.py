"""`nnctl explain` writes convolution and pooling windows out: the notes' 5×5 ∗ 3×3 example (the first cell of
the convolved feature is 4) and the max-pool table (3 3 3 / 3 3 3 / 3 2 3), from the layers' own code."""

import numpy as np
import pytest
from typer.testing import CliRunner

from nnctl.app.explain import explain_spec
from nnctl.app.explain_windows import window_record
from nnctl.cli import app
from tests.conftest import SPECS
from tests.test_layers import build

CONV = str(SPECS / "conv_worked_example.yaml")
POOL = str(SPECS / "maxpool_worked_example.yaml")
IMAGE = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]], float)
FILTER = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], float)
FEATURE_MAP = np.array([[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]], float)


@pytest.fixture(scope="module")
def conv_text():
    res = CliRunner().invoke(app, ["explain", CONV])
    assert res.exit_code == 0, res.output
    return res.output


def test_the_notes_first_convolved_cell_is_4_as_its_sum_of_products(conv_text):
    assert "conv2d_0[0,0] = 1·1 + 1·0 + 1·1 + 0·0 + 1·1 + 1·0 + 0·1 + 0·0 + 1·1 = 4" in conv_text


def test_every_convolved_cell_is_the_window_sum():
    (rec,) = explain_spec(CONV)["steps"][0]["windows"]
    want = np.array([[np.sum(IMAGE[i : i + 3, j : j + 3] * FILTER) for j in range(3)] for i in range(3)])
    np.testing.assert_array_equal(rec["output"], want)
    assert want[0, 0] == 4  # the notes' printed cell
    for c in rec["cells"]:
        i, j = c["cell"]
        assert [p[:2] for p in c["window"]] == [(i + a, j + b) for a in range(3) for b in range(3)]
        assert c["weights"] == FILTER.reshape(-1).tolist() and c["bias"] == 0


def test_the_notes_max_pool_table_and_where_the_gradient_goes():
    (rec,) = explain_spec(POOL)["steps"][0]["windows"]
    np.testing.assert_array_equal(rec["output"], [[3.0, 3.0, 3.0], [3.0, 3.0, 3.0], [3.0, 2.0, 3.0]])
    for c in rec["cells"]:
        i, j = c["cell"]
        window = FEATURE_MAP[i : i + 3, j : j + 3]
        assert c["inputs"] == window.reshape(-1).tolist() and c["value"] == window.max()
        # overlapping windows use reduce_window: its gradient goes to the first maximum in row-major order
        first = np.unravel_index(np.argmax(window), (3, 3))
        assert c["gradient_to"] == [[i + int(first[0]), j + int(first[1]), 0]]
    text = CliRunner().invoke(app, ["explain", POOL]).output
    assert "max_pool2d_0[2,1] = max(1, 2, 2, 0, 0, 2, 0, 0, 0) = 2 over rows 2-4, cols 1-3;" in text
    assert "dE/dmax_pool2d_0[2,1] goes to input (2,2)" in text


def test_padded_strided_convolution_with_bias_and_channels_against_numpy():
    import jax.numpy as jnp

    layer = build([{"type": "conv2d", "filters": 2, "kernel_size": 3, "strides": 2, "padding": 1}])[0]
    rng = np.random.default_rng(0)
    k, b = rng.normal(size=(3, 3, 2, 2)), np.array([0.5, -1.0])
    x = rng.normal(size=(1, 5, 5, 2))
    rec = window_record(layer, {"params": {layer.name: {"kernel": jnp.asarray(k), "bias": jnp.asarray(b)}}}, x)
    xp = np.pad(x[0], ((1, 1), (1, 1), (0, 0)))
    for c in rec["cells"]:
        i, j = c["cell"]
        assert c["value"] == pytest.approx(np.sum(xp[2 * i : 2 * i + 3, 2 * j : 2 * j + 3] * k[..., 0]) + 0.5)
        assert c["bias"] == pytest.approx(0.5, abs=1e-5)  # the rest of a float32 output: its rounding
        for (r, q, ch), w in zip(c["window"], c["weights"]):  # the weight a kernel tap puts on that input
            assert w == pytest.approx(k[r + 1 - 2 * i, q + 1 - 2 * j, ch, 0])


def test_a_zero_bias_is_written_as_none_not_as_float32_rounding():
    import jax.numpy as jnp

    layer = build([{"type": "conv2d", "filters": 1, "kernel_size": 3}])[0]
    rng = np.random.default_rng(1)
    k = rng.normal(size=(3, 3, 1, 1))
    x = rng.normal(size=(1, 6, 6, 1)) * 3
    rec = window_record(layer, {"params": {layer.name: {"kernel": jnp.asarray(k), "bias": jnp.zeros(1)}}}, x)
    assert [c["bias"] for c in rec["cells"]] == [0.0] * len(rec["cells"])


def test_non_overlapping_max_pool_sends_the_gradient_to_every_tied_maximum():
    layer = build([{"type": "max_pool2d", "pool_size": 2}])[0]
    x = np.array([[1.0, 1.0], [0.0, 1.0]]).reshape(1, 2, 2, 1)
    (c,) = window_record(layer, {}, x)["cells"]
    assert c["gradient_to"] == [[0, 0, 0], [0, 1, 0], [1, 1, 0]]  # the tie rule of nnctl's window_max
