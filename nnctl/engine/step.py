"""The one copy of the step mechanics every objective uses.

* `forward`: a network applied with its dropout RNG, mutable state (batch statistics) while training, and the
  mixed-precision cast (`train.precision: bf16`: weights and inputs cast down, outputs and state back to
  float32; gradients flow back to the float32 weights through the cast).
* `apply_update`: frozen gradients zeroed, the global norm taken (logged, before clipping), the Optax update.
* `commit`: the proposed state is kept only when the step is active (under `max_steps`, no earlier
  non-finite step when halting) and its loss and gradients are finite; the counters record it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from nnctl.engine.state import Counters, TrainState, tree_where


def _cast(tree: Any, dtype: Any) -> Any:
    return jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


def forward(
    net: Any,
    params: Any,
    model_state: dict,
    *args: Any,
    train: bool,
    key: jax.Array | None = None,
    compute_dtype: Any = None,
    method: str | None = None,
    **kw: Any,
) -> tuple[Any, dict]:
    """(output, new model state) of `net.apply`; training updates mutable collections and draws dropout."""
    if compute_dtype is not None:
        args = tuple(_cast(a, compute_dtype) for a in args)
        out, new_state = forward(
            net, _cast(params, compute_dtype), model_state, *args, train=train, key=key, method=method, **kw
        )
        new_state = jax.tree.map(lambda n, o: n.astype(o.dtype), new_state, model_state)
        return jax.tree.map(lambda a: a.astype(jnp.float32), out), new_state
    variables = {"params": params, **model_state}
    rngs = {"dropout": key} if (train and key is not None) else {}
    if train and model_state:
        out, new = net.apply(variables, *args, train=True, rngs=rngs, mutable=list(model_state), method=method, **kw)
        return out, {**model_state, **new}
    return net.apply(variables, *args, train=train, rngs=rngs, method=method, **kw), model_state


def apply_update(
    tx: optax.GradientTransformation, trainable: Any, opt_state: Any, params: Any, loss: jax.Array, grads: Any
) -> tuple[Any, Any, jax.Array, Any]:
    """(new params, new optimizer state, gradient norm, gradients with frozen ones zeroed) of one optimizer."""
    if trainable is not None:
        grads = jax.tree.map(lambda g, t: g if t else jnp.zeros_like(g), grads, trainable)
    gnorm = optax.tree.norm(grads)
    updates, new_opt = tx.update(grads, opt_state, params, value=loss)
    return optax.apply_updates(params, updates), new_opt, gnorm, grads


def commit(
    state: TrainState,
    proposed: TrainState,
    counters: Counters,
    loss: jax.Array,
    gnorm: jax.Array,
    clipped: jax.Array,
    max_steps: int,
    halt_on_nonfinite: bool,
) -> tuple[TrainState, Counters, jax.Array]:
    """Keep `proposed` when the step is active and finite. Returns (state, counters, ok)."""
    finite_loss, finite_grad = jnp.isfinite(loss), jnp.isfinite(gnorm)
    active = (state.step < max_steps) & (counters.bad_step < 0 if halt_on_nonfinite else True)
    ok = active & finite_loss & finite_grad
    state = tree_where(ok, proposed, state)
    bad = active & ~(finite_loss & finite_grad)
    first = bad & (counters.bad_step < 0)
    counters = Counters(
        grad_norm=counters.grad_norm + jnp.where(ok, gnorm, 0.0),
        clipped=counters.clipped + jnp.where(ok, clipped, 0.0),
        steps=counters.steps + ok,
        skipped=counters.skipped + bad,
        bad_step=jnp.where(first, state.step, counters.bad_step),
        bad_what=jnp.where(first, jnp.where(finite_loss, 2, 1), counters.bad_what),
    )
    return state, counters, ok


def masked_mean(v: jax.Array, mask: jax.Array) -> jax.Array:
    return (v * mask).sum() / jnp.maximum(mask.sum(), 1.0)
