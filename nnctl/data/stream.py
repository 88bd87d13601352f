"""Data that stays in host memory: where the splits live, and windows of batches streamed to the device.

`train.data_placement: device` copies every split to the device once and runs whole epochs there (the fast
path, `nnctl.train.Loop`). `stream` keeps the prepared arrays on the host; each epoch's batch order is still
drawn on the device from (seed, epoch), so a streamed run visits the same batches in the same order as a
device-resident one. `x` may be lazy rows on disk (nnctl.data.shards), read by index in the gathering thread,
so only the windows in flight are ever in memory. A background thread gathers the next windows (`prefetch`
of them) and starts their transfer while the device trains on the current one: host gathering overlaps device
compute, and only `prefetch + 1` windows of batches are on the device at a time.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import jax
import numpy as np

from nnctl.data.shards import take_rows
from nnctl.jaxcfg import device_memory_limit

WINDOW_BYTES = 64 << 20  # default window: about this many bytes of batches per compiled call
MAX_WINDOW = 64


def data_bytes(*arrays) -> int:
    return sum(int(a.nbytes) for a in arrays if a is not None)


def device_budget() -> int:
    """Bytes of data `auto` places on the device: half its memory (GPU/TPU), a quarter of RAM on CPU.

    `NNCTL_DEVICE_DATA_BUDGET` (bytes) overrides it."""
    env = os.environ.get("NNCTL_DEVICE_DATA_BUDGET")
    if env:
        return int(float(env))
    limit = device_memory_limit()
    if limit is not None:
        return limit // 2
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 8 << 30
    return int(ram) // 4


def choose_placement(setting: str, nbytes: int) -> str:
    if setting != "auto":
        return setting
    return "device" if nbytes <= device_budget() else "stream"


def window_size(setting: int | None, fuse: str, batch_bytes: int, n_batches: int) -> int:
    """Batches per compiled call: the spec's `stream.window`, 1 under `fuse: steps`, else ~WINDOW_BYTES."""
    if setting:
        k = setting
    elif fuse == "steps":
        k = 1
    else:
        k = max(1, min(MAX_WINDOW, WINDOW_BYTES // max(batch_bytes, 1)))
    return max(1, min(k, n_batches))


def windows(
    x: np.ndarray, y: np.ndarray, idx: np.ndarray, mask: np.ndarray, k: int, put: Callable, prefetch: int = 2
) -> Iterator[tuple]:
    """(first batch index, xs, ys, masks) for consecutive windows of `k` batches, already on the device.

    `idx` (n_batches, batch) holds example indices and `mask` marks real (unpadded) examples. A worker
    thread gathers the next `prefetch` windows into reusable host buffers while the caller trains on the
    current one; each is copied to the device (and the copy waited for) just before it is handed out, from
    the caller's thread. Streaming therefore allocates no host memory per window, and per-thread malloc
    arenas never hold stale windows. Closing the generator early (a stop signal) waits for the gathers in
    flight."""
    nb = len(idx)
    starts = list(range(0, nb, k))
    depth = max(1, min(prefetch, len(starts)))
    rows = min(k, nb) * idx.shape[1]
    bufs = [(np.empty((rows, *x.shape[1:]), x.dtype), np.empty((rows, *y.shape[1:]), y.dtype)) for _ in range(depth)]

    def gather(n: int):
        i0, (bx, by) = starts[n], bufs[n % depth]
        sel = idx[i0 : i0 + k]
        flat = sel.reshape(-1)
        xs = take_rows(x, flat, bx[: len(flat)]).reshape(sel.shape + x.shape[1:])
        ys = take_rows(y, flat, by[: len(flat)]).reshape(sel.shape + y.shape[1:])
        return i0, xs, ys, np.ascontiguousarray(mask[i0 : i0 + k])

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nnctl-prefetch") as ex:
        queue = deque(ex.submit(gather, n) for n in range(depth))
        nxt = depth
        try:
            while queue:
                i0, *host = queue.popleft().result()
                on_device = put(tuple(host))
                jax.block_until_ready(on_device)  # the host buffer is free again: gather the next one into it
                if nxt < len(starts):
                    queue.append(ex.submit(gather, nxt))
                    nxt += 1
                yield (i0, *on_device)
        finally:
            for f in queue:
                f.cancel()


def eval_index(n: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """The fixed-size masked batches `Loop.evaluate` uses, as host arrays."""
    b = min(batch, n)
    nb = -(-n // b)
    idx = (np.arange(nb * b) % n).astype(np.int32).reshape(nb, b)
    mask = (np.arange(nb * b) < n).astype(np.float32).reshape(nb, b)
    return idx, mask
