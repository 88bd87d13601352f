"""`nnctl gradcheck SPEC`: numerical gradient checking, as the notes' "gradient checking" trick describes.

For a few entries of every parameter array, the central difference (E(w + h) - E(w - h)) / 2h of the spec's
own training loss (network, loss, kernel regularizers; deterministic: dropout off, batch-norm statistics
fixed) is compared with the gradient automatic differentiation gives, in float64. Per array the relative
error |num - auto| / (|num| + |auto|) (norms over the checked entries) is reported and compared with the
tolerance (1e-5; tests/test_gradcheck.py: xor's arrays are below 1e-8, a derivative 10% off is above 1e-3). The
check is made at the initial weights plus N(0, jitter^2)
noise (default 1e-3): zero biases on zero pixels put a relu exactly on its kink, where the central
difference sees slope 1/2 and autodiff 0 (a kink of relu or max pooling crossed by +-h can still give a
large error in a correct model: rerun with another --seed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from nnctl.app.builder import build
from nnctl.app.explain import widen
from nnctl.data.prepare import prepare
from nnctl.errors import NnctlError
from nnctl.objectives.supervised import Supervised
from nnctl.spec import load_spec
from nnctl.trees import path_str


def check_gradients(
    loss: Callable[[Any], jax.Array], params: Any, entries: int = 8, h: float = 1e-6, tolerance: float = 1e-5, seed=0
) -> list[dict]:
    """Central differences against `jax.grad(loss)` for up to `entries` random entries of every array of
    `params` (all of them when the array is that small). One row per array: path, shape, entries checked, the
    largest absolute difference, the relative error and whether it is within `tolerance`."""
    flat, unravel = ravel_pytree(params)
    f = lambda v: loss(unravel(v))
    auto = jax.jit(jax.grad(f))(flat)
    rng = np.random.default_rng(seed)
    picks, rows, start = [], [], 0
    for key_path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        n = math.prod(leaf.shape)
        idx = np.arange(n) if n <= entries else np.sort(rng.choice(n, entries, replace=False))
        picks.append(start + idx)
        rows.append((path_str(key_path), tuple(leaf.shape), len(idx)))
        start += n
    every = jnp.asarray(np.concatenate(picks)) if picks else jnp.zeros(0, jnp.int32)
    numeric = jax.jit(jax.vmap(lambda i: (f(flat.at[i].add(h)) - f(flat.at[i].add(-h))) / (2 * h)))(every)
    numeric, auto_sel = np.asarray(numeric), np.asarray(auto)[np.asarray(every)]
    out, at = [], 0
    for path, shape, k in rows:
        num, ad = numeric[at : at + k], auto_sel[at : at + k]
        at += k
        denom = np.linalg.norm(num) + np.linalg.norm(ad)
        rel = float(np.linalg.norm(num - ad) / denom) if denom > 1e-12 else 0.0
        diff = float(np.abs(num - ad).max()) if k else 0.0
        out.append({"path": path, "shape": list(shape), "checked": k, "max_abs_diff": diff, "relative_error": rel})
        out[-1]["ok"] = rel <= tolerance
    return out


def spec_loss(
    spec_path: str, overrides: tuple = (), examples: int = 4, jitter: float = 1e-3
) -> tuple[Callable[[Any], jax.Array], Any]:
    """The spec's training loss on its first `examples` training examples as a function of the parameters (in
    float64, deterministic), and the initial parameters plus N(0, jitter^2) noise. Call under
    `jax.enable_x64(True)`."""
    loaded = load_spec(spec_path, tuple(overrides))
    spec = loaded.spec
    data = prepare(spec, loaded.analysis, loaded.base_dir)
    obj = build(loaded, data).loop.obj
    if not isinstance(obj, Supervised):
        raise NnctlError(f"gradcheck checks plain networks; this spec's model is {spec.model.type}")
    if examples < 1:
        raise NnctlError(f"--examples must be at least 1, got {examples}")
    n = min(examples, len(data.x_train))
    x, y = jnp.asarray(widen(data.x_train[:n])), jnp.asarray(widen(data.y_train[:n]))
    state = obj.init(jax.random.fold_in(jax.random.key(spec.seed), 0), tuple(data.input_shape))
    params, ms = jax.tree.map(widen, state.params), jax.tree.map(widen, state.model_state)
    if not jax.tree.leaves(params):
        raise NnctlError("this model has no parameters: there is no gradient to check")
    if jitter:
        leaves, tree = jax.tree.flatten(params)
        rng = np.random.default_rng(spec.seed)
        params = jax.tree.unflatten(tree, [a + jitter * rng.standard_normal(a.shape) for a in leaves])

    def loss(p):
        logits, _ = obj.forward(p, ms, x, False)  # with every output, and the mask of padded steps
        return jnp.mean(obj.per_example(logits, y)) + obj.penalty(p)

    return loss, params


def gradcheck(
    spec_path: str,
    overrides: tuple = (),
    examples: int = 4,
    entries: int = 8,
    h: float = 1e-6,
    tolerance: float = 1e-5,
    seed: int = 0,
    jitter: float = 1e-3,
) -> dict:
    """What `nnctl gradcheck` reports: {spec, examples, h, tolerance, arrays: [one row per array], worst, ok}."""
    with jax.enable_x64(True):
        loss, params = spec_loss(spec_path, overrides, examples, jitter)
        arrays = check_gradients(loss, params, entries, h, tolerance, seed)
    worst = max(arrays, key=lambda r: r["relative_error"])
    return {
        "spec": str(spec_path),
        "examples": examples,
        "h": h,
        "tolerance": tolerance,
        "arrays": arrays,
        "worst": worst["path"],
        "ok": all(r["ok"] for r in arrays),
    }
