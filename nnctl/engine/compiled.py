"""The jitted pieces the host-driven strategies call, all built on `Loop.train_step` and `Loop.end_epoch`.

* `steps_fns`: one step per call (`fuse: steps`, buffers donated), then evaluation and the end of the epoch.
* `stream_fns`: a window of batches gathered on the host per call (`data_placement: stream`), with the
  randomness of the fused epoch (batch `i0 + j` of epoch `e` uses `fold_in(epoch_key(e), i0 + j + 1)`), so
  streaming visits the same batches with the same dropout/augmentation draws as a device-resident run.
* Both take the loop's runtime inputs (`hp`, see nnctl.app.hyper) as an argument of every program, through
  `make(hp) -> Loop`; without them the loop's own values are compiled in.
* `host_records` / `stack_records`: host side, the per-epoch records of one call as columns / a list of dicts;
  `Records`: a fit's records, kept as columns until read.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnctl.data.stream import eval_index, windows
from nnctl.engine.loop import Loop
from nnctl.engine.state import Counters, TrainState


@dataclass(frozen=True)
class HostFns:
    """Jitted functions of a host-driven epoch: `perm(epoch)`, `sums0()`, a training call, evaluation, `end`."""

    perm: Callable
    sums0: Callable[[], tuple[dict, Counters]]
    train: Callable  # steps: (state, sums, counters, data, idx, mask, epoch, i); stream: a window of batches
    end: Callable  # (carry, state, sums, counters, val_sums, epoch) -> (carry, record)
    evaluate: Callable  # steps: (state, data) -> sums; stream: (state, sums, xs, ys, ms) -> sums
    eval0: Callable


Make = Callable[[Any], Loop]


def _bind(f: Callable, hp: Any, **kw: Any) -> Callable:
    """jax.jit of f(hp, ...) with `hp` bound (donated argument numbers count after it)."""
    donate = kw.pop("donate_argnums", ())
    donate = (donate,) if isinstance(donate, int) else donate
    return partial(jax.jit(f, donate_argnums=tuple(d + 1 for d in donate), **kw), hp)


def steps_fns(loop: Loop, make: Make | None = None, hp: Any = None) -> HostFns:
    """`fuse: steps`: one jitted step per batch (state, sums and counters donated)."""
    L = make or (lambda _: loop)

    def step(hp, state, sums, counters, data, idx, mask, epoch, i):
        lp, (x, y) = L(hp), data
        return lp.train_step(state, sums, counters, x[idx[i]], y[idx[i]], mask[i], lp.epoch_key(epoch), i)

    return HostFns(
        perm=_bind(lambda hp, e: L(hp).batch_index(L(hp).epoch_key(e)), hp),
        sums0=jax.jit(loop.train_sums0),
        train=_bind(step, hp, donate_argnums=(0, 1, 2)),
        end=_bind(lambda hp, *a: L(hp).end_epoch(*a), hp),
        evaluate=_bind(lambda hp, s, d: L(hp).evaluate(s, d, loop.n_val), hp),
        eval0=jax.jit(loop.eval_sums0),
    )


def stream_fns(loop: Loop, make: Make | None = None, hp: Any = None) -> HostFns:
    """`data_placement: stream`: one program per window length (at most two: full and last)."""
    L = make or (lambda _: loop)

    def window(hp, state, sums, counters, xs, ys, ms, epoch, i0):
        lp = L(hp)
        key = lp.epoch_key(epoch)

        def one(carry: tuple[TrainState, dict, Counters], inp: tuple):
            xb, yb, m, j = inp
            return lp.train_step(*carry, xb, yb, m, key, i0 + j), None

        steps = jnp.arange(xs.shape[0], dtype=jnp.int32)
        if xs.shape[0] == 1:  # no loop at all: XLA:CPU runs conv backward passes slower inside one
            return one((state, sums, counters), (xs[0], ys[0], ms[0], steps[0]))[0]
        return jax.lax.scan(one, (state, sums, counters), (xs, ys, ms, steps))[0]

    def eval_window(hp, state, sums, xs, ys, ms):
        lp = L(hp)

        def one(s, inp):
            return lp.obj.eval_step(state, s, *inp), None

        if xs.shape[0] == 1:
            return one(sums, (xs[0], ys[0], ms[0]))[0]
        return jax.lax.scan(one, sums, (xs, ys, ms))[0]

    return HostFns(
        perm=_bind(lambda hp, e: L(hp).batch_index(L(hp).epoch_key(e)), hp),
        sums0=jax.jit(loop.train_sums0),
        train=_bind(window, hp, donate_argnums=(0, 1, 2)),
        end=_bind(lambda hp, *a: L(hp).end_epoch(*a), hp),
        evaluate=_bind(eval_window, hp, donate_argnums=1),
        eval0=jax.jit(loop.eval_sums0),
    )


def stream_evaluate(
    loop: Loop, fns: HostFns, state: Any, x: np.ndarray, y: np.ndarray, put: Callable, window: int, prefetch: int = 2
) -> dict:
    """Loss and metric sums over a host-resident split: the batches of `Loop.evaluate`, streamed."""
    idx, mask = eval_index(len(x), loop.eval_batch)
    sums = fns.eval0()
    for _, xs, ys, ms in windows(x, y, idx, mask, window, put, prefetch):
        sums = fns.evaluate(state, sums, xs, ys, ms)
    return sums


def to_device(tree: Any) -> Any:
    """`jax.tree.map(jnp.asarray, tree)` without the small XLA program that `jnp.asarray` runs (traced, lowered,
    loaded from the cache) per numpy array shape (issue 12). Each numpy array is copied and the copy sent with
    `jax.device_put`: on CPU the device array may share an aligned host array's memory, and the transfer may
    still be under way when `device_put` returns, so the caller's array must not be what the device reads."""
    return jax.tree.map(lambda a: jax.device_put(np.array(a)) if isinstance(a, np.ndarray) else jnp.asarray(a), tree)


