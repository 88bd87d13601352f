"""The run directory: everything needed to rebuild, evaluate, predict and resume, and nothing executable.

    spec.yaml          the resolved spec (every default filled in); `nnctl eval` rebuilds the model from it
    weights.msgpack    parameters and model state (batch-norm statistics), flax msgpack (no pickle)
    opt_state.msgpack  optimizer state
    scalers.json       normalisation statistics of inputs and targets
    rng.json           seed and the epoch/step reached (each epoch's randomness is derived from them)
    data.json          the data's fingerprint (sha256 of the examples as read, row count), task, classes
    split.npz          the split's example indices and, when small, the test examples (nnctl.app.provenance)
    metrics.jsonl      one line per epoch: losses, metrics, lr, grad_norm... (no wall-clock time: two runs of
                       the same spec and seed on the same machine write identical files)
    timing.jsonl       seconds per epoch (kept apart from metrics.jsonl so that stays deterministic)
    metrics.csv        with train.log: [csv] (same names as metrics.jsonl, plus time)
    tb/                with train.log: [tensorboard] (tensorboardX event files, same names)
    run.json           start time, pid and host (how `nnctl runs` tells a live run from a dead one)
    checkpoints/       periodic checkpoints and the best weights (nnctl.checkpoint)
    summary.json       status, stop reason, best epoch/value, times, final metrics

Files are written to a temporary name, flushed and renamed, so a crash never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np
import yaml
from flax import serialization

from nnctl.errors import RunDirError

SPEC = "spec.yaml"
WEIGHTS = "weights.msgpack"
OPT_STATE = "opt_state.msgpack"
SCALERS = "scalers.json"
SUMMARY = "summary.json"
METRICS = "metrics.jsonl"
RNG = "rng.json"
TIMING = "timing.jsonl"
RUN = "run.json"


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _fsync_dir(d: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def new_run_dir(out: str | None, name: str, root: str = "runs") -> Path:
    """A fresh directory: `out` must not exist (never overwrite); by default runs/<name>, runs/<name>-2, ..."""
    if out is not None:
        p = Path(out)
        if p.exists() and (not p.is_dir() or any(p.iterdir())):
            raise RunDirError(
                f"run directory {p} already exists: choose another --out or remove it (nnctl never overwrites a run)"
            )
        p.mkdir(parents=True, exist_ok=True)
        return p
    base = Path(root) / name
    p, i = base, 1
    while p.exists():
        i += 1
        p = base.with_name(f"{base.name}-{i}")
    p.mkdir(parents=True)
    return p


def _to_bytes(tree: Any) -> bytes:
    return serialization.msgpack_serialize(_host(tree))


def _host(tree):
    return jax.tree.map(lambda a: np.asarray(a), jax.device_get(tree))


def write_spec(run: Path, spec: Any) -> None:
    data = spec.model_dump(mode="json", exclude_none=True)
    atomic_write(run / SPEC, yaml.safe_dump(data, sort_keys=False).encode())


def write_state(run: Path, weights: dict, opt_state: Any, scalers: dict, rng: dict) -> None:
    atomic_write(run / WEIGHTS, _to_bytes(weights))
    atomic_write(run / OPT_STATE, _to_bytes(serialization.to_state_dict(opt_state)))
    write_json(run / SCALERS, scalers)
    write_json(run / RNG, rng)


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, default=_json_default) + "\n").encode())


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


def read_msgpack(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RunDirError(f"{path} is missing: is this a finished nnctl run directory?") from None
    try:
        return serialization.msgpack_restore(data)
    except Exception as e:  # corrupt or truncated file
        raise RunDirError(f"{path} is corrupt or truncated ({type(e).__name__}): it cannot be loaded") from None


def restore_into(template: Any, saved: Any, what: str) -> Any:
    """Saved arrays placed into a template tree; any difference in structure or shape is an error."""
    flat_t = {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_flatten_with_path(template)[0]}
    flat_s = {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_flatten_with_path(saved)[0]}
    missing, extra = sorted(set(flat_t) - set(flat_s)), sorted(set(flat_s) - set(flat_t))
    if missing or extra:
        raise RunDirError(f"{what} does not match the spec: missing {missing[:5]}, unexpected {extra[:5]}")
    for k, t in flat_t.items():
        if tuple(np.shape(flat_s[k])) != tuple(t.shape):
            raise RunDirError(f"{what}: {k} has shape {np.shape(flat_s[k])}, the spec needs {tuple(t.shape)}")
    leaves = [
        np.asarray(flat_s[jax.tree_util.keystr(p)], dtype=t.dtype)
        for p, t in jax.tree_util.tree_flatten_with_path(template)[0]
    ]
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template), leaves)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunDirError(f"{path} is missing") from None
    except json.JSONDecodeError as e:
        raise RunDirError(f"{path} is not valid JSON ({e})") from None


def check_run_dir(run: str | Path) -> Path:
    p = Path(run)
    if not p.is_dir():
        raise RunDirError(f"no such run directory: {p}")
    if not (p / SPEC).exists():
        raise RunDirError(f"{p} is not an nnctl run directory (no {SPEC})")
    return p
