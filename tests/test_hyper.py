"""Hyperparameters are inputs of the compiled programs: two specs that differ only in the learning rate,
schedule values, weight decay, momentum, eps, betas, decays, dropout rates, seed, epoch count or early-stopping
settings lower to the same program text (so the persistent cache serves the second), and a changed shape does
not. The betas, decays and dropout rates read as inputs give the bits of the same values compiled in."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnctl.app.builder import build
from nnctl.app.fitting import CAPACITY, fit
from nnctl.app.hyper import lift, runtime_values
from nnctl.data.prepare import prepare
from nnctl.engine.compiled import steps_fns
from nnctl.rate import Rate
from nnctl.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
IRIS = str(ROOT / "specs" / "iris.yaml")
BASE = ("train.epochs=20",)


def built(*overrides: str):
    loaded = load_spec(IRIS, BASE + overrides)
    return build(loaded, prepare(loaded.spec, loaded.analysis, loaded.base_dir))


def programs(b, chunk: bool = True) -> tuple[str, ...]:
    """The text of the init program, the one-step program and (chunk) the fused multi-epoch program."""
    make, shape = b.lifted(), tuple(b.data.input_shape)
    init = jax.jit(lambda hp: make(hp).start(shape)).lower(b.hp)
    carry = jax.eval_shape(lambda hp: make(hp).start(shape), b.hp)
    data = (jnp.asarray(b.data.x_train), jnp.asarray(b.data.y_train))
    val = (jnp.asarray(b.data.x_val), jnp.asarray(b.data.y_val))
    fns = steps_fns(b.loop, make, b.hp)
    idx, mask = fns.perm(jnp.int32(0))
    sums, counters = fns.sums0()
    step = fns.train.func.lower(b.hp, carry.state, sums, counters, data, idx, mask, jnp.int32(0), 0)
    if not chunk:
        return init.as_text(), step.as_text()
    fused = jax.jit(lambda hp, c, tr, va, lim: make(hp).chunk(c, tr, va, lim, CAPACITY)).lower(
        b.hp, carry, data, val, jnp.int32(b.epochs)
    )
    return init.as_text(), step.as_text(), fused.as_text()


@pytest.fixture(scope="module")
def reference():
    return programs(built())


@pytest.mark.parametrize(
    "overrides",
    [
        ("train.optimizer.learning_rate=0.003", "seed=11", "train.epochs=35", "train.optimizer.eps=1e-6"),
        ("train.early_stopping.patience=3", "train.early_stopping.min_delta=0.01"),
        ("train.optimizer.b1=0.8", "train.optimizer.b2=0.99", "model.layers[1].rate=0.35"),
    ],
)
def test_runtime_values_do_not_change_the_programs(reference, overrides):
    assert programs(built(*overrides)) == reference


def test_schedule_momentum_and_weight_decay_are_inputs():
    sched = "train.optimizer={type: sgd, momentum: 0.9, learning_rate: {type: step, initial: 0.05, every_epochs: 5}}"
    a = programs(built(sched, "train.weight_decay=1e-3"))
    other = sched.replace("0.9", "0.8").replace("0.05", "0.2") + ""
    assert programs(built(other, "train.weight_decay=5e-3")) == a


LAYERS = (
    "model.layers=[{type: dense, units: 16, activation: relu}, {type: batch_norm, momentum: 0.9}, "
    "{type: dropout, rate: 0.3}, {type: dense, units: 3, activation: softmax}]"
)


def _same_programs(override: str, changed: tuple[str, str]) -> None:
    a = programs(built(override), chunk=False)
    assert programs(built(override.replace(*changed)), chunk=False) == a, override


def test_rmsprop_decay_is_an_input():
    _same_programs("train.optimizer={type: rmsprop, decay: 0.9, centered: true, momentum: 0.5}", ("0.9", "0.95"))


@pytest.mark.slow
def test_other_fractions_are_inputs():
    """lion's betas, adadelta's rho, momentum_ema's momentum, batch_norm's momentum (init and step programs)."""
    _same_programs("train.optimizer={type: lion, b1: 0.9, b2: 0.99}", ("0.99", "0.98"))
    _same_programs("train.optimizer={type: adadelta, rho: 0.9}", ("0.9", "0.8"))
    _same_programs("train.optimizer={type: momentum_ema, momentum: 0.9}", ("0.9", "0.7"))
    _same_programs(LAYERS, ("momentum: 0.9", "momentum: 0.95"))


def test_a_zero_dropout_rate_stays_compiled_in(reference):
    assert programs(built("model.layers[1].rate=0"), chunk=False)[1] != reference[1]


def test_shapes_still_compile(reference):
    assert programs(built("train.batch_size=8"))[2] != reference[2]


def test_lift_replaces_only_the_listed_options():
    spec = load_spec(IRIS, BASE + ("train.weight_decay=1e-3",)).spec
    values = runtime_values(spec)
    opt = ("learning_rate", "eps", "b1", "b2")
    assert set(values) == {"train.weight_decay", "model.layers[1].rate", *(f"train.optimizer.{f}" for f in opt)}
    assert values["train.optimizer.b2"] == Rate(np.float32(0.999), np.float32(1 - 0.999))  # 1 - b in float64
    lifted = lift(spec, {k: 2.0 for k in values if "b1" not in k})
    assert lifted.train.optimizer.learning_rate == 2.0 and lifted.train.optimizer.b1 == spec.train.optimizer.b1
    assert lifted.train.weight_decay == 2.0 and lifted.model.layers[1].rate == 2.0
    assert lifted.model.layers[0] is spec.model.layers[0] and spec.model.layers[1].rate == 0.2


def test_betas_and_dropout_as_inputs_give_the_compiled_in_bits():
    """The same spec trained with b1, b2 and the dropout rate read as inputs (`Rate`) and compiled in (left
    out of the lifted values, so the objective sees the Python floats): the records are bit-identical."""
    b = built("train.epochs=4", "train.optimizer.b1=0.85", "model.layers[1].rate=0.3")
    inputs = {k: v for k, v in b.hp["spec"].items() if not isinstance(v, Rate)}
    assert len(inputs) == len(b.hp["spec"]) - 3
    constants = dataclasses.replace(b, hp={**b.hp, "spec": inputs})
    runs = [[{k: v for k, v in r.items() if k != "time"} for r in fit(x).records] for x in (b, constants)]
    assert len(runs[0]) == 4 and runs[0] == runs[1]


def test_attention_dropout_is_an_input_with_the_compiled_in_bits():
    """multi_head_attention's dropout: another rate gives the same programs, and read as an input it gives the
    records of the same rate compiled in (Flax's attention dropout, fed a `Rate`)."""

    def attention(*sets: str):
        loaded = load_spec(str(ROOT / "specs" / "majority_attention.yaml"), ("train.epochs=2", *sets))
        return build(loaded, prepare(loaded.spec, loaded.analysis, loaded.base_dir))

    b = attention("model.layers[2].dropout=0.25")
    assert isinstance(b.hp["spec"]["model.layers[2].dropout"], Rate)
    assert programs(attention("model.layers[2].dropout=0.4"), chunk=False) == programs(b, chunk=False)
    inputs = {k: v for k, v in b.hp["spec"].items() if k != "model.layers[2].dropout"}
    constants = dataclasses.replace(b, hp={**b.hp, "spec": inputs})
    runs = [[{k: v for k, v in r.items() if k != "time"} for r in fit(x).records] for x in (b, constants)]
    without = [r["train/loss"] for r in fit(attention()).records]
    assert runs[0] == runs[1] and [r["train/loss"] for r in runs[0]] != without  # the dropout is applied


def test_a_rate_answers_only_greater_than_zero():
    assert Rate.of(0.3) > 0 and Rate.of(0.3) > 0.0
    with pytest.raises(TypeError, match="compared with 0 only"):
        _ = Rate.of(0.3) > 0.2


def _train(tmp_path: Path, cache: Path, name: str, *sets: str) -> dict:
    env = {**os.environ, "NNCTL_CACHE_DIR": str(cache)}
    args = [a for s in sets for a in ("--set", s)]
    cmd = [sys.executable, "-m", "nnctl", "train", IRIS, "--out", str(tmp_path / name), "--json", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out)


@pytest.mark.slow
def test_second_run_with_new_hyperparameters_is_served_by_the_cache(tmp_path):
    cache = tmp_path / "cache"
    cold = _train(tmp_path, cache, "a", "train.epochs=30", "train.optimizer.learning_rate=0.01")
    warm = _train(
        tmp_path,
        cache,
        "b",
        *("train.epochs=45", "train.optimizer.learning_rate=0.002", "seed=3"),
        *("train.optimizer.b2=0.99", "train.optimizer.b1=0.8", "model.layers[1].rate=0.35"),
    )
    assert cold["compile_cache"]["from_cache"] == 0
    assert warm["compile_cache"]["from_cache"] == warm["compile_cache"]["programs"] > 0
    assert warm["compile_seconds"] < 0.5 * cold["compile_seconds"]
