"""The training loop as pure functions over a `Carry`.

* `Loop.train_epoch` runs a whole epoch (on-device permutation, padded last batch with a mask, every step)
  inside one `lax.scan`; `Loop.chunk` runs several epochs, the validation pass and the early-stopping test in
  one compiled call. Nothing syncs with the host per step; the host reads records once per call.
* `train_step` is the one step every strategy calls (the epoch scan, one step per call, streamed windows,
  `nnctl time`): the objective proposes an update, `step.commit` keeps it or skips it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import jax
import jax.numpy as jnp

from nnctl.early_stopping import EarlyStopping, reason_code
from nnctl.engine.state import Carry, Counters, NonFinite, TrainState, tree_where
from nnctl.engine.step import commit, conditional_update

RECORD_BLOCK = 64  # epochs whose records are gathered in a small buffer before joining the call's buffer


@dataclass(frozen=True)
class Proposal:
    """One objective step before the finite check: the new state (or a function making it, run only for a kept
    step: `step.deferred_update`), its loss, gradient norm, whether the gradients were clipped, and whatever the
    objective's `add` needs to sum the batch's metrics."""

    state: TrainState | Callable[[], TrainState]
    loss: jax.Array
    gnorm: jax.Array
    clipped: jax.Array
    values: Any

    def proposed(self) -> TrainState:
        """The proposed state itself (the update run, when it is a function)."""
        return self.state() if callable(self.state) else self.state


class Objective(Protocol):
    """What the loop needs of a model kind's objective (nnctl.objectives)."""

    lr: Any  # float or schedule, for the logged learning rate
    chain: Any  # nnctl.chain.Chain whose learning rate (and reduce_on_plateau scale) is logged

    def describe(self) -> str: ...
    def init(self, key: jax.Array, input_shape: tuple) -> TrainState: ...
    def propose(self, state: TrainState, x: jax.Array, y: jax.Array, mask: jax.Array, key: jax.Array) -> Proposal: ...
    def add(self, sums: dict, values: Any, mask: jax.Array, weight: jax.Array) -> dict: ...
    def zero_sums(self, out_shape: tuple, y_dtype: Any) -> dict: ...
    def eval_step(self, state: TrainState, sums: dict, x: jax.Array, y: jax.Array, mask: jax.Array) -> dict: ...
    def finalize(self, sums: dict) -> dict: ...
    def predict(self, params: Any, model_state: dict, x: jax.Array) -> jax.Array: ...