def host_records(records: dict) -> dict[str, np.ndarray]:
    """Host side: one call's record arrays (leading epoch axis) in one `device_get`, the rows of the epochs
    run (`active`, when present) kept."""
    host = jax.device_get(records)
    active = host.pop("active", None)
    return {k: np.asarray(v)[np.asarray(active)] if active is not None else np.asarray(v) for k, v in host.items()}


@lru_cache(maxsize=64)
def _row_maker(keys: tuple[str, ...], extra: tuple[str, ...]) -> Callable[..., Callable[..., dict]]:
    """`make(*extra_values)(*row) -> {key: value, ..., extra: value}`: a dict display compiled for these keys
    (twice as fast as `dict(zip(keys, row))` per record). Keys enter the source only through `repr`."""
    args = [f"a{i}" for i in range(len(keys))]
    outer = [f"e{i}" for i in range(len(extra))]
    items = [f"{k!r}: {a}" for k, a in zip(keys, args)] + [f"{k!r}: {e}" for k, e in zip(extra, outer)]
    src = f"lambda {', '.join(outer)}: lambda {', '.join(args)}: {{{', '.join(items)}}}"
    return eval(src, {"__builtins__": {}})  # the source is built above from repr()s of the keys


def rows_of(cols: dict[str, np.ndarray], extra: dict | None = None) -> list[dict]:
    """Host columns (`host_records`) -> a list of dicts, one per row, built column-wise; `extra` entries (the
    same for every row) are added last, in order."""
    extra = extra or {}
    if not cols:
        return []
    enabled = gc.isenabled()
    gc.disable()  # thousands of small dicts per call: no collector pauses while building them
    try:
        make = _row_maker(tuple(cols), tuple(extra))(*extra.values())
        return list(map(make, *(np.asarray(v).tolist() for v in cols.values())))
    finally:
        if enabled:
            gc.enable()


def stack_records(records: dict, **extra: Any) -> list[dict]:
    """Host side: the per-epoch records of one call (arrays with a leading epoch axis, device or host) -> list of
    dicts, built column-wise; `extra` entries (the same for every record) are added last, in order."""
    return rows_of(host_records(records), extra)


class Records(Sequence):
    """A fit's epoch records, in order: a sequence of dicts to whoever reads it, kept as the column blocks the
    compiled calls returned until one is read (issue 12: a dict per epoch costs the host ~0.5 us, and a tiny
    model's fused epoch takes ~3 us). Reading any record (index, slice, iteration, comparison) builds the dicts
    of every block once; `len` builds none."""

    def __init__(self, rows: Iterable[dict] = ()) -> None:
        self._rows: list[dict] = list(rows)
        self._blocks: list[tuple[dict, dict]] = []  # (host columns, extra entries) not yet made into dicts
        self._n = len(self._rows)

    def add_columns(self, cols: dict[str, np.ndarray], **extra: Any) -> None:
        """Append the rows of host columns (each `extra` entry joins every row, last), built when read."""
        n = len(next(iter(cols.values()))) if cols else 0
        if n:
            self._blocks.append((cols, extra))
            self._n += n

    def extend(self, rows: Iterable[dict]) -> None:
        self._build()
        self._rows.extend(rows)
        self._n = len(self._rows)

    def _build(self) -> None:
        for cols, extra in self._blocks:
            self._rows.extend(rows_of(cols, extra))
        self._blocks.clear()

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: Any) -> Any:
        self._build()
        return self._rows[i]

    def __iter__(self) -> Iterator[dict]:
        self._build()
        return iter(self._rows)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return list(self) == list(other)

    def __repr__(self) -> str:
        return f"Records({list(self)!r})"
