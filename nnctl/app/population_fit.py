"""The host driver of a population (nnctl.engine.population): P members trained by one compiled program.

Like the fused strategy of `nnctl.app.fitting`: one compiled call runs several epochs of every member (sized
from the measured epoch time to ~`target_chunk_s`), then the host reads the records, emits each member's
epochs in order to its own callback and sizes the next call. A callback that returns True stops its member
(a pruner): the member is marked stopped on the device before the next call, its records end at that epoch,
and it is reported `pruned`. A stop signal ends the population after the call in flight.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnctl.app.builder import Built
from nnctl.app.fitting import CAPACITY, FitResult, StopFlag
from nnctl.app.scoring import result_of_sums
from nnctl.early_stopping import REASONS
from nnctl.engine.compiled import stack_records
from nnctl.engine.population import Population, member, stack
from nnctl.jaxcfg import cache_count, configure

OnEpoch = Callable[[dict], bool]  # a member's epoch record; True stops that member (pruned)


@dataclass
class PopulationFit:
    """Each member's fit (its carry, records, status, reason and kept weights) and which were pruned."""

    results: list[FitResult]
    pruned: list[bool]
    interrupted: bool


def member_data(builts: list[Built]) -> tuple[bool, tuple, tuple | None]:
    """(own data?, train data, validation data): shared when every member has the same split (one seed),
    else stacked with a leading member axis."""
    d0 = builts[0].data
    same = all(b.data is d0 for b in builts)
    if same:
        val = (jnp.asarray(d0.x_val), jnp.asarray(d0.y_val)) if d0.x_val is not None else None
        return False, (jnp.asarray(d0.x_train), jnp.asarray(d0.y_train)), val

    def stacked(name: str) -> jax.Array:
        return jnp.asarray(np.stack([getattr(b.data, name) for b in builts]))

    val = (stacked("x_val"), stacked("y_val")) if d0.x_val is not None else None
    return True, (stacked("x_train"), stacked("y_train")), val


def fit_population(
    builts: list[Built],
    on_epoch: list[OnEpoch],
    stop: StopFlag | None = None,
    target_chunk_s: float = 0.25,
    key: Any = None,
) -> PopulationFit:
    """Train the members (built specs that differ only in runtime inputs and their data split) at once.
    `key`: what identifies the program (nnctl.app.population.signature, member count, shapes); a later
    population with the same key reuses its programs in this process instead of tracing them again."""
    configure()
    cache0 = cache_count()
    stop = stop or StopFlag()
    b0, p = builts[0], len(builts)
    own, train, val = member_data(builts)
    hp = stack([b.hp for b in builts])
    epochs = np.asarray([b.epochs for b in builts], np.int32)
    t0, c0 = time.perf_counter(), time.process_time()
    fns = _PROGRAMS.get(key) if key is not None else None
    if fns is None:
        cap = min(CAPACITY, 1 << max(int(epochs.max()) - 1, 0).bit_length())  # records: the next power of two
        fns = _Programs.make(Population(b0.lifted(), own), b0, cap)
        _remember(key, fns)
    carry = fns.start(hp, tuple(b0.data.input_shape))
    compiled = fns.compiled(hp, carry, train, val, jnp.asarray(epochs))
    cap = fns.cap
    compile_s, compile_cpu = time.perf_counter() - t0, time.process_time() - c0
    records: list[list[dict]] = [[] for _ in builts]
    pruned = [False] * p
    train_s, k, e_next = 0.0, 1, 0
    while e_next < epochs.max() and stop.signum is None and not bool(np.all(np.asarray(carry.stopped))):
        t = time.perf_counter()
        lim = np.minimum(e_next + k, epochs)
        carry, recs = compiled(hp, carry, train, val, jnp.asarray(lim))
        host = jax.device_get(recs)
        secs = time.perf_counter() - t
        train_s += secs
        rows = [stack_records(member(host, i)) for i in range(p)]
        _emit(rows, records, pruned, on_epoch, secs)
        if any(pruned):
            carry = carry.replace(stopped=jnp.asarray(np.asarray(carry.stopped) | np.asarray(pruned)))
        n = max((len(r) for r in rows), default=0)
        k = int(min(max(1, target_chunk_s / max(secs / max(n, 1), 1e-7)), cap))
        e_next = int(lim.max())
    cache = cache_count().since(cache0)
    results = [
        _result(b0, member(carry, i), records[i], compile_s, compile_cpu, train_s, cache, pruned[i], stop)
        for i in range(p)
    ]
    return PopulationFit(results, pruned, stop.signum is not None)


