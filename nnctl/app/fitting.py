"""The host driver: a short `fit` over three strategies, all running the same `Loop` functions.

* fused (`fuse: epochs`, data on the device): one compiled call runs several epochs (`Loop.chunk`), sized
  from the measured epoch time to ~`target_chunk_s`, never past the next checkpoint epoch; the next call is
  dispatched before the previous call's records are read.
* host-driven (`fuse: steps` or `data_placement: stream`): one jitted call per step, or per window of streamed
  batches, then one for the end of the epoch.

How many epochs a call runs never changes a number: each epoch's randomness comes from (seed, epoch) and the
epoch body is the same program, so an interrupted and resumed run ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnctl.app.builder import Built
from nnctl.app.transfer import start_from
from nnctl.data.stream import windows
from nnctl.early_stopping import REASONS
from nnctl.engine.compiled import (
    HostFns,
    Records,
    host_records,
    rows_of,
    steps_fns,
    stream_evaluate,
    stream_fns,
    to_device,
)
from nnctl.engine.state import Carry
from nnctl.jaxcfg import CacheCount, cache_count, configure

CAPACITY = 4096  # epochs one fused call can record: fixed, so the epoch count never changes a program


@dataclass
class FitResult:
    carry: Carry
    records: Sequence[dict]  # every epoch's record (`Records`: dicts built from columns when first read)
    compile_s: float
    train_s: float
    status: str  # finished | stopped_early | failed | interrupted
    reason: str
    weights: dict
    checkpoint: Path | None = None  # the checkpoint written by this session, if any
    transfer: dict | None = None  # model.init_from: what was copied, skipped, new
    cache: CacheCount | None = None  # this session's compilations: asked of the persistent cache, served by it
    compile_cpu_s: float = 0.0  # CPU seconds of this process (all threads) while compiling, this session only
    train_cpu_s: float = 0.0  # CPU seconds of this process (all threads) while training, this session only


class StopFlag:
    """Set by SIGINT/SIGTERM: the loop finishes the call in flight, then saves and stops."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        self.signum = signum


@dataclass
class Resume:
    """Where a resumed run starts: the restored carry, the records before it and the time spent so far."""

    carry: Carry
    records: list
    compile_s: float
    train_s: float
    epoch: int


@dataclass
class _Run:
    """The mutable host-side state of one fit: records, clocks, checkpoints."""

    b: Built
    on_epoch: Callable[[dict], None] | None
    on_records: Callable[[dict], None] | None
    stop: StopFlag
    ckpt: Any
    records: Records = field(default_factory=Records)
    compile_s: float = 0.0
    compile_cpu_s: float = 0.0  # process CPU time over the same intervals as compile_s (this session)
    train_s: float = 0.0
    train_cpu_s: float = 0.0  # process CPU time over the same intervals as train_s (this session)
    saved_epoch: int = 0
    saved_path: Path | None = None
    fresh: int = 0  # records before this session (a resumed run's)
    dead: int = 0  # epochs in a row whose every step was skipped (on_nonfinite: skip_step)

    def emit(self, cols: dict, seconds: float) -> int:
        """The records of one call (`host_records` columns, epochs counted from 0): each gets its 1-based
        `epoch` and its share of `seconds` (`time`) and joins `records`; `on_records` gets the call's columns,
        then `on_epoch` each record, in order. Dicts are built only for `on_epoch` or when `records` is read.
        Returns how many."""
        n = len(cols["epoch"])
        share = seconds / max(n, 1)
        cols = {**cols, "epoch": cols["epoch"] + 1}
        if self.on_records is not None:
            self.on_records({**cols, "time": np.full(n, share)})
        if self.on_epoch is None:
            self.records.add_columns(cols, time=share)
        else:
            recs = rows_of(cols, {"time": share})
            self.records.extend(recs)
            for r in recs:
                self.on_epoch(r)
        # epochs at the end of this call whose every step was skipped (loss not finite), counted column-wise
        skipped = cols.get("skipped_steps")
        dead = np.zeros(n, bool) if skipped is None else (skipped > 0) & ~np.isfinite(cols["train/loss"])
        live = np.flatnonzero(~dead)
        tail = n - (int(live[-1]) + 1 if live.size else 0)
        self.dead = self.dead + tail if tail == n else tail
        return n

    def halted(self) -> bool:
        """A stop signal arrived, or too many epochs in a row skipped every step (the run is dead)."""
        return self.stop.signum is not None or self.dead >= self.b.loaded.spec.train.max_skipped_epochs

    def save(self, carry: Carry, force: bool = False) -> None:
        e = int(carry.epoch)
        if self.ckpt is None or (e == self.saved_epoch and not force) or not (force or self.ckpt.due(e)):
            return
        self.saved_path = self.ckpt.save(
            carry, {"compile_seconds": round(self.compile_s, 4), "train_seconds": round(self.train_s, 4)}
        )
        self.saved_epoch = e

    def first_call(self) -> bool:
        return len(self.records) == self.fresh


