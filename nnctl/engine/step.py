"""The one copy of the step mechanics every objective uses.

* `forward`: a network applied with its dropout RNG, mutable state (batch statistics) while training, and the
  mixed-precision cast (`train.precision: bf16`: weights and inputs cast down, outputs and state back to
  float32; gradients flow back to the float32 weights through the cast).
* `apply_update`: frozen gradients zeroed, the global norm taken (logged, before clipping), the Optax update;
  `deferred_update`: the same, with the update as a function `commit` runs only for a kept step (on CPU; on
  GPU/TPU it is computed and selected, `conditional_update`).
* `commit`: the proposed state is kept only when the step is active (under `max_steps`, no earlier
  non-finite step when halting) and its loss and gradients are finite; the counters record it.
"""

from __future__ import annotations

from collections.abc import Callable
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


ROWS_FROM = 1 << 14  # elements: a gradient this large is summed by rows first (`global_norm`)


def global_norm(grads: Any) -> jax.Array:
    """The global L2 norm of a tree of gradients, as `optax.tree.norm` computes it, except that a gradient of
    at least `ROWS_FROM` elements is summed along its first axis last: its squares are first summed into one
    value per row. XLA:CPU runs a reduction to one scalar on one thread; one with a value per row it splits
    across the cores, so on a multi-core machine the norm of a large model no longer waits on one core
    (bench/RESULTS.md, wall-clock mode). Small gradients, and so every value of small models, are summed
    exactly as before; large ones differ in the last bits."""
    total = []
    for g in jax.tree.leaves(grads):
        sq = jnp.square(g.real) + jnp.square(g.imag)  # optax's square (the imaginary part of a real array is 0)
        rows = g.ndim > 1 and g.size >= ROWS_FROM
        total.append(jnp.sum(jnp.sum(sq, axis=tuple(range(1, g.ndim)))) if rows else jnp.sum(sq))
    return jnp.sqrt(sum(total))


def prepare_grads(trainable: Any, grads: Any) -> tuple[Any, jax.Array]:
    """(gradients with frozen ones zeroed, their global norm): what the finite check and the logs read."""
    if trainable is not None:
        grads = jax.tree.map(lambda g, t: g if t else jnp.zeros_like(g), grads, trainable)
    return grads, global_norm(grads)


def optimizer_step(tx: optax.GradientTransformation, opt_state: Any, params: Any, loss: jax.Array, grads: Any) -> tuple:
    """(new params, new optimizer state) of one Optax update."""
    updates, new_opt = tx.update(grads, opt_state, params, value=loss)
    return optax.apply_updates(params, updates), new_opt


def apply_update(
    tx: optax.GradientTransformation, trainable: Any, opt_state: Any, params: Any, loss: jax.Array, grads: Any
) -> tuple[Any, Any, jax.Array, Any]:
    """(new params, new optimizer state, gradient norm, gradients with frozen ones zeroed) of one optimizer."""
    grads, gnorm = prepare_grads(trainable, grads)
    new_params, new_opt = optimizer_step(tx, opt_state, params, loss, grads)
    return new_params, new_opt, gnorm, grads


def deferred_update(
    tx: optax.GradientTransformation, trainable: Any, state: TrainState, loss: jax.Array, grads: Any, model_state: Any
) -> tuple[Callable[[], TrainState], Any, jax.Array]:
    """(the proposed state as a function, gradients with frozen ones zeroed, gradient norm) of one optimizer.

    The gradient norm needs no update, so `commit` can decide first and run the update only for a kept step
    (`lax.cond`): the same values as selecting after the update, without XLA copying the optimizer state that
    the select reads back (measured 10 % of a small model's step on XLA:CPU)."""
    grads, gnorm = prepare_grads(trainable, grads)

    def proposed() -> TrainState:
        params, opt = optimizer_step(tx, state.opt_state, state.params, loss, grads)
        return TrainState(params=params, model_state=model_state, opt_state=opt, step=state.step + 1)

    return proposed, grads, gnorm


def conditional_update() -> bool:
    """Whether `commit` runs a deferred update under `lax.cond` (CPU) or computes it and selects (GPU, TPU).
    XLA:CPU runs a conditional in place; XLA:GPU reads a conditional's predicate back on the host, a sync per
    step that the select does not need."""
    return jax.default_backend() == "cpu"


def commit(
    state: TrainState,
    proposed: TrainState | Callable[[], TrainState],
    counters: Counters,
    loss: jax.Array,
    gnorm: jax.Array,
    clipped: jax.Array,
    max_steps: int,
    halt_on_nonfinite: bool,
) -> tuple[TrainState, Counters, jax.Array]:
    """Keep `proposed` (a state, or a function making it: `deferred_update`) when the step is active and finite.
    Returns (state, counters, ok)."""
    finite_loss, finite_grad = jnp.isfinite(loss), jnp.isfinite(gnorm)
    active = (state.step < max_steps) & (counters.bad_step < 0 if halt_on_nonfinite else True)
    ok = active & finite_loss & finite_grad
    if callable(proposed) and conditional_update():
        state = jax.lax.cond(ok, proposed, lambda: state)
    else:
        state = tree_where(ok, proposed() if callable(proposed) else proposed, state)
    bad = active & ~(finite_loss & finite_grad)
    first = bad & (counters.bad_step < 0)
    counters = counters.count(ok, bad, gnorm, clipped).first(first, state.step, jnp.where(finite_loss, 2, 1))
    return state, counters, ok


def masked_mean(v: jax.Array, mask: jax.Array) -> jax.Array:
    return (v * mask).sum() / jnp.maximum(mask.sum(), 1.0)
