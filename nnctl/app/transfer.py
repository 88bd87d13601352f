"""Transfer learning: `model.init_from: RUN_DIR` starts a run from another run's weights, copied by
parameter path (layer name + kernel/bias) where the shapes match; everything else keeps its fresh
initialisation. Combine with `train.freeze` (fixed layers) and `train.param_groups` (smaller learning rates).

`model.init_from: FILE` reads a weight file another tool wrote (a PyTorch state_dict, safetensors, a Keras
.weights.h5: `weights_files`) and maps it onto the spec by layer name (`weights_map`, docs/transfer.md);
there a layer found in the file must match it exactly, and a mismatch is a located spec error.

The source is read when training starts (not when the spec is validated or a finished run is evaluated),
and the report of what was copied, skipped (shape differs) and newly initialised goes into summary.json
under `init_from`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from nnctl import rundir
from nnctl.app.weights_files import read_weights, weights_format
from nnctl.app.weights_map import map_keras, map_torch, slots, torch_layout
from nnctl.engine.state import Carry
from nnctl.errors import SpecError
from nnctl.spec import Loaded
from nnctl.trees import flat, path_str


def source_path(src: str | Path, base_dir: Path | None = None) -> Path:
    """`model.init_from` as a path (relative: to the working directory, else to `base_dir`)."""
    p = Path(src).expanduser()
    if not p.is_absolute() and not p.exists() and base_dir is not None and (Path(base_dir) / p).exists():
        p = Path(base_dir) / p
    return p


def load_source(run_dir: str | Path, base_dir: Path | None = None) -> dict:
    """The weights of a finished run (relative paths: to the working directory, else to `base_dir`)."""
    run = rundir.check_run_dir(source_path(run_dir, base_dir))
    return rundir.read_msgpack(run / rundir.WEIGHTS)


def copy_matching(target: dict, source: dict) -> tuple[dict, dict]:
    """Target variables ({"params", "model_state"}) with source values where path and shape match;
    and the report {copied, skipped: [{path, source, target}], new, unused}."""
    src = flat(source)
    report: dict[str, list] = {"copied": [], "skipped": [], "new": [], "unused": []}

    def pick(path, leaf):
        p = path_str(path)
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


def start_from(carry: Carry, loaded: Loaded) -> tuple[Carry, dict]:
    """The initial carry with the source's weights copied in (the optimizer state stays the fresh one), and the
    report for summary.json."""
    src = loaded.spec.model.init_from
    assert src is not None
    if weights_format(src) is not None:
        weights, report = from_file(carry.state.weights(), loaded)
    else:
        weights, report = from_run(carry.state.weights(), src, loaded.base_dir)
    # dataclasses.replace is what flax's runtime-added `replace` method calls; type checkers know it
    state = dataclasses.replace(carry.state, params=weights["params"], model_state=weights["model_state"])
    copy = lambda t: jax.tree.map(jnp.copy, t)
    return dataclasses.replace(carry, state=state, best=copy(weights), good=copy(weights)), report


def from_run(target: dict, run_dir: str, base_dir: Path | None) -> tuple[dict, dict]:
    source = load_source(run_dir, base_dir)
    source = {"params": source.get("params", {}), "model_state": source.get("model_state", {})}
    weights, report = copy_matching(target, source)
    short = lambda p: p.removeprefix("params/")
    return weights, {
        "run_dir": str(run_dir),
        **{
            k: [{**d, "path": short(d["path"])} for d in v] if k == "skipped" else [short(p) for p in v]
            for k, v in report.items()
        },
    }


def from_file(target: dict, loaded: Loaded) -> tuple[dict, dict]:
    """`target` ({"params", "model_state"}) with the weight file's arrays mapped in by name, and the report."""
    src = loaded.spec.model.init_from
    assert src is not None and loaded.analysis is not None
    path = source_path(src, loaded.base_dir)

    def fail(message: str):
        raise SpecError([loaded.problem(("model", "init_from"), f"{src}: {message}")])

    fmt, contents = read_weights(path)
    layers = list(loaded.spec.model.layers or [])
    targets = slots(target, [str(layer.name) for layer in layers])
    names = dict(loaded.spec.model.init_names or {})
    if fmt == "keras":
        values, report = map_keras(contents, targets, names, fail)
    else:
        layout = torch_layout(layers, loaded.analysis.input_shape)
        values, report = map_torch(contents, targets, layout, names, fail)
    out = jax.tree_util.tree_map_with_path(
        lambda p, leaf: jnp.asarray(values[path_str(p)], leaf.dtype) if path_str(p) in values else leaf, target
    )
    return out, {"file": str(src), "format": fmt, **report}
