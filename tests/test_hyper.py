"""Hyperparameters are inputs of the compiled programs: two specs that differ only in the learning rate,
schedule values, weight decay, momentum, eps, seed, epoch count or early-stopping settings lower to the same
program text (so the persistent cache serves the second), and a changed shape does not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from nnctl.app.builder import build
from nnctl.app.fitting import CAPACITY
from nnctl.app.hyper import lift, runtime_values
from nnctl.data.prepare import prepare
from nnctl.engine.compiled import steps_fns
from nnctl.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
IRIS = str(ROOT / "specs" / "iris.yaml")
BASE = ("train.epochs=20",)


def built(*overrides: str):
    loaded = load_spec(IRIS, BASE + overrides)
    return build(loaded, prepare(loaded.spec, loaded.analysis, loaded.base_dir))


def programs(b) -> tuple[str, str, str]:
    """The text of the init program, the fused multi-epoch program and the one-step program."""
    make, shape = b.lifted(), tuple(b.data.input_shape)
    init = jax.jit(lambda hp: make(hp).start(shape)).lower(b.hp)
    carry = jax.eval_shape(lambda hp: make(hp).start(shape), b.hp)
    data = (jnp.asarray(b.data.x_train), jnp.asarray(b.data.y_train))
    val = (jnp.asarray(b.data.x_val), jnp.asarray(b.data.y_val))
    chunk = jax.jit(lambda hp, c, tr, va, lim: make(hp).chunk(c, tr, va, lim, CAPACITY)).lower(
        b.hp, carry, data, val, jnp.int32(b.epochs)
    )
    fns = steps_fns(b.loop, make, b.hp)
    idx, mask = fns.perm(jnp.int32(0))
    sums, counters = fns.sums0()
    step = fns.train.func.lower(b.hp, carry.state, sums, counters, data, idx, mask, jnp.int32(0), 0)
    return init.as_text(), chunk.as_text(), step.as_text()


@pytest.fixture(scope="module")
def reference():
    return programs(built())


@pytest.mark.parametrize(
    "overrides",
    [
        ("train.optimizer.learning_rate=0.003", "seed=11", "train.epochs=35", "train.optimizer.eps=1e-6"),
        ("train.early_stopping.patience=3", "train.early_stopping.min_delta=0.01"),
    ],
)
def test_runtime_values_do_not_change_the_programs(reference, overrides):
    assert programs(built(*overrides)) == reference


def test_schedule_momentum_and_weight_decay_are_inputs():
    sched = "train.optimizer={type: sgd, momentum: 0.9, learning_rate: {type: step, initial: 0.05, every_epochs: 5}}"
    a = programs(built(sched, "train.weight_decay=1e-3"))
    other = sched.replace("0.9", "0.8").replace("0.05", "0.2") + ""
    assert programs(built(other, "train.weight_decay=5e-3")) == a


def test_shapes_still_compile(reference):
    assert programs(built("train.batch_size=8"))[1] != reference[1]


def test_lift_replaces_only_the_listed_options():
    spec = load_spec(IRIS, BASE + ("train.weight_decay=1e-3",)).spec
    values = runtime_values(spec)
    assert set(values) == {"train.weight_decay", "train.optimizer.learning_rate", "train.optimizer.eps"}
    lifted = lift(spec, dict.fromkeys(values, 2.0))
    assert lifted.train.optimizer.learning_rate == 2.0 and lifted.train.optimizer.b1 == spec.train.optimizer.b1
    assert lifted.train.weight_decay == 2.0 and lifted.model == spec.model


def _train(tmp_path: Path, cache: Path, name: str, *sets: str) -> dict:
    env = {**os.environ, "NNCTL_CACHE_DIR": str(cache)}
    args = [a for s in sets for a in ("--set", s)]
    cmd = [sys.executable, "-m", "nnctl", "train", IRIS, "--out", str(tmp_path / name), "--json", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out)


@pytest.mark.slow
def test_second_run_with_new_learning_rate_is_served_by_the_cache(tmp_path):
    cache = tmp_path / "cache"
    cold = _train(tmp_path, cache, "a", "train.epochs=30", "train.optimizer.learning_rate=0.01")
    warm = _train(tmp_path, cache, "b", "train.epochs=45", "train.optimizer.learning_rate=0.002", "seed=3")
    assert cold["compile_cache"]["from_cache"] == 0
    assert warm["compile_cache"]["from_cache"] == warm["compile_cache"]["programs"] > 0
    assert warm["compile_seconds"] < 0.5 * cold["compile_seconds"]
