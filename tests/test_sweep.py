"""`nnctl sweep` end to end on tiny specs: trials are normal run directories, the sweep directory holds the
study, trials.csv/jsonl, best.yaml and plots; pruning marks a trial's run; SIGINT keeps finished trials,
marks the one in flight, and a rerun trains its values again and finishes the study."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("optuna", reason="nnctl sweep needs the sweep extra (optuna)")

import optuna

from nnctl.app.runs import list_runs
from nnctl.app.sweep import run_sweep
from nnctl.app.sweep_space import plan_sweep
from nnctl.app.sweep_study import distributions, open_storage, open_study
from nnctl.app.sweep_trial import one_trial
from nnctl.logs import read_jsonl
from nnctl.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC = """\
name: tiny
data: {source: builtin:iris, validation_split: 0.25}
model:
  layers:
    - {type: dense, units: 8, activation: relu}
    - {type: dropout, rate: 0.1}
    - {type: dense, units: 3, activation: softmax}
train:
  loss: categorical_crossentropy
  metrics: [accuracy]
  optimizer: {type: adam, learning_rate: 0.01}
  batch_size: full
  epochs: 3
search:
  metric: val_accuracy
  sampler: random
  trials: 2
  space:
    train.optimizer.learning_rate: {float: [1.0e-3, 1.0e-1], log: true}
    model.layers[1].rate: {float: [0.0, 0.5]}
"""


def test_sweep_writes_trials_best_and_plots(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SPEC)
    seen = []
    res = run_sweep(str(f), str(tmp_path / "sw"), on_progress=seen.append)
    sw = tmp_path / "sw"
    assert [p.done for p in seen] == [1, 2] and res.progress.done == 2 and res.progress.failed == 0
    rows = list(csv.DictReader((sw / "trials.csv").open()))
    assert [r["state"] for r in rows] == ["complete", "complete"]
    assert len((sw / "trials.jsonl").read_text().splitlines()) == 2
    for r in rows:  # a trial's value is its best epoch's val_accuracy, and its run directory has its values
        recs = read_jsonl(Path(r["run_dir"]) / "metrics.jsonl")
        assert float(r["value"]) == pytest.approx(max(x["val/accuracy"] for x in recs))
    best = res.best
    assert best is not None and best["value"] == max(float(r["value"]) for r in rows)
    trained = load_spec(sw / "best.yaml").spec
    assert trained.search is None
    assert trained.train.optimizer.learning_rate == pytest.approx(best["params.train.optimizer.learning_rate"])
    assert trained.model.layers[1].rate == pytest.approx(best["params.model.layers[1].rate"])
    assert trained == load_spec(best["run_dir"]).spec  # the best trial's resolved spec, trainable as is
    assert {"history.png", "slice.png", "importances.png"} <= set(res.files)
    assert all((sw / n).stat().st_size > 0 for n in res.files)
    listed = list_runs(sw)
    assert sorted(r["name"] for r in listed) == ["tiny-trial-0000", "tiny-trial-0001"]
    assert {r["status"] for r in listed} == {"finished"}
    assert json.loads((sw / "sweep.json").read_text())["best"]["trial"] == best["trial"]


def test_pruned_trial_is_marked(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SPEC)
    plan = plan_sweep(str(f), check_corners=False)
    (tmp_path / "base.yaml").write_text(json.dumps(plan.base))  # JSON is YAML
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0))
    one_trial(plan, tmp_path, study, study.ask(distributions(plan)))  # accuracy < 2: pruned after epoch 1
    t = study.trials[0]
    assert t.state == optuna.trial.TrialState.PRUNED and t.last_step == 1
    summary = json.loads((tmp_path / "trial-0000" / "summary.json").read_text())
    assert summary["status"] == "pruned" and "after epoch 1" in summary["stop_reason"]
    assert list_runs(tmp_path)[0]["status"] == "pruned"


def test_sigint_keeps_finished_trials_and_a_rerun_resumes(tmp_path):
    f = tmp_path / "s.yaml"
    spec = SPEC.replace("batch_size: full", "batch_size: 4").replace("epochs: 3", "epochs: 2")
    f.write_text(spec + "    train.epochs: {choice: [2, 3000]}\n")
    sw = tmp_path / "sw"
    sw.mkdir()
    plan = plan_sweep(str(f), check_corners=False)
    study = open_study(plan, open_storage(None, sw), "tiny", "here")
    study.enqueue_trial({"train.optimizer.learning_rate": 0.01, "model.layers[1].rate": 0.1, "train.epochs": 2})
    study.enqueue_trial({"train.optimizer.learning_rate": 0.02, "model.layers[1].rate": 0.2, "train.epochs": 3000})
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "nnctl", "sweep", str(f), "--out", str(sw), "--trials", "2"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        started = time.time()
        while not (sw / "trial-0001" / "run.json").exists():  # the long trial has started
            assert proc.poll() is None, proc.communicate()[0]
            assert time.time() - started < 600
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=300)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out
    assert "interrupted" in out and "Resume with the same command" in out and "Traceback" not in out
    rows = [json.loads(x) for x in (sw / "trials.jsonl").read_text().splitlines()]
    assert [r["state"] for r in rows] == ["complete", "interrupted", "queued"]
    status = {r["name"]: r["status"] for r in list_runs(sw)}
    assert status == {"tiny-trial-0000": "finished", "tiny-trial-0001": "interrupted"}

    res = run_sweep(str(f), str(sw), n_trials=2)  # the rerun trains the interrupted values again, then stops
    assert res.progress.done == 2
    rows = [json.loads(x) for x in (sw / "trials.jsonl").read_text().splitlines()]
    assert [r["state"] for r in rows] == ["complete", "interrupted", "complete"]
    assert rows[2]["params.train.epochs"] == 3000 and rows[2]["params.model.layers[1].rate"] == 0.2
    assert sorted(p.name for p in sw.glob("trial-*")) == ["trial-0000", "trial-0001", "trial-0002"]