@dataclass(frozen=True, eq=False, kw_only=True)
class Loop:
    """Static facts the compiled loop closes over."""

    obj: Any  # an Objective
    n_train: int
    batch_size: int
    n_val: int
    eval_batch: int
    shuffle: bool
    max_steps: int
    monitor: tuple[str, str]  # (split, metric)
    es: EarlyStopping
    restore_best: bool
    halt_on_nonfinite: bool
    out_shape: tuple
    y_dtype: Any
    seed: int
    placement: Any = None  # nnctl.parallel.Placement when data-parallel over several devices
    plateau_scale: Callable[[Any], jax.Array] | None = None  # reduce_on_plateau's scale from the optimizer state
    probe: Any = None  # nnctl.engine.diagnostics.Probe under train.diagnostics: per-layer records each epoch

    @property
    def n_batches(self) -> int:
        return math.ceil(self.n_train / self.batch_size)

    def epoch_key(self, epoch: jax.Array) -> jax.Array:
        return jax.random.fold_in(jax.random.fold_in(jax.random.key(self.seed), 1), epoch)

    def batch_index(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(n_batches, batch) indices of one epoch and the mask of real (unpadded) examples."""
        n, b, nb = self.n_train, self.batch_size, self.n_batches
        perm = jax.random.permutation(jax.random.fold_in(key, 0), n) if self.shuffle else jnp.arange(n)
        pad = nb * b - n
        idx = jnp.concatenate([perm, perm[:pad]]) if pad else perm
        mask = (jnp.arange(nb * b) < n).astype(jnp.float32)
        return idx.reshape(nb, b), mask.reshape(nb, b)

    # --- one step, one epoch -------------------------------------------------------------------------------
    def train_step(
        self,
        state: TrainState,
        sums: dict,
        counters: Counters,
        x: jax.Array,
        y: jax.Array,
        mask: jax.Array,
        epoch_key: jax.Array,
        i: jax.Array,
    ) -> tuple[TrainState, dict, Counters]:
        """Batch `i` of an epoch whose key is `epoch_key` (`Loop.epoch_key(epoch)`, computed once per epoch or
        call by the caller): its RNG is fold_in(epoch_key, i + 1) in every strategy."""
        if self.placement is not None:  # data-parallel: shard the batch over the device mesh
            x, y, mask = self.placement.constrain((x, y, mask))
        key = jax.random.fold_in(epoch_key, i + 1)
        p = self.obj.propose(state, x, y, mask, key)
        state, counters, ok = commit(
            state, p.state, counters, p.loss, p.gnorm, p.clipped, self.max_steps, self.halt_on_nonfinite
        )
        return state, self.obj.add(sums, p.values, mask, ok.astype(jnp.float32)), counters

    def train_sums0(self) -> tuple[dict, Counters]:
        return self.obj.zero_sums(self.out_shape, self.y_dtype), Counters.zero()

    def eval_sums0(self) -> dict:
        return self.obj.zero_sums(self.out_shape, self.y_dtype)

    def train_epoch(self, state: TrainState, data: tuple, epoch: jax.Array) -> tuple[TrainState, dict, Counters]:
        key = self.epoch_key(epoch)
        idx, mask = self.batch_index(key)
        x, y = data

        def body(carry, inp):
            st, sums, counters = carry
            i, m, b = inp
            return self.train_step(st, sums, counters, x[i], y[i], m, key, b), None

        sums, counters = self.train_sums0()
        (state, sums, counters), _ = jax.lax.scan(
            body, (state, sums, counters), (idx, mask, jnp.arange(self.n_batches))
        )
        return state, sums, counters

    def evaluate(self, state: TrainState, data: tuple, n: int) -> dict:
        """Loss and metric sums over a whole split, in fixed-size masked batches."""
        x, y = data
        b = min(self.eval_batch, n)
        nb = math.ceil(n / b)
        idx = jnp.arange(nb * b) % n
        mask = (jnp.arange(nb * b) < n).astype(jnp.float32)

        def body(sums, inp):
            i, m = inp
            return self.obj.eval_step(state, sums, x[i], y[i], m), None

        sums, _ = jax.lax.scan(body, self.eval_sums0(), (idx.reshape(nb, b), mask.reshape(nb, b)))
        return sums

    # --- end of epoch: metrics, early stopping, best/good weights -------------------------------------------
    def epoch_record(self, state: TrainState, sums: dict, counters: Counters, val_sums: dict | None) -> dict:
        none = counters.steps == 0  # every step skipped (on_nonfinite: skip_step): averages over nothing
        record = {f"train/{k}": jnp.where(none, jnp.nan, v) for k, v in self.obj.finalize(sums).items()}
        if val_sums is not None:
            record.update({f"val/{k}": v for k, v in self.obj.finalize(val_sums).items()})
        steps = jnp.maximum(counters.steps, 1.0)
        record["grad_norm"] = jnp.where(none, jnp.nan, counters.grad_norm / steps)
        record["clip_fraction"] = jnp.where(none, jnp.nan, counters.clipped / steps)
        record["skipped_steps"] = counters.skipped
        record["lr"] = self.learning_rate(state)
        record["step"] = state.step
        return record

    def end_epoch(
        self, carry: Carry, state: TrainState, sums: dict, counters: Counters, val_sums: dict | None, epoch: jax.Array
    ) -> tuple[Carry, dict]:
        record = self.epoch_record(state, sums, counters, val_sums)
        if self.probe is not None:
            record.update(self.probe.measure(self.obj, state))
        split, metric = self.monitor
        value = record.get(f"{split}/{metric}", record["train/loss"])
        es, improved = carry.es.update(epoch, value)
        halted = (counters.bad_step >= 0) & self.halt_on_nonfinite
        reason = jnp.where(halted, reason_code("nonfinite"), es.reason)
        reason = jnp.where((reason == 0) & (state.step >= self.max_steps), reason_code("steps"), reason)
        here = NonFinite.at(counters.bad_step, counters.bad_what, epoch)
        new = Carry(
            state=state,
            es=es,
            best=(  # on CPU a copy only when improved (step.conditional_update)
                jax.lax.cond(improved, state.weights, lambda: carry.best)
                if conditional_update()
                else tree_where(improved, state.weights(), carry.best)
            ),
            good=tree_where(counters.bad_step < 0, state.weights(), carry.good),
            stopped=carry.stopped | (reason > 0),
            reason=jnp.where(carry.stopped, carry.reason, reason),
            bad=tree_where(carry.bad.seen(), carry.bad, here),
            epoch=epoch + 1,
        )
        return new, {**record, "monitor": value, "improved": improved}

    def learning_rate(self, state: TrainState) -> jax.Array:
        lr = self.obj.lr
        value = lr(state.step) if callable(lr) else jnp.float32(lr)
        return value * self.plateau_scale(state.opt_state) if self.plateau_scale else value

    # --- several epochs in one call ------------------------------------------------------------------------
    def one_epoch(self, carry: Carry, train_data: tuple, val_data: tuple | None) -> tuple[Carry, dict]:
        epoch = carry.epoch
        state, sums, counters = self.train_epoch(carry.state, train_data, epoch)
        val_sums = None
        if self.n_val:
            assert val_data is not None  # n_val > 0: the caller passes the validation split
            val_sums = self.evaluate(state, val_data, self.n_val)
        return self.end_epoch(carry, state, sums, counters, val_sums, epoch)

    def record_shape(self, carry: Carry) -> dict:
        """An epoch's record from zero sums: the shapes of `one_epoch`'s record without tracing a training
        epoch (a second trace of the whole step was a third of a cache-hit compile)."""
        sums, counters = self.train_sums0()
        val_sums = self.eval_sums0() if self.n_val else None
        return self.end_epoch(carry, carry.state, sums, counters, val_sums, carry.epoch)[1]

    def chunk(
        self, carry: Carry, train_data: tuple, val_data: tuple | None, limit: jax.Array, k: int
    ) -> tuple[Carry, dict]:
        """Epochs until epoch `limit`, a stop, or `k` of them, in one compiled call.

        `limit` is traced, so one compiled program serves every chunk size up to the static capacity `k`
        (the records buffer); records beyond the epochs run are marked inactive. Two nested while-loops: the
        inner one runs up to `RECORD_BLOCK` epochs into a small buffer, the outer one copies each block into
        the `k`-long buffer (XLA:CPU rewrites a loop-carried buffer on every iteration that writes into it, so
        writing each record straight into the long buffer cost more than a tiny model's epoch).
        """
        template = jax.eval_shape(self.record_shape, carry)
        block = min(RECORD_BLOCK, k)
        nblocks = -(-k // block)
        buf0 = jax.tree.map(lambda s: jnp.zeros((nblocks, block, *s.shape), s.dtype), template)
        small0 = jax.tree.map(lambda s: jnp.zeros((block, *s.shape), s.dtype), template)
        epoch0 = carry.epoch

        def go(c, n):
            return ~c.stopped & (c.epoch < limit) & (n < k)

        def inner_body(s):
            j, n, c, small = s
            c, rec = self.one_epoch(c, train_data, val_data)
            small = jax.tree.map(lambda b, r: jax.lax.dynamic_update_index_in_dim(b, r, j, 0), small, rec)
            return j + 1, n + 1, c, small

        def outer_body(s):
            i, n, c, buf = s
            _, n, c, small = jax.lax.while_loop(
                lambda s: (s[0] < block) & go(s[2], s[1]), inner_body, (jnp.int32(0), n, c, small0)
            )
            buf = jax.tree.map(lambda b, r: jax.lax.dynamic_update_index_in_dim(b, r, i, 0), buf, small)
            return i + 1, n, c, buf

        _, n, carry, buf = jax.lax.while_loop(
            lambda s: go(s[2], s[1]), outer_body, (jnp.int32(0), jnp.int32(0), carry, buf0)
        )
        buf = jax.tree.map(lambda b: b.reshape(nblocks * block, *b.shape[2:])[:k], buf)
        idx = jnp.arange(k, dtype=jnp.int32)
        return carry, {**buf, "active": idx < n, "epoch": epoch0 + idx}

    def start(self, input_shape: tuple) -> Carry:
        """Initial carry (variables, optimizer state, early-stopping value) from the seed: one program."""
        key = jax.random.fold_in(jax.random.key(self.seed), 0)
        return Carry.create(self.obj.init(key, input_shape), self.es)

    def final_weights(self, carry: Carry) -> dict:
        """Weights to keep: the last good ones after a non-finite stop, else the best (restore_best)."""
        if int(carry.reason) == reason_code("nonfinite"):
            return carry.good
        if self.restore_best and int(carry.es.best_epoch) >= 0:
            return carry.best
        return carry.state.weights()
