"""Micro-batching: requests that arrive within a few milliseconds of each other are predicted together, in
one call of the compiled function (padded to a compiled batch size), off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import time

import numpy as np

from nnctl.app.serve_model import ServedModel


class MicroBatcher:
    """Collects (inputs, future) pairs; one worker task predicts up to max_batch examples at a time."""

    def __init__(self, model: ServedModel, wait_ms: float = 2.0) -> None:
        self.model = model
        self.wait = wait_ms / 1000
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.work())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions for `x`, batched with whatever else is waiting."""
        t0 = time.perf_counter()
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put((x, fut))
        out = await fut
        self.model.stats.record(len(x), time.perf_counter() - t0)
        return out

    async def work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            n = len(batch[0][0])
            deadline = loop.time() + self.wait
            while n < self.model.max_batch:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), left)
                except TimeoutError:
                    break
                batch.append(item)
                n += len(item[0])
            xs = np.concatenate([x for x, _ in batch])
            try:
                out = await asyncio.to_thread(self.model.run, xs)
            except Exception as e:  # a failure answers the requests of this batch; the worker lives on
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            i = 0
            for x, fut in batch:
                if not fut.done():
                    fut.set_result(out[i : i + len(x)])
                i += len(x)
