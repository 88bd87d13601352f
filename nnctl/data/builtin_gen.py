"""Generated datasets for the generative setups (registered on import; see EXTENSIONS in builtin.py)."""

from __future__ import annotations

import numpy as np

from nnctl.data.builtin_base import register_builtin

RING_MODES = 8
RING_RADIUS = 2.0


def ring_centres(k: int = RING_MODES, radius: float = RING_RADIUS) -> np.ndarray:
    t = 2 * np.pi * np.arange(k) / k
    return np.stack([radius * np.cos(t), radius * np.sin(t)], 1).astype(np.float32)


@register_builtin(
    "ring",
    (2,),
    RING_MODES,
    "8 Gaussians on a circle of radius 2 (GAN mode coverage); label = mode (n_samples, noise = stddev, default 0.05)",
)
def _ring(seed, n, noise):
    rng = np.random.default_rng(seed)
    n = n or 2000
    y = rng.integers(0, RING_MODES, n)
    x = ring_centres()[y] + rng.normal(0, 0.05 if noise is None else noise, (n, 2))
    return x.astype(np.float32), y.astype(np.int32)
