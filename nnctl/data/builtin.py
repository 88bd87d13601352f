"""Built-in datasets: generated, or read from the small .npz files in nnctl/data/files. Nothing is downloaded.

The files are scikit-learn's bundled data sets, converted once by scripts/make_builtin_files.py (bit-identical
to its loaders, tested), so no run imports scikit-learn; `moons` and `circles` reproduce its generators exactly.

Each entry gives its feature shape and class count up front, so `validate` and `inspect` need no data.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from nnctl.data.builtin_base import BUILTINS, Builtin, register_builtin

__all__ = ["BUILTINS", "Builtin", "register_builtin"]


def _truth_table(fn):
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    return x, np.array([fn(int(a), int(b)) for a, b in x], np.int32)


@register_builtin("xor", (2,), 2, "XOR truth table (4 rows)")
def _xor(seed, n, noise):
    return _truth_table(lambda a, b: a ^ b)


@register_builtin("and", (2,), 2, "AND truth table (4 rows)")
def _and(seed, n, noise):
    return _truth_table(lambda a, b: a & b)


@register_builtin("or", (2,), 2, "OR truth table (4 rows)")
def _or(seed, n, noise):
    return _truth_table(lambda a, b: a | b)


@register_builtin("xnor", (2,), 2, "XNOR truth table (4 rows)")
def _xnor(seed, n, noise):
    return _truth_table(lambda a, b: 1 - (a ^ b))


FILES = Path(__file__).resolve().parent / "files"


def _file(name):
    def load(seed, n, noise):
        with np.load(FILES / f"{name}.npz", allow_pickle=False) as f:
            return f["x"], f["y"]

    return load


register_builtin("iris", (4,), 3, "Fisher's iris: 150 flowers, 4 measurements, 3 species")(_file("iris"))
register_builtin("wine", (13,), 3, "wine recognition: 178 wines, 13 chemical features, 3 cultivars")(_file("wine"))
register_builtin("breast_cancer", (30,), 2, "Wisconsin breast cancer: 569 cases, 30 features, benign/malignant")(
    _file("breast_cancer")
)
register_builtin(
    "digits", (64,), 10, "handwritten digits: 1,797 8x8 images (as 64 values 0..16; reshape to [8, 8, 1])"
)(_file("digits"))
register_builtin("diabetes", (10,), None, "diabetes progression: 442 patients, 10 features, regression")(
    _file("diabetes")
)


def _two_rings(x_out, y_out, x_in, y_in, seed, noise):
    """scikit-learn's make_moons / make_circles tail, step for step: stack, shuffle, add noise (same draws)."""
    x = np.vstack([np.append(x_out, x_in), np.append(y_out, y_in)]).T
    y = np.hstack([np.zeros(len(x_out), dtype=np.intp), np.ones(len(x_in), dtype=np.intp)])
    rng = np.random.RandomState(seed)
    order = np.arange(len(x))
    rng.shuffle(order)
    x, y = x[order], y[order]
    x += rng.normal(scale=noise, size=x.shape)
    return x.astype(np.float32), y


@register_builtin("moons", (2,), 2, "two interleaving half circles (n_samples, noise)")
def _moons(seed, n, noise):
    n = n or 500
    n_out, n_in = n // 2, n - n // 2
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    return _two_rings(
        np.cos(t_out), np.sin(t_out), 1 - np.cos(t_in), 1 - np.sin(t_in) - 0.5, seed, 0.1 if noise is None else noise
    )


@register_builtin("circles", (2,), 2, "a circle inside a circle (n_samples, noise)")
def _circles(seed, n, noise):
    n = n or 500
    n_out, n_in = n // 2, n - n // 2
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    factor = 0.5
    return _two_rings(
        np.cos(t_out),
        np.sin(t_out),
        np.cos(t_in) * factor,
        np.sin(t_in) * factor,
        seed,
        0.05 if noise is None else noise,
    )


@register_builtin("spirals", (2,), 3, "three interleaved spiral arms (n_samples, noise)")
def _spirals(seed, n, noise):
    rng = np.random.default_rng(seed)
    n = n or 600
    k = 3
    per = n // k
    xs, ys = [], []
    for c in range(k):
        r = np.linspace(0.0, 1.0, per)
        t = np.linspace(c * 4.0, (c + 1) * 4.0, per) + rng.normal(0, 0.2 if noise is None else noise, per)
        xs.append(np.stack([r * np.sin(t), r * np.cos(t)], 1))
        ys.append(np.full(per, c))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


@register_builtin("sine", (1,), None, "y = sin(x) + noise for x in [-pi, pi] (n_samples, noise)")
def _sine(seed, n, noise):
    rng = np.random.default_rng(seed)
    n = n or 500
    x = rng.uniform(-np.pi, np.pi, (n, 1)).astype(np.float32)
    y = np.sin(x) + rng.normal(0, 0.05 if noise is None else noise, (n, 1))
    return x, y.astype(np.float32)


# more generators live in their own modules; importing them (after the ones above, which keeps the listing
# order of the reference docs) registers them
EXTENSIONS: list[str] = ["builtin_seq", "builtin_gen"]
for _m in EXTENSIONS:
    importlib.import_module(f"nnctl.data.{_m}")
