"""Early stopping as an immutable value: `update(epoch, value)` returns a new value.

It is a pytree of arrays, so the same code runs on the host (tests, per-step loops) and inside a compiled
multi-epoch loop on the device. Semantics follow Keras 3 `EarlyStopping` exactly, plus Lightning's
thresholds:

* Epochs before `start_from_epoch` (0-based) are ignored.
* An epoch *improves* when, for mode min, value < best - min_delta (max: value > best + min_delta).
  Improving epochs record best/best_epoch and reset the wait counter, but only when the value also beats
  `baseline` (if given); otherwise the counter keeps running.
* On a non-improving epoch the counter increases; training stops when it reaches `patience`
  (and the epoch is not the first). So patience=3 stops at the 3rd epoch in a row without improvement.
* `stopping_threshold`: stop as soon as the value is at least that good (<= for min, >= for max).
* `divergence_threshold`: stop as soon as the value is worse than it (> for min, < for max).
* A NaN/inf monitored value stops training.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


def _scalar(value, dtype) -> jax.Array:
    """`jnp.float32(value)` (int32, bool_) without an eager XLA program: one per dtype, compiled or loaded from
    the cache by every process (issue 12). The same array: same dtype, not weakly typed, same value."""
    return jax.device_put(np.asarray(value, dtype))


REASONS = [
    "",
    "patience",
    "stopping_threshold",
    "divergence_threshold",
    "nonfinite_monitor",
    "nonfinite",
    "steps",
    "interrupted",
]


def reason_code(name: str) -> int:
    return REASONS.index(name)


@struct.dataclass
class EarlyStopping:
    """The running state (best, best_epoch, wait, stopped, reason) and the settings. The numeric settings are
    arrays too, so a compiled loop reads them as inputs: changing `patience` or a threshold reuses the compiled
    program. Only the direction and whether a baseline/threshold is given are part of the program."""

    best: jnp.ndarray
    best_epoch: jnp.ndarray
    wait: jnp.ndarray
    stopped: jnp.ndarray
    reason: jnp.ndarray
    patience: jnp.ndarray
    min_delta: jnp.ndarray
    start_from_epoch: jnp.ndarray
    baseline: jnp.ndarray | None = None
    stopping_threshold: jnp.ndarray | None = None
    divergence_threshold: jnp.ndarray | None = None
    sign: float = struct.field(pytree_node=False, default=1.0)  # +1: min, -1: max
    enabled: bool = struct.field(pytree_node=False, default=True)

    @classmethod
    def create(
        cls,
        mode: str = "min",
        patience: int = 0,
        min_delta: float = 0.0,
        baseline: float | None = None,
        start_from_epoch: int = 0,
        stopping_threshold: float | None = None,
        divergence_threshold: float | None = None,
        enabled: bool = True,
    ) -> EarlyStopping:
        sign = 1.0 if mode == "min" else -1.0
        f32 = lambda v: None if v is None else _scalar(v, np.float32)
        return cls(
            best=_scalar(jnp.inf * sign, np.float32),
            best_epoch=_scalar(-1, np.int32),
            wait=_scalar(0, np.int32),
            stopped=_scalar(False, np.bool_),
            reason=_scalar(0, np.int32),
            patience=_scalar(patience, np.int32),
            min_delta=_scalar(abs(min_delta), np.float32),
            start_from_epoch=_scalar(start_from_epoch, np.int32),
            baseline=f32(baseline),
            stopping_threshold=f32(stopping_threshold),
            divergence_threshold=f32(divergence_threshold),
            sign=sign,
            enabled=enabled,
        )

    def _improves(self, value, reference):
        return self.sign * (value - reference) < -self.min_delta

    def update(self, epoch, value) -> tuple[EarlyStopping, jnp.ndarray]:
        """The state after `epoch` (0-based) ended with `value`; also whether it improved."""
        value = jnp.asarray(value, jnp.float32)
        active = (epoch >= self.start_from_epoch) & ~self.stopped
        improved = active & self._improves(value, self.best)
        beats_baseline = True if self.baseline is None else self._improves(value, self.baseline)
        wait = jnp.where(active, self.wait + 1, self.wait)
        wait = jnp.where(improved & beats_baseline, 0, wait)
        best = jnp.where(improved, value, self.best)
        best_epoch = jnp.where(improved, epoch, self.best_epoch)

        reason = jnp.int32(0)
        if self.enabled:
            reason = jnp.where(~improved & (wait >= self.patience) & (epoch > 0), reason_code("patience"), reason)
            if self.divergence_threshold is not None:
                reason = jnp.where(
                    self.sign * (value - self.divergence_threshold) > 0, reason_code("divergence_threshold"), reason
                )
            if self.stopping_threshold is not None:
                reason = jnp.where(
                    self.sign * (value - self.stopping_threshold) <= 0, reason_code("stopping_threshold"), reason
                )
            reason = jnp.where(~jnp.isfinite(value), reason_code("nonfinite_monitor"), reason)
        reason = jnp.where(active, reason, 0)
        stopped = self.stopped | (reason > 0)
        # flax's `replace` is dataclasses.replace, which type checkers know (flax adds `replace` at runtime)
        return dataclasses.replace(
            self,
            best=best,
            best_epoch=best_epoch,
            wait=wait,
            stopped=stopped,
            reason=jnp.where(self.stopped, self.reason, reason),
        ), improved
