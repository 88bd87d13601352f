"""Checkpoints: the whole training carry at an epoch boundary, so a resumed run continues bit for bit.

A checkpoint is one msgpack file (flax.serialization: numpy arrays and plain values, never pickle):

    {"format": "nnctl-checkpoint", "version": 1,
     "meta":  {"epoch", "step", "seed", "spec_sha256", "created", "compile_seconds", "train_seconds", ...},
     "carry": {"['state']['params']['Dense_0']['kernel']": array, ...}}

`carry` is the loop's carry flattened by key path: parameters, model state (batch-norm statistics),
optimizer state, step counter, early-stopping state, the best and last-good weight snapshots and the stop
flags. Nothing else is needed: the data order and every random draw of epoch `e` are derived from
(seed, e) (`Loop.epoch_key`), and the seed is in the spec.

Files (under RUN_DIR/checkpoints/):

    ckpt-000010.msgpack   periodic checkpoint after epoch 10 (the newest `keep` are kept)
    best.msgpack          weights of the best epoch so far, with its epoch and monitored value

Each file is written to a temporary name, fsynced, renamed over the target and the directory fsynced
(`sums.atomic_write`): a process killed at any instant leaves either the old or the new file, never a
half-written one. A left-over temporary file is ignored and removed on resume. Each file's SHA-256 is in
checkpoints/SHA256SUMS (nnctl.sums): a damaged newest checkpoint is skipped on resume for the previous one.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

from nnctl import rundir, sums
from nnctl.errors import RunDirError

DIR = "checkpoints"
FORMAT = "nnctl-checkpoint"
VERSION = 2  # 2: the carry is a typed pytree (paths like .state.step); 1 (nnctl 0.1): nested dicts
BEST = "best.msgpack"
_NAME = re.compile(r"^ckpt-(\d{6,})\.msgpack$")


def spec_hash(spec: Any) -> str:
    """Fingerprint of a resolved spec: a checkpoint is only resumed under the spec it was written for."""
    doc = spec.model_dump(mode="json", exclude_none=True)
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def flatten(tree: Any) -> dict[str, np.ndarray]:
    leaves = jax.tree_util.tree_flatten_with_path(jax.device_get(tree))[0]
    return {jax.tree_util.keystr(p): np.asarray(v) for p, v in leaves}


def unflatten_into(template: Any, flat: object, what: str) -> Any:
    """Saved arrays placed into `template` (a tree of arrays or ShapeDtypeStructs); structure, shapes and
    dtypes must match exactly."""
    if not isinstance(flat, dict):
        raise RunDirError(f"{what} is malformed: no arrays in it")
    paths = jax.tree_util.tree_flatten_with_path(template)[0]
    want = {jax.tree_util.keystr(p): t for p, t in paths}
    missing, extra = sorted(set(want) - set(flat)), sorted(set(flat) - set(want))
    if missing or extra:
        raise RunDirError(
            f"{what} does not match this spec's model/optimizer (was it written for a different "
            f"spec?): missing {missing[:3]}, unexpected {extra[:3]}"
        )
    leaves = []
    for k, t in want.items():
        a = flat[k]
        if not isinstance(a, np.ndarray):
            a = np.asarray(a)
        if tuple(a.shape) != tuple(t.shape) or np.dtype(a.dtype) != np.dtype(t.dtype):
            raise RunDirError(
                f"{what}: {k} is {a.dtype}{list(a.shape)}, this spec needs "
                f"{np.dtype(t.dtype)}{list(t.shape)} (was it written for a different spec?)"
            )
        leaves.append(a)
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template), leaves)


def _dump(doc: dict) -> bytes:
    return serialization.msgpack_serialize(doc)


def _load(path: Path) -> dict:
    doc = rundir.read_msgpack(path)  # missing / corrupt / truncated -> RunDirError
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise RunDirError(f"{path} is not an nnctl checkpoint")
    if doc.get("version") != VERSION:
        raise RunDirError(f"{path} has checkpoint format version {doc.get('version')}; this nnctl reads {VERSION}")
    return doc


# ----------------------------------------------------------------------------------------- writing


class Checkpointer:
    """Writes periodic checkpoints (keeping the newest `keep`) and the best weights of a run."""

    def __init__(self, run: Path, spec: Any, every: int | None, keep: int = 3):
        self.dir = Path(run) / DIR
        self.every, self.keep = every, keep
        self.meta = {"seed": spec.seed, "spec_sha256": spec_hash(spec)}
        self.best_written = -1
        self.before_save: Callable[[], None] | None = None  # e.g. flush the logs up to this epoch first

    def due(self, epoch: int) -> bool:
        return bool(self.every and epoch > 0 and epoch % self.every == 0)

    def save(self, carry: Any, extra: dict | None = None) -> Path:
        """Write the loop carry (nnctl.engine.state.Carry) of the epoch it has reached; returns the file."""
        if self.before_save is not None:
            self.before_save()
        epoch = int(carry.epoch)
        flat = flatten(carry)
        meta = {
            **self.meta,
            "epoch": epoch,
            "step": int(carry.state.step),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **(extra or {}),
        }
        path = self.dir / f"ckpt-{epoch:06d}.msgpack"
        sums.save(path, _dump({"format": FORMAT, "version": VERSION, "meta": meta, "carry": flat}))
        self._save_best(carry, flat)
        self._prune()
        return path

    def _save_best(self, carry: Any, flat: dict) -> None:
        best_epoch = int(carry.es.best_epoch)
        if best_epoch < 0 or best_epoch == self.best_written:
            return
        weights = {k[len(".best") :]: v for k, v in flat.items() if k.startswith(".best[")}
        meta = {**self.meta, "epoch": best_epoch + 1, "value": float(carry.es.best)}
        sums.save(self.dir / BEST, _dump({"format": FORMAT, "version": VERSION, "meta": meta, "weights": weights}))
        self.best_written = best_epoch

    def _prune(self) -> None:
        ckpts = list_checkpoints(self.dir.parent)
        for _, p in ckpts[: max(0, len(ckpts) - self.keep)]:
            sums.forget(p)


# ----------------------------------------------------------------------------------------- reading


def list_checkpoints(run: Path) -> list[tuple[int, Path]]:
    """(epoch, path) of the periodic checkpoints of a run, oldest first (temporary files are ignored)."""
    d = Path(run) / DIR
    if not d.is_dir():
        return []
    out = []
    for p in d.iterdir():
        m = _NAME.match(p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def clean_temporaries(run: Path) -> None:
    for d in (Path(run), Path(run) / DIR):
        if d.is_dir():
            for p in d.glob(".*.tmp"):
                p.unlink(missing_ok=True)


def load_latest(run: Path, carry_template: Any, spec: Any) -> tuple[Any, dict, list[str]]:
    """The carry and metadata of the newest good checkpoint, checked against the spec's model and hash, and
    notes on the newer ones skipped because they are damaged (checksum, truncation, not a checkpoint)."""
    ckpts = list_checkpoints(run)
    if not ckpts:
        raise RunDirError(
            f"{run} has no checkpoint to resume from (set train.checkpoint: {{every_epochs: N}} "
            f"to write them periodically; an interrupted run writes one when it stops)"
        )
    notes: list[str] = []
    for i in range(len(ckpts) - 1, -1, -1):
        path = ckpts[i][1]
        try:
            doc = _load(path)
        except RunDirError as e:
            if i == 0:
                more = f" (and {len(notes)} newer damaged checkpoint(s))" if notes else ""
                raise RunDirError(f"{e}{more}; no earlier checkpoint is left to resume from") from None
            notes.append(f"{e}: resuming from the previous checkpoint, {ckpts[i - 1][1].name}, instead")
            continue
        carry, meta = _check(doc, path, carry_template, spec)
        return carry, meta, notes
    raise AssertionError("unreachable")


def load(path: Path, carry_template: Any, spec: Any) -> tuple[Any, dict]:
    return _check(_load(path), path, carry_template, spec)


def _check(doc: dict, path: Path, carry_template: Any, spec: Any) -> tuple[Any, dict]:
    meta = doc.get("meta") or {}
    if meta.get("spec_sha256") != spec_hash(spec):
        raise RunDirError(
            f"{path} was written for a different spec than {Path(path).parent.parent / rundir.SPEC} "
            f"(the spec was edited, or the checkpoint comes from another run): cannot resume"
        )
    carry = unflatten_into(carry_template, doc.get("carry"), str(path))
    return carry, meta


def load_best(run: Path) -> tuple[dict, dict]:
    doc = _load(Path(run) / DIR / BEST)
    return doc["weights"], doc["meta"]
