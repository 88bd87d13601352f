"""What `nnctl train` states before the first epoch, as plain values: the progress display renders them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax

from nnctl import checkpoint, rundir
from nnctl.app.builder import Built, class_weights
from nnctl.kinds import MODEL_KINDS


def banner(b: Built, run_dir: Path, start_epoch: int | None = None) -> dict[str, Any]:
    """The resolved settings of a fit about to start, with nothing but plain values.

    Args:
        b: the built spec (`nnctl.app.builder`).
        run_dir: the run directory.
        start_epoch: the epoch a resumed run continues after (None for a new run).
    Returns:
        {name, run_dir, device, data: {origin, task, sizes}, parameters, optimizer, class_weights, batch_size,
        steps_per_epoch, epochs, fuse, streaming, early_stopping, seed, shuffle, on_nonfinite, checkpoints,
        logs, diagnostics (train.diagnostics), start_epoch, checkpoint_dir, warnings (the spec check's, as text)}.
    """
    spec, data, t = b.loaded.spec, b.data, b.loaded.spec.train
    devices = jax.devices()
    es, ck = t.early_stopping, t.checkpoint
    cw = class_weights(b.loaded, data)
    return {
        "name": spec.name or run_dir.name,
        "run_dir": str(run_dir),
        "device": ", ".join(sorted({d.platform for d in devices})) + f" x{len(devices)}",
        "data": {"origin": data.origin, "task": data.task, "sizes": dict(data.sizes)},
        "parameters": b.param_count,
        "optimizer": b.chain_desc,
        "class_weights": list(cw) if cw else None,
        "batch_size": b.loop.batch_size,
        "steps_per_epoch": b.loop.n_batches,
        "epochs": b.epochs,
        "fuse": b.fuse,
        "streaming": {"window": b.window, "prefetch": b.prefetch} if b.placement == "stream" else None,
        "early_stopping": None
        if es is None
        else {
            "monitor": es.monitor,
            "mode": es.mode,
            "patience": es.patience,
            "min_delta": es.min_delta,
            "restore_best": es.restore_best,
        },
        "seed": spec.seed,
        "shuffle": spec.data.shuffle,
        "on_nonfinite": t.on_nonfinite,
        "checkpoints": None if ck is None else {"every_epochs": ck.every_epochs, "keep": ck.keep},
        "logs": [rundir.METRICS, *t.log],
        "diagnostics": t.diagnostics,
        "start_epoch": start_epoch,
        "checkpoint_dir": str(run_dir / checkpoint.DIR),
        "warnings": [str(w) for w in (b.loaded.analysis.warnings if b.loaded.analysis else [])]
        + batch_norm_warnings(b),
    }


def batch_norm_warnings(b: Built) -> list[str]:
    """Batch-norm layers whose running statistics (used by validation, eval and predict) average over more
    steps than the run has: they stay near their starting values, and validation lags far behind training."""
    kind = MODEL_KINDS.get(b.loaded.spec.model.type)
    steps = int(b.epochs or 0) * int(b.loop.n_batches)
    out = []
    for layer in kind.layers(b.loaded.spec.model):
        m = getattr(layer, "momentum", None)
        if getattr(layer, "type", "") in ("batch_norm", "batchnorm") and m is not None and steps < 3 / (1 - m):
            out.append(
                f"batch_norm '{layer.name}': momentum {m} averages its running statistics over ~{1 / (1 - m):.0f} "
                f"steps, but this run has {steps}: validation and test see statistics far from the training "
                f"batches' (low val accuracy); set momentum: {_short_momentum(steps)} for a run this short"
            )
    return out


def _short_momentum(steps: int) -> float:
    """A momentum whose average spans about a third of `steps` (0.9 at most, 0.5 at least)."""
    return float(min(0.9, max(0.5, round(1 - 3 / max(steps, 1), 2))))
