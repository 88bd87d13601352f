"""`nnctl explain` shows the optimizer's state after each step (momentum v, Adam m, v, m̂, v̂, RMSprop E[g²]):
Optax's own state, checked here against the notes' update formulas recomputed from the printed gradients."""

import math

import pytest

from nnctl.app.explain import explain_spec, render
from nnctl.optim import OPTIMIZERS
from tests.conftest import SPECS

WORKED = str(SPECS / "backprop_worked_example.yaml")
LR = 0.1


def _rows(opt: str, steps: int = 3):
    doc = explain_spec(WORKED, steps=steps, overrides=(f"train.optimizer={{{opt}, learning_rate: {LR}}}",))
    by_weight: dict = {}
    for st in doc["steps"]:
        for row in st["optimizer_state"]:
            by_weight.setdefault(row["weight"], []).append(row)
    assert set(by_weight) == {"dense_0/kernel[0,0]", "dense_1/kernel[0,0]"}  # biases are frozen: no state
    return doc, by_weight


def test_adam_m_v_and_bias_corrections_follow_the_formulas():
    doc, rows = _rows("type: adam, b1: 0.9, b2: 0.999, eps: 1.0e-8")
    for seq in rows.values():
        m = v = 0.0
        for t, r in enumerate(seq, start=1):
            m, v = 0.9 * m + 0.1 * r["g"], 0.999 * v + 0.001 * r["g"] ** 2
            mh, vh = m / (1 - 0.9**t), v / (1 - 0.999**t)
            assert (r["m"], r["v"], r["m̂"], r["v̂"]) == pytest.approx((m, v, mh, vh), rel=1e-9)
            assert r["w_new"] == pytest.approx(r["w"] - LR * mh / (math.sqrt(vh) + 1e-8), rel=1e-9)
    text = "\n".join(render(doc))
    assert "optimizer state after each step (adam" in text and " m̂ " in text and " v̂ " in text


def test_momentum_in_the_notes_form_v_is_an_average_of_gradients():
    _, rows = _rows("type: momentum_ema, momentum: 0.9")
    for seq in rows.values():
        v = 0.0
        for r in seq:
            v = 0.9 * v + 0.1 * r["g"]
            assert r["v"] == pytest.approx(v, rel=1e-9) and r["w_new"] == pytest.approx(r["w"] - LR * v, rel=1e-9)


def test_rmsprop_e_g2_and_eps_outside_the_root():
    _, rows = _rows("type: rmsprop, decay: 0.9, eps: 1.0e-7")
    for seq in rows.values():
        e = 0.0
        for r in seq:
            e = 0.9 * e + 0.1 * r["g"] ** 2
            assert r["E[g²]"] == pytest.approx(e, rel=1e-9)
            assert r["w_new"] == pytest.approx(r["w"] - LR * r["g"] / (math.sqrt(e) + 1e-7), rel=1e-9)


def test_plain_sgd_says_it_keeps_no_state():
    doc = explain_spec(WORKED)
    assert "optimizer state: none (sgd -> freeze keeps no state per weight)" in render(doc)


@pytest.mark.parametrize("name", sorted(n for n, _ in OPTIMIZERS.items()))
def test_every_registered_optimizers_state_is_read(name):
    """Every optimizer's Optax state is walked without error; the notes' names where they apply."""
    from types import SimpleNamespace

    import jax
    import jax.numpy as jnp

    from nnctl.app.explain_optim import entries, optimizer_rows
    from nnctl.optim import OPTIMIZERS

    params = {"dense_0": {"kernel": jnp.ones((2, 2)), "bias": jnp.zeros(2)}}
    tx = OPTIMIZERS.get(name)()
    grads = jax.tree.map(jnp.ones_like, params)
    state = tx.update(grads, tx.init(params), params)[1]
    opt = SimpleNamespace(type=name, b1=0.9, b2=0.999)  # the registered defaults of adam and adamw
    rows = optimizer_rows(state, grads, params, params, entries(state), opt)
    want = {"sgd": set(), "momentum": {"v"}, "momentum_ema": {"v"}, "adam": {"m", "v", "m̂", "v̂"}}
    want |= {"adamw": want["adam"], "rmsprop": {"E[g²]"}, "adagrad": {"Σg²"}}
    got = set(rows[0]) - {"weight", "g", "w", "w_new"} if rows else set()
    assert got == want.get(name, got) and (rows or name == "sgd")
