"""Transfer learning: `model.init_from: RUN_DIR` starts a run from another run's weights, copied by
parameter path (layer name + kernel/bias) where the shapes match; everything else keeps its fresh
initialisation. Combine with `train.freeze` (fixed layers) and `train.param_groups` (smaller learning rates).

The source is read when training starts (not when the spec is validated or a finished run is evaluated),
and the report of what was copied, skipped (shape differs) and newly initialised goes into summary.json
under `init_from`."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax


def _flat(tree) -> dict[str, Any]:
    return {"/".join(str(getattr(k, "key", k)) for k in path): leaf
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def load_source(run_dir: str | Path, base_dir: Path | None = None) -> dict:
    from nnctl import rundir

    p = Path(run_dir).expanduser()
    if not p.is_absolute() and not p.exists() and base_dir is not None and (Path(base_dir) / p).exists():
        p = Path(base_dir) / p
    run = rundir.check_run_dir(p)
    return rundir.read_msgpack(run / rundir.WEIGHTS)


def copy_matching(target: dict, source: dict) -> tuple[dict, dict]:
    """Target variables ({"params", "model_state"}) with source values where path and shape match;
    and the report {copied, skipped: [{path, source, target}], new, unused}."""
    src = _flat(source)
    report: dict[str, list] = {"copied": [], "skipped": [], "new": [], "unused": []}

    def pick(path, leaf):
        p = "/".join(str(getattr(k, "key", k)) for k in path)
        if p not in src:
            report["new"].append(p)
            return leaf
        s = np.asarray(src[p])
        if tuple(s.shape) != tuple(leaf.shape):
            report["skipped"].append({"path": p, "source_shape": list(s.shape), "target_shape": list(leaf.shape)})
            return leaf
        report["copied"].append(p)
        return jax.numpy.asarray(s, leaf.dtype)

    out = jax.tree_util.tree_map_with_path(pick, target)
    used = set(report["copied"]) | {d["path"] for d in report["skipped"]}
    report["unused"] = [p for p in src if p not in used]
    return out, report


class InitFrom:
    """Wraps an objective: `init` starts from the source run's weights. Everything else is the inner one's."""

    def __init__(self, inner, run_dir: str, base_dir: Path | None = None):
        self.inner = inner
        self.run_dir = run_dir
        self.base_dir = base_dir
        self.transfer_report: dict = {}

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def init(self, key, input_shape) -> dict:
        state = self.inner.init(key, input_shape)
        source = load_source(self.run_dir, self.base_dir)
        source = {"params": source.get("params", {}), "model_state": source.get("model_state", {})}
        target = {"params": state["params"], "model_state": state["model_state"]}
        weights, report = copy_matching(target, source)
        short = lambda p: p.removeprefix("params/")  # noqa: E731
        report = {"run_dir": str(self.run_dir),
                  **{k: [{**d, "path": short(d["path"])} for d in v] if k == "skipped" else [short(p) for p in v]
                     for k, v in report.items()}}
        self.transfer_report.clear()
        self.transfer_report.update(report)
        return {**state, "params": weights["params"], "model_state": weights["model_state"]}


def scale_by_groups(params_shape, groups) -> optax.GradientTransformation:
    """Multiply each parameter's update by the `learning_rate_scale` of the first group whose glob matches."""
    def scale_of(path, _):
        p = "/".join(str(getattr(k, "key", k)) for k in path)
        return next((g.learning_rate_scale for g in groups if fnmatch.fnmatchcase(p, g.params)), 1.0)

    scales = jax.tree_util.tree_map_with_path(scale_of, params_shape)

    def update(updates, state, params=None):
        return jax.tree.map(lambda u, s: u * s, updates, scales), state

    return optax.GradientTransformation(lambda p: optax.EmptyState(), update)
