"""Population training (`search.population`): members of one vmapped program end equal to separate runs with
the same values and seeds (records, stop epochs, weights, test scores); a member's own early stopping and a
pruner's stop hold for it alone; spaces with shape-changing paths are refused (or fall back under `auto`);
a sweep's population trials are normal run directories."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import jax
import numpy as np
import pytest

from nnctl import rundir
from nnctl.app.population import Member, PopulationInterrupted, plan_groups, signature, train_group
from nnctl.app.runs import list_runs
from nnctl.app.session import train_run
from nnctl.app.sweep_space import plan_sweep
from nnctl.errors import SpecError
from nnctl.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC = """\
name: tiny
seed: 0
data: {source: builtin:iris, validation_split: 0.25, test_split: 0.2}
model:
  layers:
    - {type: dense, units: 8, activation: relu}
    - {type: dense, units: 3, activation: softmax}
train:
  loss: categorical_crossentropy
  metrics: [accuracy]
  optimizer: {type: sgd, learning_rate: 0.05, momentum: 0.5}
  weight_decay: 1.0e-4
  batch_size: 32
  epochs: 8
  early_stopping: {monitor: val_loss, patience: 3, restore_best: true}
"""
# member values: learning rate, momentum, weight decay, seed (its own data split) and patience differ
VALUES = [
    ("train.optimizer.learning_rate=0.05", "seed=0"),
    ("train.optimizer.learning_rate=0.3", "train.optimizer.momentum=0.9", "seed=3"),
    (
        "train.optimizer.learning_rate=0.01",
        "train.weight_decay=0.01",
        "train.early_stopping.patience=1",
        "train.early_stopping.min_delta=0.5",
        "seed=0",
    ),
    ("train.optimizer.learning_rate=0.02", "seed=7"),
]
COMPARED = (1, 2)  # members also trained as separate runs (own data split and momentum; early stop and decay)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pop")
    spec = tmp / "s.yaml"
    spec.write_text(SPEC)
    stop_at = {3: 2}  # member 3's callback stops it after epoch 2 (a pruner)
    members = [
        Member(tmp / f"p{i}", ov, (lambda r, i=i: r["epoch"] >= stop_at.get(i, 10**9))) for i, ov in enumerate(VALUES)
    ]
    groups, errors = plan_groups(str(spec), [m.overrides for m in members])
    assert not errors and len(groups) == 1 and groups[0].blocker is None
    pop = train_group(str(spec), groups[0], members)
    seq = [train_run(str(spec), str(tmp / f"s{i}"), VALUES[i]) for i in COMPARED]
    return pop, seq


def test_members_equal_separate_runs(runs):
    pop, seq = runs
    statuses = [r.summary["status"] for r in pop]
    assert statuses[:3] == ["finished", "finished", "stopped_early"]  # member 2 stops on its own
    assert [s.summary["status"] for s in seq] == [statuses[i] for i in COMPARED]
    for p, s in zip([pop[i] for i in COMPARED], seq):
        assert len(p.records) == len(s.records)
        for key in ("train/loss", "val/loss", "val/accuracy", "grad_norm", "lr"):
            np.testing.assert_allclose([r[key] for r in p.records], [r[key] for r in s.records], rtol=1e-5, atol=1e-7)
        assert p.summary["best_epoch"] == s.summary["best_epoch"]
        wp = rundir.read_msgpack(p.run_dir / rundir.WEIGHTS)
        ws = rundir.read_msgpack(s.run_dir / rundir.WEIGHTS)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), wp, ws)
        tp, ts = p.summary["test"]["metrics"], s.summary["test"]["metrics"]
        assert tp == pytest.approx(ts, rel=1e-5)
        assert p.summary["population"]["size"] == 4


def test_a_stopped_member_is_pruned_alone(runs):
    pop, _ = runs
    pruned = pop[3]
    assert pruned.summary["status"] == "pruned" and [r["epoch"] for r in pruned.records] == [1, 2]
    assert not (pruned.run_dir / rundir.WEIGHTS).exists()  # like a pruned sequential trial
    assert len(rundir.read_json(pruned.run_dir / rundir.SUMMARY)) and (pruned.run_dir / "spec.yaml").exists()


def test_a_signal_stops_the_population_and_marks_its_members(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SPEC)

    def signal_at_first_epoch(r: dict) -> bool:
        if r["epoch"] == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return False

    members = [
        Member(tmp_path / f"p{i}", ov, signal_at_first_epoch if i == 0 else Member.on_epoch)
        for i, ov in enumerate(VALUES)
    ]
    groups, _ = plan_groups(str(f), [m.overrides for m in members])
    with pytest.raises(PopulationInterrupted) as e:
        train_group(str(f), groups[0], members)
    assert e.value.exit_code == 130 and len(e.value.results) == 4
    for r in e.value.results:
        assert rundir.read_json(r.run_dir / rundir.SUMMARY)["status"] == "interrupted"
        assert r.records and (r.run_dir / "metrics.jsonl").exists()


def test_signature_ignores_runtime_values_only(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SPEC)
    base = signature(load_spec(str(f)).spec)
    assert signature(load_spec(str(f), VALUES[2]).spec) == base
    assert signature(load_spec(str(f), ("model.layers[0].units=9",)).spec) != base
    assert signature(load_spec(str(f), ("train.weight_decay=0",)).spec) != base  # a zero drops a link


ADAM_DROPOUT = SPEC.replace(
    "    - {type: dense, units: 3", "    - {type: dropout, rate: 0.2}\n    - {type: dense, units: 3"
).replace("{type: sgd, learning_rate: 0.05, momentum: 0.5}", "{type: adam, learning_rate: 0.01}")


def test_betas_and_dropout_rates_are_population_values(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(ADAM_DROPOUT)
    base = signature(load_spec(str(f)).spec)
    changed = ("train.optimizer.b1=0.8", "train.optimizer.b2=0.99", "model.layers[1].rate=0.4")
    assert signature(load_spec(str(f), changed).spec) == base
    assert signature(load_spec(str(f), ("model.layers[1].rate=0",)).spec) != base  # a zero removes the dropout


@pytest.mark.slow
def test_members_differing_in_betas_and_dropout_equal_separate_runs(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(ADAM_DROPOUT)
    values = [("train.optimizer.b2=0.99", "model.layers[1].rate=0.4"), ("train.optimizer.b1=0.7",)]
    members = [Member(tmp_path / f"p{i}", ov) for i, ov in enumerate(values)]
    groups, errors = plan_groups(str(f), values)
    assert not errors and len(groups) == 1 and groups[0].blocker is None
    pop = train_group(str(f), groups[0], members)
    alone = train_run(str(f), str(tmp_path / "s0"), values[0])
    assert len(pop[0].records) == len(alone.records) > 0
    for key in ("train/loss", "val/loss", "grad_norm"):
        got, want = [r[key] for r in pop[0].records], [r[key] for r in alone.records]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


SWEEP = (
    SPEC
    + """\
