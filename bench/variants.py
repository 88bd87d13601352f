"""Measurement-only variants of nnctl for the bench (`python -m bench --variants`), each in its own process.

* `nnctl-nometrics`: the workload without `train.metrics` (no accuracy sums, no confusion matrix);
* `nnctl-bare`: records off: no metrics, and, patched in the measuring process only, no finiteness guard
  (every proposed step is kept; no `isfinite`, no conditional update) and no gradient norm. What nnctl
  costs per step beyond the hand-written loop is then (nnctl - nnctl-bare) + the rest;
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

    from nnctl.engine import loop
    from nnctl.engine import step as nstep
    from nnctl.engine.state import TrainState
    from nnctl.objectives import supervised

    def commit(state, proposed, counters, loss, gnorm, clipped, max_steps, halt_on_nonfinite) -> Any:
        c = counters.count(jnp.bool_(True), jnp.bool_(False), jnp.float32(0), jnp.float32(0))
        return (proposed() if callable(proposed) else proposed), c, jnp.bool_(True)

    def deferred_update(tx, trainable, state, loss, grads, model_state) -> Any:
        def proposed() -> TrainState:
            params, opt = nstep.optimizer_step(tx, state.opt_state, state.params, loss, grads)
            return TrainState(params=params, model_state=model_state, opt_state=opt, step=state.step + 1)

        return proposed, grads, jnp.float32(0)

    loop.commit = commit  # type: ignore[assignment]
    supervised.deferred_update = deferred_update  # type: ignore[assignment]
