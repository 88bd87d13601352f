"""`train.diagnostics`: the probe batch a run measures each epoch (nnctl.engine.diagnostics) and, at the end,
the plain-words flags of what the per-layer records show (written to summary.json as `diagnostics`).

Flags (each judged on the last epoch's record; none for a healthy network):

* dead ReLU units: a hidden ReLU layer with at least `DEAD_LIMIT` of its units dead;
* saturation: a hidden sigmoid/tanh layer with at least `SATURATED_LIMIT` of its outputs in the flat tails;
* vanishing / exploding gradients: the gradient norm of the first layer with weights is below
  `VANISHING_RATIO` (above `EXPLODING_RATIO`) times that of the last one. Layers whose gradient was 0 in every
  epoch (frozen) are left out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnctl.engine.diagnostics import WATCHED, Probe

PROBE_EXAMPLES = 256  # at most this many training examples in the probe batch
PROBE_BYTES = 8 << 20  # and at most this many bytes of inputs (the batch is a constant of the program)
DEAD_LIMIT = 0.5
SATURATED_LIMIT = 0.5
VANISHING_RATIO = 1e-3
EXPLODING_RATIO = 1e3


def probe_for(spec: Any, x_train: np.ndarray, y_train: np.ndarray) -> Probe:
    """The probe of a sequential spec: the first training examples, every layer name in order, and the hidden
    layers whose activation is watched (relu: dead units; sigmoid, tanh: saturation)."""
    per = max(int(x_train[:1].nbytes), 1)
    n = max(1, min(len(x_train), PROBE_EXAMPLES, PROBE_BYTES // per))
    layers = spec.model.layers
    watched = tuple(
        (layer.name, layer.activation.type)
        for layer in layers[:-1]
        if layer.activation is not None and layer.activation.type in WATCHED
    )
    return Probe(
        x=np.asarray(x_train[:n]),
        y=np.asarray(y_train[:n]),
        order=tuple(layer.name for layer in layers),
        watched=watched,
        seed=spec.seed,
    )


def _series(records: Sequence[dict], layer: str, quantity: str) -> list[float]:
    return [float(r.get(f"diag/{layer}/{quantity}", math.nan)) for r in records]


def _since(values: list[float], records: Sequence[dict], limit: float) -> int:
    """The epoch from which `values` stayed at or above `limit` up to the end."""
    i = len(values)
    while i > 0 and values[i - 1] >= limit:
        i -= 1
    return int(records[i]["epoch"]) if i < len(records) else int(records[-1]["epoch"])


def _pct(v: float) -> str:
    return f"{100 * v:.0f}%"


def layer_flags(records: Sequence[dict], spec: Any) -> list[str]:
    """Dead-ReLU and saturation flags, in layer order."""
    out = []
    for layer in spec.model.layers[:-1]:
        dead = _series(records, layer.name, "dead_fraction")
        if dead and dead[-1] >= DEAD_LIMIT:
            out.append(
                f"{layer.name}: {_pct(dead[-1])} of ReLU units dead since epoch {_since(dead, records, DEAD_LIMIT)} "
                "(their output is 0 for every probe example, so they no longer learn) - lower the learning rate, "
                "normalise the inputs, use leaky_relu or elu, or check bias_init"
            )
        sat = _series(records, layer.name, "saturated_fraction")
        if sat and sat[-1] >= SATURATED_LIMIT:
            kind = layer.activation.type
            tails = "near 0 or 1" if kind == "sigmoid" else "near -1 or 1"
            out.append(
                f"{layer.name}: {_pct(sat[-1])} of {kind} outputs saturated ({tails}) since epoch "
                f"{_since(sat, records, SATURATED_LIMIT)}, where their gradient is nearly 0 - normalise the "
                "inputs, use glorot/he initialisation or batch_norm, or use relu"
            )
    return out


def gradient_flags(records: Sequence[dict], spec: Any) -> list[str]:
    """The vanishing / exploding gradient flag: the first layer's gradient norm against the last one's."""
    names = [layer.name for layer in spec.model.layers]
    live = [n for n in names if any(v > 0 for v in _series(records, n, "grad_norm"))]  # skips frozen layers
    if len(live) < 2:
        return []
    first, last = live[0], live[-1]
    g0, g1 = records[-1].get(f"diag/{first}/grad_norm"), records[-1].get(f"diag/{last}/grad_norm")
    if g0 is None or g1 is None or not (math.isfinite(g0) and math.isfinite(g1)) or g1 <= 0:
        return []
    ratio = g0 / g1
    where = f"{first} (layer {names.index(first) + 1}) is {ratio:.0e} of {last}'s (layer {names.index(last) + 1})"
    if ratio < VANISHING_RATIO:
        return [
            f"the gradient norm of {where}: vanishing gradients, the first layers barely learn - try relu, "
            "He initialisation (kernel_init: he_normal), batch_norm or residual connections"
        ]
    if ratio > EXPLODING_RATIO:
        return [
            f"the gradient norm of {where}: exploding gradients - lower the learning rate, clip gradients "
            "(train.gradient_clipping or train.clip), or use batch_norm or a smaller initialisation"
        ]
    return []


def diagnose(records: Sequence[dict], spec: Any) -> list[str]:
    """Every flag of a run's per-layer records (the last epoch's), in plain words; [] when healthy."""
    if not records:
        return []
    return layer_flags(records, spec) + gradient_flags(records, spec)
