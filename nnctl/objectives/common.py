"""Step bookkeeping shared by the objectives: the same rules as `nnctl.train.Supervised.train_step`
(frozen gradients zeroed, a non-finite loss or gradient skips the update and is recorded)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from nnctl.train import tree_where


def train_sums() -> dict:
    return dict(grad_norm=jnp.float32(0), clipped=jnp.float32(0), steps=jnp.float32(0), skipped=jnp.float32(0),
                bad_step=jnp.int32(-1), bad_what=jnp.int32(0))


def apply_update(tx, trainable, state, opt_state, params, loss, grads):
    """(new params, new optimizer state, gradient norm) of one optimizer."""
    if trainable is not None:
        grads = jax.tree.map(lambda g, t: g if t else jnp.zeros_like(g), grads, trainable)
    gnorm = optax.tree.norm(grads)
    updates, new_opt = tx.update(grads, opt_state, params, value=loss)
    return optax.apply_updates(params, updates), new_opt, gnorm, grads


def commit(state, new_state, sums, loss, gnorm, max_steps, halt_on_nonfinite, clipped=0.0):
    """Keep the new state when the step is active and finite; update the step counters in `sums`.
    Returns (state, sums, ok)."""
    finite_loss, finite_grad = jnp.isfinite(loss), jnp.isfinite(gnorm)
    active = (state["step"] < max_steps) & (sums["bad_step"] < 0 if halt_on_nonfinite else True)
    ok = active & finite_loss & finite_grad
    state = tree_where(ok, new_state, state)
    bad = active & ~(finite_loss & finite_grad)
    sums = dict(sums)
    sums.update(
        grad_norm=sums["grad_norm"] + jnp.where(ok, gnorm, 0.0),
        clipped=sums["clipped"] + jnp.where(ok, clipped, 0.0),
        steps=sums["steps"] + ok,
        skipped=sums["skipped"] + bad,
        bad_step=jnp.where(bad & (sums["bad_step"] < 0), state["step"], sums["bad_step"]),
        bad_what=jnp.where(bad & (sums["bad_step"] < 0), jnp.where(finite_loss, 2, 1), sums["bad_what"]),
    )
    return state, sums, ok


def masked_mean(v, mask):
    return (v * mask).sum() / jnp.maximum(mask.sum(), 1.0)
