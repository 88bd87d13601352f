"""`nnctl gradcheck`: finite differences agree with autodiff on a correct model, and catch a wrong gradient (an
activation whose custom_vjp backward is off by 10%) in exactly the arrays it reaches."""

import jax
import jax.numpy as jnp
import pytest
from typer.testing import CliRunner

from nnctl.activations import ACTIVATIONS
from nnctl.app.gradcheck import check_gradients, gradcheck
from nnctl.cli import app
from nnctl.errors import NnctlError
from tests.conftest import SPECS


@jax.custom_vjp
def wrong_tanh(x):
    return jnp.tanh(x)


def _fwd(x):
    return jnp.tanh(x), x


def _bwd(x, g):
    return (1.1 * g * (1 - jnp.tanh(x) ** 2),)  # 10% too large: the bug gradcheck must find


wrong_tanh.defvjp(_fwd, _bwd)


@pytest.fixture
def broken_tanh(monkeypatch):
    monkeypatch.setitem(ACTIVATIONS._items, "tanh", lambda x, /: wrong_tanh(x))


def test_correct_model_passes_with_tiny_errors():
    res = gradcheck(str(SPECS / "xor.yaml"))
    assert res["ok"]
    assert [r["path"] for r in res["arrays"]] == ["dense_0/bias", "dense_0/kernel", "dense_1/bias", "dense_1/kernel"]
    assert all(r["relative_error"] < 1e-8 for r in res["arrays"]), res["arrays"]
    assert [r["checked"] for r in res["arrays"]] == [2, 4, 1, 2]  # small arrays: every entry


def test_wrong_custom_vjp_fails_exactly_the_arrays_behind_it(broken_tanh):
    res = gradcheck(str(SPECS / "xor.yaml"))
    assert not res["ok"]
    bad = {r["path"] for r in res["arrays"] if not r["ok"]}
    assert bad == {"dense_0/bias", "dense_0/kernel"}  # tanh is dense_0's activation; dense_1's gradient skips it
    assert all(r["relative_error"] > 1e-3 for r in res["arrays"] if r["path"] in bad)


def test_cli_exit_codes(broken_tanh):
    r = CliRunner().invoke(app, ["gradcheck", str(SPECS / "xor.yaml"), "--quiet"])
    assert r.exit_code == 1, r.output


def test_cli_passes_and_prints_the_table():
    r = CliRunner().invoke(app, ["gradcheck", str(SPECS / "xor.yaml")])
    assert r.exit_code == 0, r.output
    assert "dense_0/kernel" in r.output and "gradients agree" in r.output


def test_check_gradients_samples_large_arrays_and_flags_a_wrong_one():
    @jax.custom_vjp
    def f(w):
        return jnp.sum(jnp.sin(w))

    f.defvjp(lambda w: (f(w), w), lambda w, g: (g * jnp.cos(w) + 0.01,))
    with jax.enable_x64(True):  # as gradcheck runs it
        params = {"a": jnp.linspace(0.0, 1.0, 50), "b": jnp.ones(3)}
        rows = check_gradients(lambda p: f(p["a"]) + jnp.sum(p["b"] ** 2), params, entries=8)
    assert [(r["path"], r["checked"], r["ok"]) for r in rows] == [("a", 8, False), ("b", 3, True)]


def test_models_without_weights_are_refused(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "data: {source: inline, x: [[1, 2]], y: [0]}\n"
        "model: {layers: [{type: activation, activation: softmax}]}\n"
        "train: {loss: categorical_crossentropy}\n"
    )
    with pytest.raises(NnctlError, match="no parameters"):
        gradcheck(str(spec))
