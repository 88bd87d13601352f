"""Per-layer clip ranges (`train.clip`) as two Optax links: the gradient clip (before the optimizer) and the
weight clip (after every other link, so the weights after `apply_updates` lie in [weight_min, weight_max]).

Each parameter takes the first entry whose `params` glob matches its path (as `param_groups` do). Within an
entry: values clipped to [-grad_value, grad_value] first, then the entry's arrays scaled together so that
their joint L2 norm is at most `grad_norm` (a glob naming one layer clips that layer's gradient by its norm).
Frozen parameters are never moved by the weight clip."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from nnctl.trees import path_str


def entry_index(params_shape: Any, entries: Sequence[Any]) -> Any:
    """Tree of ints: the index of the first entry matching each parameter path, -1 for none."""

    def first(path, _):
        p = path_str(path)
        return next((i for i, e in enumerate(entries) if fnmatch.fnmatchcase(p, e.params)), -1)

    return jax.tree_util.tree_map_with_path(first, params_shape)


def grad_clip_link(params_shape: Any, entries: Sequence[Any]) -> optax.GradientTransformation | None:
    """Value then joint-norm clipping of each entry's gradients, or None when no entry clips gradients."""
    if not any(e.grad_value is not None or e.grad_norm is not None for e in entries):
        return None
    index = entry_index(params_shape, entries)

    def update(updates, state, params=None):
        leaves, treedef = jax.tree.flatten(updates)
        which = jax.tree.leaves(index)
        for i, e in enumerate(entries):
            mine = [k for k, w in enumerate(which) if w == i]
            if e.grad_value is not None:
                for k in mine:
                    leaves[k] = jnp.clip(leaves[k], -e.grad_value, e.grad_value)
            if e.grad_norm is not None and mine:
                norm = jnp.sqrt(sum(jnp.sum(jnp.square(leaves[k])) for k in mine))
                factor = jnp.minimum(1.0, e.grad_norm / jnp.maximum(norm, 1e-12))
                for k in mine:
                    leaves[k] = leaves[k] * factor.astype(leaves[k].dtype)
        return jax.tree.unflatten(treedef, leaves), state

    return optax.GradientTransformation(lambda p: optax.EmptyState(), update)


def _into_box(p: jax.Array, u: jax.Array, lo: float | None, hi: float | None) -> jax.Array:
    """An update u' with p + u' (as `optax.apply_updates` computes it) inside [lo, hi].

    u' = clip(p + u) - p, moved by one float step where rounding of p + u' would still leave the box."""
    target = jnp.clip(p + u, lo, hi)
    v = target - p
    # rounding of p + v can overshoot by one step of v: step back (one step was always enough in tests)
    for _ in range(2):
        q = p + v
        if hi is not None:
            v = jnp.where(q > hi, jnp.nextafter(v, jnp.full_like(v, -jnp.inf)), v)
        if lo is not None:
            v = jnp.where(q < lo, jnp.nextafter(v, jnp.full_like(v, jnp.inf)), v)
    return v


def weight_clip_link(params_shape: Any, entries: Sequence[Any], frozen: Any) -> optax.GradientTransformation | None:
    """The link that keeps each matched, trainable weight in its entry's [weight_min, weight_max], or None."""
    if not any(e.weight_min is not None or e.weight_max is not None for e in entries):
        return None
    index = entry_index(params_shape, entries)

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("train.clip weight ranges need the parameters in the optimizer update")

        def one(u, p, i, f):
            if i < 0 or f:
                return u
            e = entries[i]
            if e.weight_min is None and e.weight_max is None:
                return u
            return _into_box(p, u, e.weight_min, e.weight_max)

        return jax.tree.map(one, updates, params, index, frozen), state

    return optax.GradientTransformation(lambda p: optax.EmptyState(), update)


def describe(entries: Sequence[Any]) -> str:
    """'clip_ranges(N)' for the banner's chain description ('' without entries)."""
    return f"clip_ranges({len(entries)})" if entries else ""