def fit(
    b: Built,
    on_epoch: Callable[[dict], None] | None = None,
    stop: StopFlag | None = None,
    target_chunk_s: float = 0.25,
    start: Resume | None = None,
    ckpt: Any = None,
    on_records: Callable[[dict], None] | None = None,
) -> FitResult:
    """Train from the spec's initial weights, or from `start` (a restored checkpoint).

    Args:
        b: the built spec (nnctl.app.builder.build).
        on_epoch: called with each epoch's record (a dict), in order.
        on_records: called first with each call's records as columns (key -> array, a row per epoch).
        stop: set by a signal handler; the fit stops after the call in flight and checkpoints.
        target_chunk_s: seconds a fused call aims at (epochs per call are sized from it).
        start: a restored checkpoint to continue from.
        ckpt: a `checkpoint.Checkpointer`, called at its epochs and when a stop signal arrives.
    Returns:
        The final carry, every epoch's record, times, status and stop reason, and the weights to keep.
    """
    configure()  # persistent compilation cache
    cache0 = cache_count()
    run = _Run(b, on_epoch, on_records, stop or StopFlag(), ckpt)
    place = b.loop.placement
    put = place.put if place else (lambda tree: jax.tree.map(jnp.asarray, tree))
    t0, c0 = time.perf_counter(), time.process_time()
    transfer = None
    if start is None:
        make = b.lifted()
        start_fn = _jit(b, lambda hp, shape: make(hp).start(shape), static_argnums=1)
        carry = start_fn(b.hp, tuple(b.data.input_shape))  # init + carry: one program
        if b.loaded.spec.model.init_from:
            carry, transfer = start_from(carry, b.loaded)
        run.compile_s = time.perf_counter() - t0
        run.compile_cpu_s = time.process_time() - c0
    else:
        carry = put(start.carry)
        run.records, run.fresh = Records(start.records), len(start.records)
        run.compile_s, run.train_s = start.compile_s + time.perf_counter() - t0, start.train_s
        run.compile_cpu_s = time.process_time() - c0
    run.saved_epoch = int(carry.epoch)
    if b.fuse == "epochs" and b.placement != "stream":
        carry = _fused(run, carry, put, target_chunk_s)
    else:
        carry = _host_driven(run, carry, put)
    reason = REASONS[int(carry.reason)]
    if run.halted() and run.stop.signum is None and not bool(carry.stopped):
        status, reason = "failed", "all_skipped"
    elif run.stop.signum is not None and not bool(carry.stopped):
        status, reason = "interrupted", "interrupted"
        run.save(carry, force=True)
    else:
        early = reason not in ("", "steps")  # train.steps reached is the planned end, not an early stop
        status = "failed" if reason == "nonfinite" else ("stopped_early" if early else "finished")
    return FitResult(
        carry,
        run.records,
        run.compile_s,
        run.train_s,
        status,
        reason,
        b.loop.final_weights(carry),
        run.saved_path,
        transfer,
        cache_count().since(cache0),
        run.compile_cpu_s,
        run.train_cpu_s,
    )


def _jit(b: Built, f: Callable, **kw: Any) -> jax.stages.Wrapped:
    """jax.jit, with replicated outputs when training data-parallel."""
    place = b.loop.placement
    return jax.jit(f, out_shardings=place.replicated, **kw) if place else jax.jit(f, **kw)


