"""Built-in datasets: generated, or shipped on disk with scikit-learn. Nothing is downloaded.

Each entry gives its feature shape and class count up front, so `validate` and `inspect` need no data.
"""

from __future__ import annotations

import importlib

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


def _sk(loader):
    def load(seed, n, noise):
        import sklearn.datasets as ds  # lazy: importing scikit-learn takes seconds; only these datasets need it

        b = getattr(ds, loader)()
        return b.data.astype(np.float32), b.target

    return load


register_builtin("iris", (4,), 3, "Fisher's iris: 150 flowers, 4 measurements, 3 species")(_sk("load_iris"))
register_builtin("wine", (13,), 3, "wine recognition: 178 wines, 13 chemical features, 3 cultivars")(_sk("load_wine"))
register_builtin("breast_cancer", (30,), 2, "Wisconsin breast cancer: 569 cases, 30 features, benign/malignant")(
    _sk("load_breast_cancer")
)
register_builtin(
    "digits", (64,), 10, "handwritten digits: 1,797 8x8 images (as 64 values 0..16; reshape to [8, 8, 1])"
)(_sk("load_digits"))
register_builtin("diabetes", (10,), None, "diabetes progression: 442 patients, 10 features, regression")(
    _sk("load_diabetes")
)


@register_builtin("moons", (2,), 2, "two interleaving half circles (n_samples, noise)")
def _moons(seed, n, noise):
    from sklearn.datasets import make_moons  # lazy: importing scikit-learn takes seconds

    x, y = make_moons(n or 500, noise=0.1 if noise is None else noise, random_state=seed)
    return x.astype(np.float32), y


@register_builtin("circles", (2,), 2, "a circle inside a circle (n_samples, noise)")
def _circles(seed, n, noise):
    from sklearn.datasets import make_circles  # lazy: importing scikit-learn takes seconds

    x, y = make_circles(n or 500, noise=0.05 if noise is None else noise, factor=0.5, random_state=seed)
    return x.astype(np.float32), y


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
