"""The per-layer figure `nnctl plot` draws for a run trained with `train.diagnostics: true`: one panel per
quantity (gradient norm, weight norm, update/weight ratio on log scales; dead-ReLU and saturated fractions),
one line per layer, over the epochs. Data first (`layer_series`), drawing second (`draw_diagnostics`)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

QUANTITIES = {  # record suffix -> (panel title, log scale)
    "grad_norm": ("gradient norm", True),
    "weight_norm": ("weight norm", True),
    "update_ratio": ("update / weight ratio", True),
    "dead_fraction": ("dead ReLU units (fraction)", False),
    "saturated_fraction": ("saturated sigmoid/tanh outputs (fraction)", False),
}


def layer_series(records: list[dict]) -> dict[str, dict[str, list]]:
    """{quantity: {layer: per-epoch values}} of a run's `diag/<layer>/<quantity>` records (layers in the order
    the records name them); {} for a run without diagnostics."""
    out: dict[str, dict[str, list]] = {}
    for key in dict.fromkeys(k for r in records for k in r if k.startswith("diag/")):
        _, layer, q = key.split("/", 2) if key.count("/") >= 2 else (None, key, "")
        if q in QUANTITIES:
            out.setdefault(q, {})[layer] = [r.get(key) for r in records]
    return {q: out[q] for q in QUANTITIES if q in out}


def draw_diagnostics(records: list[dict], title: str, target: Path) -> list[str] | None:
    """Draw the per-layer figure into `target` (PNG). Returns the quantities drawn, or None (no diagnostics)."""
    series = layer_series(records)
    if not series:
        return None
    epochs = [r["epoch"] for r in records]
    cols = min(len(series), 3)
    rows = -(-len(series) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.0 * rows), squeeze=False)
    flat = [a for row in axes for a in row]
    for ax, (q, layers) in zip(flat, series.items()):
        name, log = QUANTITIES[q]
        for layer, values in layers.items():
            ys = [float("nan") if v is None else v for v in values]
            ax.plot(epochs, ys, label=layer, marker="." if len(epochs) < 30 else None)
        if log and any(v is not None and v > 0 for vs in layers.values() for v in vs):
            ax.set_yscale("log")
        if not log:
            ax.set_ylim(-0.02, 1.02)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.legend(fontsize="small")
    for ax in flat[len(series) :]:
        ax.set_visible(False)
    fig.suptitle(f"{title}: per-layer diagnostics")
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    plt.close(fig)
    return list(series)
