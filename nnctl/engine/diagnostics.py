"""Per-layer training diagnostics (`train.diagnostics: true`), measured on the device at the end of every epoch.

At the end of an epoch `Probe.measure` runs one forward and backward pass of the epoch's final weights on a
fixed probe batch (the first examples of the training split, closed over as a constant) and returns, per
layer, as entries of the epoch's record:

* `diag/<layer>/grad_norm`: the L2 norm of the layer's gradient (all its arrays together; frozen ones 0);
* `diag/<layer>/weight_norm`: the L2 norm of its weights;
* `diag/<layer>/update_ratio`: ||update|| / ||weights|| of the update the optimizer would make from that
  gradient and its current state (the update is not applied);
* `diag/<layer>/dead_fraction` (hidden ReLU layers): the fraction of units (the last axis: units, channels)
  whose output is 0 for every example (and position) of the probe batch;
* `diag/<layer>/saturated_fraction` (hidden sigmoid / tanh layers): the fraction of outputs in the flat tails
  (sigmoid below 0.01 or above 0.99, tanh beyond +-0.99: the derivative is below 0.01 / 0.02 there).

The pass is in training mode (dropout drawn from a fixed key, batch statistics of the probe batch, their
update discarded): the gradient is the one the optimizer sees. Nothing is read on the host per step: the
values join the records the host reads once per compiled call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnctl.engine.state import TrainState

SATURATED = {"sigmoid": 0.99, "tanh": 0.99}  # watched activation -> the output bound of its flat tails
DEAD = ("relu",)  # activations whose units can die (output exactly 0 for every input)
WATCHED = (*DEAD, *SATURATED)


def _norm(tree: Any) -> jax.Array:
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.float32(0)
    return jnp.sqrt(sum(jnp.sum(jnp.square(a.astype(jnp.float32))) for a in leaves))


def dead_fraction(a: jax.Array) -> jax.Array:
    """Fraction of units (last axis) whose output is 0 for every example and position."""
    alive = jnp.any(a.reshape(-1, a.shape[-1]) != 0, axis=0)
    return 1.0 - jnp.mean(alive.astype(jnp.float32))


def saturated_fraction(a: jax.Array, kind: str) -> jax.Array:
    """Fraction of outputs in the activation's flat tails."""
    bound = SATURATED[kind]
    if kind == "sigmoid":
        flat = (a < 1.0 - bound) | (a > bound)
    else:
        flat = jnp.abs(a) > bound
    return jnp.mean(flat.astype(jnp.float32))


@dataclass(frozen=True, eq=False)
class Probe:
    """The fixed batch and the layers the diagnostics watch.

    x, y: the probe batch (host arrays); order: every layer name in spec order (records follow it);
    watched: (layer name, activation) of the hidden layers whose outputs are checked; seed: the dropout key's."""

    x: np.ndarray
    y: np.ndarray
    order: tuple[str, ...]
    watched: tuple[tuple[str, str], ...]
    seed: int = 0

    def measure(self, obj: Any, state: TrainState) -> dict:
        """The diagnostics of `state` (records keyed diag/<layer>/<quantity>)."""
        x, y = jnp.asarray(self.x), jnp.asarray(self.y)
        key = jax.random.fold_in(jax.random.key(self.seed), 7)
        names = tuple(n for n, _ in self.watched)

        def loss(p):
            out, _ = obj.forward(p, state.model_state, x, True, key, capture=names)
            logits, acts = out if names else (out, {})
            return jnp.mean(obj.per_example(logits, y)) + obj.penalty(p), acts

        (value, acts), grads = jax.value_and_grad(loss, has_aux=True)(state.params)
        grads = jax.tree.map(lambda g, t: g if t else jnp.zeros_like(g), grads, obj.trainable)
        updates, _ = obj.tx.update(grads, state.opt_state, state.params, value=value)
        rec: dict[str, jax.Array] = {}
        for name in self.order:
            if name in state.params:
                w = _norm(state.params[name])
                rec[f"diag/{name}/grad_norm"] = _norm(grads[name])
                rec[f"diag/{name}/weight_norm"] = w
                rec[f"diag/{name}/update_ratio"] = _norm(updates[name]) / jnp.maximum(w, 1e-12)
        for name, kind in self.watched:
            a = acts[name].astype(jnp.float32)
            if kind in DEAD:
                rec[f"diag/{name}/dead_fraction"] = dead_fraction(a)
            else:
                rec[f"diag/{name}/saturated_fraction"] = saturated_fraction(a, kind)
        return rec
