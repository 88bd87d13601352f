"""The reconstruction-error anomaly score `nnctl predict` adds for autoencoders and vaes (one per example)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from nnctl.losses import LOSSES


def anomaly_scores(obj: Any, weights: dict, x: np.ndarray, batch: int) -> np.ndarray:
    """Each example's reconstruction error, the quantity `eval` averages: the run's train.loss per example
    between the reconstruction and the (normalised) input; for a vae its reconstruction term (train.loss summed
    over the input's values, the mean decoded). Higher: less like the training data."""
    if hasattr(obj, "reconstruction_error"):  # a vae
        fn = jax.jit(obj.reconstruction_error)
    else:  # a sequential autoencoder

        def per_example(p, ms, v):
            logits, _ = obj.forward(p, ms, v, False)
            return LOSSES.build(obj.loss_opts, logits, v, obj.head)

        fn = jax.jit(per_example)
    b = max(1, min(batch, len(x)))
    out = []
    for k in range(0, len(x), b):
        xb = x[k : k + b]
        pad = np.concatenate([xb, np.repeat(xb[-1:], b - len(xb), axis=0)]) if len(xb) < b else xb
        out.append(np.asarray(fn(weights["params"], weights["model_state"], pad))[: len(xb)])
    return np.concatenate(out) if out else np.zeros((0,), np.float32)
