"""The loop's state as typed pytrees: what the compiled loop carries from one epoch to the next."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from nnctl.early_stopping import EarlyStopping


def tree_where(cond: jax.Array, a: Any, b: Any) -> Any:
    """`a` where `cond` else `b`, leaf by leaf (two trees of the same structure)."""
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)


@struct.dataclass
class TrainState:
    """Variables, optimizer state and the optimizer-step counter."""

    params: Any
    model_state: Any  # non-trainable collections, e.g. batch_stats
    opt_state: Any
    step: jax.Array

    def weights(self) -> dict:
        """The weights a run directory stores: {"params", "model_state"}."""
        return {"params": self.params, "model_state": self.model_state}


@struct.dataclass
class Counters:
    """Per-epoch bookkeeping of the training steps, packed in one float32[7] array that a step updates with one
    fused operation (six scalars were six XLA:CPU kernels per step, issue 12):

    * [0:4] the gradient norms of the steps taken, how many of them were clipped, the steps taken, the steps
      skipped;
    * [4:7] the step of the epoch's first non-finite loss or gradient (-1: none), as step // 2^20 and
      step % 2^20 (both exact in float32, for every int32 step), and what it was (1: loss, 2: gradients)."""

    packed: jax.Array

    @classmethod
    def zero(cls) -> Counters:
        return cls(packed=jnp.array([0, 0, 0, 0, -1, _LOW - 1, 0], jnp.float32))  # step -1: none

    grad_norm = property(lambda self: self.packed[0])
    clipped = property(lambda self: self.packed[1])
    steps = property(lambda self: self.packed[2])
    skipped = property(lambda self: self.packed[3])
    bad_what = property(lambda self: self.packed[6].astype(jnp.int32))

    @property
    def bad_step(self) -> jax.Array:
        return self.packed[4].astype(jnp.int32) * _LOW + self.packed[5].astype(jnp.int32)

    def count(self, ok: jax.Array, bad: jax.Array, gnorm: jax.Array, clipped: jax.Array) -> Counters:
        """One step: taken (`ok`: its gradient norm and clip flag summed), skipped (`bad`), or neither."""
        inc = jnp.stack([jnp.where(ok, gnorm, 0.0), jnp.where(ok, clipped, 0.0), ok, bad, 0, 0, 0])
        return Counters(packed=self.packed + inc.astype(jnp.float32))

    def first(self, now: jax.Array, step: jax.Array, what: jax.Array) -> Counters:
        """Note `step` and `what` when `now` is the epoch's first non-finite step (an elementwise select over
        the whole array, so that XLA fuses it with `count`)."""
        step = jnp.asarray(step, jnp.int32)
        noted = jnp.concatenate([jnp.zeros(4), jnp.stack([step // _LOW, step % _LOW, what])]).astype(jnp.float32)
        return Counters(packed=jnp.where(now & (jnp.arange(7) >= 4), noted, self.packed))


_LOW = 1 << 20  # Counters' two parts of a step: each below 2^24, so exact in float32


@struct.dataclass
class NonFinite:
    """The first non-finite step of a run: its step (-1: none), what was non-finite (1 loss, 2 gradients) and
    its epoch, packed in one int32[3] array so the compiled loop updates it with one fused operation."""

    packed: jax.Array

    @classmethod
    def none(cls) -> NonFinite:
        return cls(packed=jnp.array([-1, 0, -1], jnp.int32))

    @classmethod
    def at(cls, step: jax.Array, what: jax.Array, epoch: jax.Array) -> NonFinite:
        return cls(packed=jnp.stack([step, what, epoch]).astype(jnp.int32))

    @property
    def step(self) -> jax.Array:
        return self.packed[0]

    @property
    def what(self) -> jax.Array:
        return self.packed[1]

    @property
    def epoch(self) -> jax.Array:
        return self.packed[2]

    def seen(self) -> jax.Array:
        return self.step >= 0

    def quantity(self) -> str:
        """Host side: 'loss' or 'gradients'."""
        return {1: "loss", 2: "gradients"}.get(int(self.what), "loss")


@struct.dataclass
class Carry:
    """Everything a compiled multi-epoch call reads and returns (and a checkpoint stores)."""

    state: TrainState
    es: EarlyStopping
    best: dict  # weights of the best epoch so far (early-stopping monitor)
    good: dict  # weights at the end of the last epoch without a non-finite step
    stopped: jax.Array
    reason: jax.Array  # early_stopping.REASONS index
    bad: NonFinite
    epoch: jax.Array  # epochs completed

    @classmethod
    def create(cls, state: TrainState, es: EarlyStopping) -> Carry:
        snap = state.weights()
        return cls(
            state=state,
            es=es,
            best=snap,
            good=snap,
            stopped=jnp.bool_(False),
            reason=jnp.int32(0),
            bad=NonFinite.none(),
            epoch=jnp.int32(0),
        )
