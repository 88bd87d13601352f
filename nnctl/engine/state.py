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
    """Per-epoch bookkeeping of the training steps, packed so that a step updates it with two fused operations
    (one per array; six scalars were six XLA:CPU kernels per step, issue 12):

    * `sums`, float32[4]: the gradient norms of the steps taken, how many of them were clipped, the steps
      taken, the steps skipped;
    * `first_bad`, int32[2]: the step of the epoch's first non-finite loss or gradient (-1: none) and what it
      was (1: loss, 2: gradients)."""

    sums: jax.Array
    first_bad: jax.Array

    @classmethod
    def zero(cls) -> Counters:
        return cls(sums=jnp.zeros(4, jnp.float32), first_bad=jnp.array([-1, 0], jnp.int32))

    grad_norm = property(lambda self: self.sums[0])
    clipped = property(lambda self: self.sums[1])
    steps = property(lambda self: self.sums[2])
    skipped = property(lambda self: self.sums[3])
    bad_step = property(lambda self: self.first_bad[0])
    bad_what = property(lambda self: self.first_bad[1])

    def count(self, ok: jax.Array, bad: jax.Array, gnorm: jax.Array, clipped: jax.Array) -> Counters:
        """One step: taken (`ok`: its gradient norm and clip flag summed), skipped (`bad`), or neither."""
        inc = jnp.stack([jnp.where(ok, gnorm, 0.0), jnp.where(ok, clipped, 0.0), ok, bad]).astype(jnp.float32)
        return Counters(sums=self.sums + inc, first_bad=self.first_bad)

    def first(self, now: jax.Array, step: jax.Array, what: jax.Array) -> Counters:
        """Note `step` and `what` when `now` is the epoch's first non-finite step."""
        return Counters(
            sums=self.sums, first_bad=jnp.where(now, jnp.stack([step, what]).astype(jnp.int32), self.first_bad)
        )


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
