"""Measurement-only variants of nnctl for the bench (`python -m bench --variants`), each in its own process.

* `nnctl-nometrics`: the workload without `train.metrics` (no accuracy sums, no confusion matrix);
* `nnctl-bare`: records off: no metrics, and, patched in the measuring process only, no finiteness guard
  (every proposed step is kept; no `isfinite`, no select over the whole training state) and no gradient
  norm. What nnctl costs per step beyond the hand-written loop is then (nnctl - nnctl-bare) + the rest;
* `nnctl-oldpool`: max pooling with autodiff's gradient (the tie-counting rule) instead of `window_max`'s;
* `nnctl-oldproj`: the recurrent input projection batch-major (one einsum, then time-major gates) instead of
  time-major (`project`).

The patches replace module attributes the engine looks up at trace time; nothing in nnctl is changed.
"""

from __future__ import annotations

from typing import Any

NNCTL_VARIANTS = ("nnctl-nometrics", "nnctl-bare", "nnctl-oldpool", "nnctl-oldproj")


def overrides(impl: str) -> tuple[str, ...]:
    return ("train.metrics=[]",) if impl in ("nnctl-nometrics", "nnctl-bare") else ()


def patch(impl: str) -> None:
    """Apply the variant's patches in this process (before the model is built and traced)."""
    if impl == "nnctl-bare":
        _no_guard_no_gnorm()
    elif impl == "nnctl-oldpool":
        from nnctl.layers import pool

        def autodiff_max(x, k):
            w, axes = pool._windows(x, k)
            return w.max(axis=axes)

        pool.window_max = autodiff_max  # type: ignore[assignment]
    elif impl == "nnctl-oldproj":
        import jax.numpy as jnp

        from nnctl.layers import recurrent

        def batch_major(x, w, b):
            d = w.shape[0]
            xd = jnp.stack([x, x[:, ::-1]]) if d == 2 else x[None]
            xp = jnp.einsum("dbtf,dfg->tdbg", xd, w)
            return xp if b is None else xp + b.reshape(1, d, 1, -1)

        recurrent.project = batch_major  # type: ignore[assignment]


def _no_guard_no_gnorm() -> None:
    import jax.numpy as jnp
    import optax

    from nnctl.engine import loop
    from nnctl.engine.state import Counters
    from nnctl.objectives import supervised

    def commit(state, proposed, counters, loss, gnorm, clipped, max_steps, halt_on_nonfinite) -> Any:
        c = Counters(
            grad_norm=counters.grad_norm,
            clipped=counters.clipped,
            steps=counters.steps + 1,
            skipped=counters.skipped,
            bad_step=counters.bad_step,
            bad_what=counters.bad_what,
        )
        return proposed, c, jnp.bool_(True)

    def apply_update(tx, trainable, opt_state, params, loss, grads) -> Any:
        updates, new_opt = tx.update(grads, opt_state, params, value=loss)
        return optax.apply_updates(params, updates), new_opt, jnp.float32(0), grads

    loop.commit = commit  # type: ignore[assignment]
    supervised.apply_update = apply_update  # type: ignore[assignment]
