"""The whole Optax chain of a spec's `train` section: clipping, weight decay, the optimizer (+ schedule link),
the one freezing rule, `param_groups` scales, and the chain's description for the banner.

`build_chain` returns a `Chain`; every model kind builds its optimizer(s) through it, so freezing, groups and
the logged learning rate (with reduce_on_plateau's scale) mean the same everywhere."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax

from nnctl.clipping import describe as describe_clip_ranges
from nnctl.clipping import grad_clip_link, weight_clip_link
from nnctl.optim import build_optimizer, given
from nnctl.trees import path_str


def clip_link(clip: Any):
    """The clipping link for a validated gradient_clipping spec (or None)."""
    if clip is None:
        return None
    if clip.max_value is not None:
        return optax.clip(clip.max_value)
    if clip.per_tensor:
        return _per_tensor_clip(clip.max_norm)
    return optax.clip_by_global_norm(clip.max_norm)


def _per_tensor_clip(max_norm: float):
    def update(updates, state, params=None):
        def clip(g):
            n = jnp.sqrt(jnp.sum(g * g))
            return g * jnp.minimum(1.0, max_norm / jnp.maximum(n, 1e-12))

        return jax.tree.map(clip, updates), state

    return optax.GradientTransformation(lambda p: optax.EmptyState(), update)


def clipped_flag(clip: Any, grads) -> jax.Array:
    """1.0 when this step's gradients were clipped (for the logged clip fraction)."""
    if clip is None:
        return jnp.float32(0)
    leaves = jax.tree.leaves(grads)
    if clip.max_value is not None:
        return jnp.any(jnp.stack([jnp.any(jnp.abs(g) > clip.max_value) for g in leaves])).astype(jnp.float32)
    if clip.per_tensor:
        return jnp.any(jnp.stack([jnp.sqrt(jnp.sum(g * g)) > clip.max_norm for g in leaves])).astype(jnp.float32)
    return (optax.tree.norm(grads) > clip.max_norm).astype(jnp.float32)


# ------------------------------------------------------------------------------------------------ freezing


def is_frozen(path: str, globs: Sequence[str], frozen_layers: Sequence[str]) -> bool:
    """The one freezing rule: a parameter path matched by a `train.freeze` glob, or inside a layer with
    `trainable: false` (its path, or a path below it)."""
    return any(fnmatch.fnmatchcase(path, g) for g in globs) or any(
        path == n or path.startswith(f"{n}/") for n in frozen_layers
    )


def frozen_mask(params: Any, globs: Sequence[str], frozen_layers: Sequence[str]) -> Any:
    """Tree of booleans: True for parameters that must not change."""
    return jax.tree_util.tree_map_with_path(lambda p, _: is_frozen(path_str(p), globs, frozen_layers), params)


def scale_by_groups(params_shape: Any, groups: Sequence[Any]) -> optax.GradientTransformation:
    """Multiply each parameter's update by the `learning_rate_scale` of the first group whose glob matches."""

    def scale_of(path, _):
        p = path_str(path)
        return next((g.learning_rate_scale for g in groups if fnmatch.fnmatchcase(p, g.params)), 1.0)

    scales = jax.tree_util.tree_map_with_path(scale_of, params_shape)

    def update(updates, state, params=None):
        return jax.tree.map(lambda u, s: u * s, updates, scales), state

    return optax.GradientTransformation(lambda p: optax.EmptyState(), update)


@dataclass(frozen=True)
class Chain:
    """A built optimizer chain: the transformation, the frozen mask, the learning rate (or schedule) to log,
    the reduce_on_plateau scale reader (or None) and the chain's description for the banner."""

    tx: optax.GradientTransformation
    frozen: Any
    lr: Any
    description: str
    plateau_scale: Callable[[Any], jax.Array] | None = None

    @property
    def trainable(self) -> Any:
        return jax.tree.map(lambda f: not f, self.frozen)


def _describe(train: Any, frozen: bool, groups: int) -> str:
    parts = [describe_clip_ranges(train.clip)] if train.clip else []
    c = train.gradient_clipping
    if c:
        parts.append(
            f"clip(max_value={c.max_value})"
            if c.max_value
            else f"clip_{'per_tensor' if c.per_tensor else 'global'}_norm({c.max_norm})"
        )
    if given(train.weight_decay):
        parts.append(f"weight_decay({train.weight_decay})")
    parts.append(train.optimizer.type)
    lr = train.optimizer.learning_rate
    if hasattr(lr, "type"):
        parts[-1] += f"[{lr.type}]"
    if groups:
        parts.append(f"param_groups({groups})")
    if frozen:
        parts.append("freeze")
    return " -> ".join(parts)


def _plateau_states(opt_state: Any) -> list:
    """The reduce_on_plateau states inside an optimizer state (found by type: a parameter may be named scale)."""
    is_plateau = lambda x: isinstance(x, optax.contrib.ReduceLROnPlateauState)
    return [x for x in jax.tree_util.tree_leaves(opt_state, is_leaf=is_plateau) if is_plateau(x)]


def _plateau_reader(tx: optax.GradientTransformation, params_shape: Any) -> Callable[[Any], jax.Array] | None:
    """The function giving reduce_on_plateau's current scale from an optimizer state, or None without one."""
    if not _plateau_states(jax.eval_shape(tx.init, params_shape)):
        return None
    return lambda s: _plateau_states(s)[0].scale


def build_chain(
    train: Any,
    params_shape: Any,
    total_steps: int,
    steps_per_epoch: int,
    frozen_layers: Sequence[str],
    groups: Sequence[Any] = (),
) -> Chain:
    """The whole Optax transformation of a spec's `train` section (or of one network's optimizer):
    per-layer gradient clips -> clip -> weight decay -> optimizer (+ schedule link), frozen parameters set to
    zero, the `param_groups` learning-rate scales, then the per-layer weight clips (`train.clip`)."""
    grad_clips = grad_clip_link(params_shape, train.clip)
    links = [link for link in [grad_clips, clip_link(train.gradient_clipping)] if link is not None]
    opt_links, lr = build_optimizer(train.optimizer, total_steps, steps_per_epoch, train.weight_decay)
    tx = optax.chain(*links, *opt_links)
    mask = frozen_mask(params_shape, list(train.freeze), frozen_layers)
    any_frozen = any(jax.tree.leaves(mask))
    if any_frozen:
        labels = jax.tree.map(lambda f: "frozen" if f else "train", mask)
        tx = optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, labels)
    if groups:
        tx = optax.chain(tx, scale_by_groups(params_shape, groups))
    weight_clips = weight_clip_link(params_shape, train.clip, mask)
    if weight_clips is not None:
        tx = optax.chain(tx, weight_clips)
    return Chain(tx, mask, lr, _describe(train, any_frozen, len(groups)), _plateau_reader(tx, params_shape))


class OptimizedByChain:
    """Mixin for objectives with one optimizer chain in a `chain` field: its transformation, trainable mask,
    logged learning rate and description."""

    chain: Chain

    @property
    def tx(self) -> optax.GradientTransformation:
        return self.chain.tx

    @property
    def trainable(self) -> Any:
        """Tree of bools (False = frozen), same structure as params."""
        return self.chain.trainable

    @property
    def lr(self) -> Any:
        """Float or schedule fn, for logging."""
        return self.chain.lr

    def describe(self) -> str:
        return self.chain.description