@dataclass
class _Programs:
    """The jitted programs of one population shape: start, the multi-epoch chunk (compiled on first use)
    and the test scoring."""

    start: Callable
    chunk: Any  # jax.jit of the chunk (lowered and compiled on first use)
    score: Callable
    cap: int
    done: Any = None  # the compiled chunk

    @classmethod
    def make(cls, pop: Population, b0: Built, cap: int) -> _Programs:
        n_test = 0 if b0.data.x_test is None else len(b0.data.x_test)
        return cls(
            start=jax.jit(pop.start, static_argnums=1),
            chunk=jax.jit(lambda h, c, tr, va, lim: pop.chunk(h, c, tr, va, lim, cap), donate_argnums=1),
            score=jax.jit(lambda w, d: pop.evaluate(w, d, n_test, b0.loop)),
            cap=cap,
        )

    def compiled(self, *args: Any) -> Callable:
        if self.done is None:
            self.done = self.chunk.lower(*args).compile()
        return self.done


_PROGRAMS: dict[Any, _Programs] = {}  # by key, the latest few: a sweep's rounds share one shape


def _remember(key: Any, fns: _Programs) -> None:
    if key is None:
        return
    while len(_PROGRAMS) >= 4:
        _PROGRAMS.pop(next(iter(_PROGRAMS)))
    _PROGRAMS[key] = fns


def _emit(rows: list[list[dict]], records: list[list[dict]], pruned: list[bool], on_epoch: list, secs: float) -> None:
    """Each member's new records, epoch by epoch across members (the order sequential trials would report
    to a pruner); a member's records end at the epoch its callback stopped it."""
    n = max((len(r) for r in rows), default=0)
    for j in range(n):
        for i, r in enumerate(rows):
            if j >= len(r) or pruned[i]:
                continue
            rec = r[j]
            rec["time"] = secs / len(r)
            rec["epoch"] = int(rec["epoch"]) + 1
            records[i].append(rec)
            if on_epoch[i](rec):
                pruned[i] = True


def _result(
    b0: Built,
    carry: Any,
    records: list[dict],
    compile_s: float,
    compile_cpu: float,
    train_s: float,
    cache: Any,
    pruned: bool,
    stop: StopFlag,
) -> FitResult:
    """One member's FitResult, its status and reason as `nnctl.app.fitting.fit` decides them."""
    reason = REASONS[int(carry.reason)]
    if pruned:
        status, reason = "pruned", "pruned"
    elif stop.signum is not None and not bool(carry.stopped):
        status, reason = "interrupted", "interrupted"
    else:
        early = reason not in ("", "steps")
        status = "failed" if reason == "nonfinite" else ("stopped_early" if early else "finished")
    weights = b0.loop.final_weights(carry)
    return FitResult(carry, records, compile_s, train_s, status, reason, weights, None, None, cache, compile_cpu)


def score_members(builts: list[Built], fits: list[FitResult], key: Any = None) -> list[dict | None]:
    """Each member's score on its test split, all in one program (None: no test split, or not wanted)."""
    b0 = builts[0]
    if b0.data.x_test is None or not b0.loaded.spec.train.evaluate_test:
        return [None] * len(builts)
    own = not all(b.data is b0.data for b in builts)
    fns = _PROGRAMS.get(key) if key is not None else None
    if fns is None:
        fns = _Programs.make(Population(b0.lifted(), own), b0, 1)
    weights = stack([f.weights for f in fits])
    x = np.stack([np.asarray(b.data.x_test) for b in builts]) if own else b0.data.x_test
    y = np.stack([np.asarray(b.data.y_test) for b in builts]) if own else b0.data.y_test
    n = len(b0.data.x_test)
    sums = fns.score(weights, (jnp.asarray(x), jnp.asarray(y)))
    return [
        None if f.status == "interrupted" else {"split": "test", **result_of_sums(b, member(sums, i), n)}
        for i, (b, f) in enumerate(zip(builts, fits))
    ]
