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
    SHA256SUMS         SHA-256 of every file above that is read back (nnctl.sums; checkpoints/ has its own)
    .lock              claimed with O_EXCL when the directory is created; flock-ed while a process writes

Files are written to a temporary name, flushed and renamed, so a crash never leaves a half-written file; the
files read back are checksummed (`sums.save`) and checked on every read (`read_bytes`).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
import yaml
from flax import serialization

from nnctl import strictjson, sums
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
LOCK = ".lock"


class RunNote(UserWarning):
    """Something a command did that the user must hear about but that is not an error (the CLI prints it
    as `warning: ...`), e.g. a damaged checkpoint skipped on resume."""


class RunLock:
    """An exclusive `flock` on RUN_DIR/.lock, held while a process writes the run (training or resuming).
    The kernel drops it when the process ends, however it ends: a lock is never stale."""

    def __init__(self, run: Path, fd: int):
        self.run, self.fd = run, fd

    @classmethod
    def take(cls, run: Path, fd: int | None = None) -> RunLock:
        path = Path(run) / LOCK
        if fd is None:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise RunDirError(f"cannot open {path}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunDirError(
                    f"{run} is being written by another nnctl process ({_holder(path)}): wait for it to end, "
                    f"or stop it first"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return cls(Path(run), fd)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = -1


def _holder(path: Path) -> str:
    try:
        return f"pid {int(path.read_text().strip())}"
    except (OSError, ValueError):
        return "pid unknown"


def is_locked(run: Path) -> bool:
    """Whether a live process holds the run's lock (its writer is running)."""
    try:
        fd = os.open(Path(run) / LOCK, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def _claim(p: Path) -> RunLock | None:
    """Create RUN_DIR/.lock exclusively (O_EXCL) and lock it; None when another process claimed `p` first."""
    try:
        fd = os.open(p / LOCK, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return None
    return RunLock.take(p, fd)


def new_run_dir(out: str | None, name: str, root: str = "runs") -> tuple[Path, RunLock]:
    """A fresh directory, claimed atomically and locked: `out` must not exist or be empty (never overwrite);
    by default runs/<name>, runs/<name>-2, ... (the next free name when two processes race for one).

    Raises:
        RunDirError: `out` is taken, or cannot be created (a file on the way, no permission, disk full...).
    """
    taken = "choose another --out or remove it (nnctl never overwrites a run)"
    try:
        if out is not None:
            p = Path(out)
            p.parent.mkdir(parents=True, exist_ok=True)
            try:
                p.mkdir()
            except FileExistsError:
                if not p.is_dir() or any(n.name != LOCK for n in p.iterdir()):
                    raise RunDirError(f"run directory {p} already exists: {taken}") from None
            lock = _claim(p)
            if lock is None:
                raise RunDirError(f"run directory {p} was just taken by another nnctl process: {taken}")
            return p, lock
        base = Path(root) / name
        base.parent.mkdir(parents=True, exist_ok=True)
        for i in range(1, 1_000_000):
            p = base if i == 1 else base.with_name(f"{base.name}-{i}")
            try:
                p.mkdir()
            except FileExistsError:
                continue
            lock = _claim(p)
            if lock is not None:
                return p, lock
        raise RunDirError(f"no free run directory name under {base.parent}")
    except OSError as e:
        raise RunDirError(f"cannot create the run directory: {e.strerror}: {e.filename}") from None


def _to_bytes(tree: Any) -> bytes:
    return serialization.msgpack_serialize(_host(tree))


def _host(tree):
    return jax.tree.map(lambda a: np.asarray(a), jax.device_get(tree))


def atomic_write(path: Path, data: bytes) -> None:
    """Write a file of a run that is read back later: atomically, with its SHA-256 in its directory's
    SHA256SUMS (nnctl.sums.save), so every read checks it. Any new kind of run file goes through here (or
    `write_json`). Files that are appended to afterwards (the logs) use `sums.atomic_write` instead."""
    sums.save(path, data)


def write_spec(run: Path, spec: Any) -> None:
    data = spec.model_dump(mode="json", exclude_none=True)
    sums.save(run / SPEC, yaml.safe_dump(data, sort_keys=False).encode())


def write_state(run: Path, weights: dict, opt_state: Any, scalers: dict, rng: dict) -> None:
    sums.save(run / WEIGHTS, _to_bytes(weights))
    sums.save(run / OPT_STATE, _to_bytes(serialization.to_state_dict(opt_state)))
    write_json(run / SCALERS, scalers)
    write_json(run / RNG, rng)


def write_json(path: Path, obj: Any) -> None:
    """A JSON file of the run, checksummed; non-finite numbers as strict JSON (nnctl.strictjson)."""
    sums.save(path, (strictjson.dumps(obj, indent=2, default=_json_default) + "\n").encode())


def read_bytes(path: Path, what: str = "") -> bytes:
    """A file of a run, checked against its SHA-256 manifest (nnctl.sums); missing or unreadable: RunDirError."""
    try:
        return sums.load(path)
    except FileNotFoundError:
        raise RunDirError(f"{path} is missing{what}") from None
    except IsADirectoryError:
        raise RunDirError(f"{path} is a directory, not a file") from None
    except OSError as e:
        raise RunDirError(f"cannot read {path}: {e.strerror}") from None


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


def read_msgpack(path: Path) -> Any:
    data = read_bytes(path, ": is this a finished nnctl run directory?")
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
    data = read_bytes(path)
    try:
        return strictjson.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunDirError(f"{path} is not valid JSON ({e})") from None


def check_run_dir(run: str | Path) -> Path:
    p = Path(run)
    if not p.is_dir():
        raise RunDirError(f"no such run directory: {p}")
    if not (p / SPEC).exists():
        raise RunDirError(f"{p} is not an nnctl run directory (no {SPEC})")
    return p
