"""Loss and metrics of a set of weights on one split of a built spec: `nnctl eval` (from a run directory) and
`nnctl train` (the held-out test split, in the same process, at the end) share it."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from nnctl.app.builder import Built
from nnctl.engine.compiled import stream_evaluate, stream_fns, to_device
from nnctl.engine.state import TrainState
from nnctl.errors import DataError


def score(b: Built, weights: dict, split: str) -> dict:
    """{split, examples, metrics, task[, confusion_matrix, class_names]} of `weights` ({"params",
    "model_state"}) on a split (train | val | test) of `b`'s data.

    Raises:
        DataError: the data has no such split.
    """
    x, y = b.data.split(split)
    if x is None:
        have = [s for s in ("train", "val", "test") if b.data.split(s)[0] is not None]
        raise DataError(
            f"this run has no {split} split (set data.{'test' if split == 'test' else 'validation'}_split "
            f"in the spec); available: {', '.join(have)}"
        )
    assert y is not None  # a split has both its inputs and its targets
    return {"split": split, **score_arrays(b, weights, x, y)}


def score_arrays(b: Built, weights: dict, x: np.ndarray, y: np.ndarray) -> dict:
    """{examples, metrics, task[, confusion_matrix, class_names]} of `weights` on examples `x`, `y` (prepared
    like the run's data: scaled, encoded)."""
    loop = b.loop
    state = TrainState(
        params=weights["params"], model_state=weights["model_state"], opt_state=None, step=jax.device_put(np.int32(0))
    )  # evaluation reads the weights only
    if b.placement == "stream":  # too big for the device at once: the same batches, streamed
        sums = stream_evaluate(loop, stream_fns(loop), state, x, y, jax.device_put, b.window, b.prefetch)
    else:  # the metrics are finished in the same program (not by a dozen small eager ones)
        sums, metrics = jax.jit(lambda s, d: _finished(loop, loop.evaluate(s, d, len(x))))(
            state,
            to_device((x, y)),
        )
        return result_of_sums(b, sums, len(x), metrics)
    return result_of_sums(b, sums, len(x))


def _finished(loop: Any, sums: dict) -> tuple[dict, dict]:
    return sums, loop.obj.finalize(sums)


def result_of_sums(b: Built, sums: dict, n: int, metrics: dict | None = None) -> dict:
    """{examples, metrics, task[, confusion_matrix, class_names]} from the evaluation sums of `n` examples
    (`metrics`: the objective's `finalize` of them, when already computed)."""
    metrics = b.loop.obj.finalize(sums) if metrics is None else metrics
    out = {k: float(v) for k, v in metrics.items()}
    result = {"examples": int(n), "metrics": out, "task": b.data.task}
    if "confusion" in sums:
        result["confusion_matrix"] = np.asarray(sums["confusion"]).astype(int).tolist()
        result["class_names"] = b.data.class_names
    return result