search:
  metric: val_accuracy
  sampler: random
  trials: 4
  population: POPULATION
  space:
    train.optimizer.learning_rate: {float: [1.0e-3, 1.0e-1], log: true}
    PATH: DIST
"""
)


def _sweep(population, path, dist) -> str:
    return SWEEP.replace("POPULATION", str(population)).replace("PATH", path).replace("DIST", dist)


def _plan(tmp_path, population, path="seed", dist="{int: [0, 9]}"):
    f = tmp_path / "s.yaml"
    f.write_text(_sweep(population, path, dist))
    return plan_sweep(str(f))


def test_shape_changing_paths_are_refused_or_fall_back(tmp_path):
    with pytest.raises(SpecError) as e:
        _plan(tmp_path, 4, "model.layers[0].units", "{int: [4, 16]}")
    assert "search.space.model.layers[0].units" in str(e.value) and "forces sequential trials" in str(e.value)
    auto = _plan(tmp_path, "auto", "train.batch_size", "{choice: [16, 32]}")
    assert auto.population == 1 and "train.batch_size changes the compiled program" in (auto.population_note or "")
    ok = _plan(tmp_path, "auto")
    assert ok.population == 4 and ok.population_note is None  # min(16, trials)


def test_sweep_trains_a_population_of_run_directories(tmp_path):
    pytest.importorskip("optuna", reason="nnctl sweep needs the sweep extra (optuna)")
    from nnctl.app.restore import evaluate_run
    from nnctl.app.sweep import run_sweep

    f = tmp_path / "s.yaml"
    f.write_text(_sweep(4, "seed", "{int: [0, 9]}"))
    res = run_sweep(str(f), str(tmp_path / "sw"))
    assert res.progress.done == 4 and res.best is not None and res.population == 4
    runs = list_runs(tmp_path / "sw")
    assert len(runs) == 4 and {r["status"] for r in runs} <= {"finished", "stopped_early"}
    summaries = [rundir.read_json(tmp_path / "sw" / f"trial-{i:04d}" / rundir.SUMMARY) for i in range(4)]
    assert all(s["population"]["size"] == 4 for s in summaries)
    assert (tmp_path / "sw" / "best.yaml").exists() and (tmp_path / "sw" / "trials.csv").exists()
    best = Path(res.best["run_dir"])
    scored = evaluate_run(best)
    assert scored["metrics"]["accuracy"] == pytest.approx(
        rundir.read_json(best / rundir.SUMMARY)["test"]["metrics"]["accuracy"]
    )