def _fused(run: _Run, carry: Carry, put: Callable, target_chunk_s: float) -> Carry:
    """Several epochs per compiled call; calls pipelined (the next dispatched before the last one's records
    are read). The carry is donated, so a call ending on a checkpoint epoch is waited for and saved first;
    after a stop, a call already dispatched runs no epochs (its loop condition reads the stopped flag)."""
    b, ckpt = run.b, run.ckpt
    every = ckpt.every if ckpt is not None else None
    data = b.data
    send = put if b.loop.placement else to_device  # no eager program per split
    train_data = send((data.x_train, data.y_train))
    val_data = send((data.x_val, data.y_val)) if data.x_val is not None else None
    cap = CAPACITY  # one program serves every chunk size: the epoch limit is an argument
    make = b.lifted()
    t, c = time.perf_counter(), time.process_time()
    compiled = (
        _jit(b, lambda hp, c, tr, va, lim: make(hp).chunk(c, tr, va, lim, cap), donate_argnums=1)
        .lower(b.hp, carry, train_data, val_data, jax.device_put(np.int32(b.epochs)))
        .compile()
    )
    run.compile_s += time.perf_counter() - t
    run.compile_cpu_s += time.process_time() - c
    k, e_next, stopped = 1, int(carry.epoch), bool(carry.stopped)
    inflight = None  # (records on the device, first epoch, epoch limit) of the call running
    t_mark, c_mark = time.perf_counter(), time.process_time()
    while True:
        more = not stopped and e_next < b.epochs and not run.halted()
        if inflight is not None and ckpt is not None and ckpt.due(inflight[2]):
            more = False
        new = None
        if more:
            lim = min(e_next + k, b.epochs if not every else min(b.epochs, (e_next // every + 1) * every))
            carry, recs = compiled(b.hp, carry, train_data, val_data, jax.device_put(np.int32(lim)))
            new, e_next = (recs, e_next, lim), lim
        if inflight is None and new is None:
            return carry
        if inflight is not None:
            cols = host_records(inflight[0])  # waits for that call only
            now, cpu = time.perf_counter(), time.process_time()
            secs, t_mark = now - t_mark, now
            run.train_s += secs
            run.train_cpu_s, c_mark = run.train_cpu_s + cpu - c_mark, cpu
            n = run.emit(cols, secs)
            stopped = stopped or n < inflight[2] - inflight[1]
            if new is None:
                run.save(carry)  # `carry` is that call's result: nothing was dispatched after it
            if n:  # size the next call to ~target_chunk_s
                k = int(min(max(1, target_chunk_s / max(secs / n, 1e-7)), cap))
        inflight = new


def _host_driven(run: _Run, carry: Carry, put: Callable) -> Carry:
    """One jitted call per step (`fuse: steps`) or per window of streamed batches, then the end of the epoch.
    A stop signal is honoured after the call in flight: the partial epoch is dropped and the checkpoint holds
    the state at the start of that epoch."""
    b = run.b
    calls, evaluate, fns = _streamed(run, put) if b.placement == "stream" else _stepped(run, put)
    while int(carry.epoch) < b.epochs and not bool(carry.stopped) and not run.halted():
        t, c = time.perf_counter(), time.process_time()
        epoch = carry.epoch
        snapshot = jax.tree.map(lambda a: np.array(a, copy=True), carry)  # what a mid-epoch signal saves
        idx, mask = fns.perm(epoch)
        state, sums, counters = carry.state, *fns.sums0()
        t_first = c_first = None
        gen = calls(state, sums, counters, epoch, idx, mask)
        for state, sums, counters, last in gen:  # noqa: B007  (the last values are the epoch's result)
            if run.first_call() and t_first is None:  # the session's first call compiles: compile time
                jax.block_until_ready(sums)
                run.compile_s += time.perf_counter() - t
                run.compile_cpu_s += time.process_time() - c
                t_first, c_first = time.perf_counter(), time.process_time()
            if run.stop.signum is not None and not last:
                gen.close()
                return snapshot  # the partial epoch is dropped
        t_end, c_end = time.perf_counter(), time.process_time()
        carry, rec = fns.end(carry, state, sums, counters, evaluate(state), epoch)
        if t_first is not None:  # the session's first epoch end: compiling evaluation and end-of-epoch
            jax.block_until_ready(rec)
            run.compile_s += time.perf_counter() - t_end
            run.compile_cpu_s += time.process_time() - c_end
            t_first += time.perf_counter() - t_end
            c_first = (c_first or 0.0) + time.process_time() - c_end
        cols = host_records(jax.tree.map(lambda a: np.asarray(a)[None], {**rec, "epoch": epoch}))  # no device op
        run.train_s += time.perf_counter() - (t_first if t_first is not None else t)
        run.train_cpu_s += time.process_time() - (c_first if c_first is not None else c)
        run.emit(cols, time.perf_counter() - t)
        run.save(carry)
    return carry


Calls = Callable[..., Generator[tuple, None, None]]


def _stepped(run: _Run, put: Callable) -> tuple[Calls, Callable, HostFns]:
    b = run.b
    loop, fns = b.loop, steps_fns(b.loop, b.lifted(), b.hp)
    train_data = put((b.data.x_train, b.data.y_train))
    val_data = put((b.data.x_val, b.data.y_val)) if b.data.x_val is not None else None

    def calls(state, sums, counters, epoch, idx, mask):
        for i in range(loop.n_batches):
            state, sums, counters = fns.train(state, sums, counters, train_data, idx, mask, epoch, i)
            yield state, sums, counters, i == loop.n_batches - 1

    return calls, lambda state: fns.evaluate(state, val_data) if loop.n_val else None, fns


def _streamed(run: _Run, put: Callable) -> tuple[Calls, Callable, HostFns]:
    b = run.b
    loop, fns, data = b.loop, stream_fns(b.loop, b.lifted(), b.hp), b.data
    place = loop.placement
    put_train = place.put_windows if place else put  # data-parallel: each device gets its slice

    def calls(state, sums, counters, epoch, idx, mask):
        for i0, xs, ys, ms in windows(
            data.x_train, data.y_train, np.asarray(idx), np.asarray(mask), b.window, put_train, b.prefetch
        ):
            state, sums, counters = fns.train(state, sums, counters, xs, ys, ms, epoch, jnp.int32(i0))
            yield state, sums, counters, i0 + len(xs) >= loop.n_batches

    def evaluate(state):
        if not loop.n_val:
            return None
        assert data.x_val is not None and data.y_val is not None  # n_val > 0: there is a validation split
        return stream_evaluate(loop, fns, state, data.x_val, data.y_val, put, b.window, b.prefetch)

    return calls, evaluate, fns
