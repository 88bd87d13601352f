"""`nnctl runs`, `nnctl plot`, `nnctl train --resume` and the start-up banner, end to end through the CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from nnctl import rundir
from nnctl.cli import app

SPEC = """\
name: ops-xor
seed: 0
data: {source: builtin:xor}
model:
  layers:
    - {type: dense, units: 4, activation: tanh}
    - {type: dense, units: 1, activation: sigmoid}
train:
  loss: binary_crossentropy
  metrics: [accuracy]
  optimizer: {type: adam, learning_rate: 0.1}
  batch_size: full
  epochs: 12
  early_stopping: {monitor: loss, patience: 100}
  checkpoint: {every_epochs: 4, keep: 2}
  log: [csv]
"""


def invoke(*args):
    r = CliRunner().invoke(app, list(args))
    assert "Traceback" not in r.output
    return r


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("ops")
    (d / "s.yaml").write_text(SPEC)
    r = invoke("train", str(d / "s.yaml"), "--out", str(d / "runs" / "xor"))
    assert r.exit_code == 0, r.output
    return d / "runs" / "xor", r.output


def test_banner_states_the_resolved_settings(real_run):
    out = " ".join(real_run[1].split())
    for fragment in (
        "ops-xor",
        "17 parameters",
        "optimizer: adam",
        "epochs 12",
        "seed 0",
        "on_nonfinite stop",
        "checkpoints: every 4 epochs (keep 2) + best",
        "logs: metrics.jsonl, csv",
        "early stopping: loss",
    ):
        assert fragment in out, fragment


def fake_run(root, name, summary=None, run_info=None, checkpoints=(), records=3):
    d = root / name
    (d / "checkpoints").mkdir(parents=True)
    (d / rundir.SPEC).write_text("name: x\n")
    for e in checkpoints:
        (d / "checkpoints" / f"ckpt-{e:06d}.msgpack").write_bytes(b"x")
    if summary is not None:
        (d / rundir.SUMMARY).write_text(json.dumps({"name": name, "task": "regression", **summary}))
    if run_info is not None:
        (d / rundir.RUN).write_text(json.dumps(run_info))
    with open(d / rundir.METRICS, "w") as f:
        for e in range(1, records + 1):
            f.write(json.dumps({"epoch": e, "train/loss": 1.0 / e, "val/loss": 1.2 / e, "train/mae": 0.5 / e}) + "\n")
    return d


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_runs_table_statuses(tmp_path):
    host = socket.gethostname()
    base = {"monitor": "val/loss", "compile_seconds": 1.0, "train_seconds": 2.5}
    fake_run(
        tmp_path,
        "a-finished",
        {"status": "finished", "best_epoch": 3, "best_value": 0.4, **base},
        {"started_at": "2026-01-01T10:00:00"},
    )
    fake_run(
        tmp_path,
        "b-early",
        {"status": "stopped_early", "stop_reason": "patience", "best_epoch": 2, "best_value": 0.6, **base},
        {"started_at": "2026-01-01T11:00:00"},
    )
    fake_run(
        tmp_path,
        "c-interrupted",
        {"status": "interrupted", "best_epoch": 1, "best_value": 1.2, **base},
        {"started_at": "2026-01-01T12:00:00"},
    )
    fake_run(
        tmp_path,
        "d-killed",
        None,
        {"started_at": "2026-01-01T13:00:00", "pid": dead_pid(), "host": host},
        checkpoints=(2, 4),
    )
    fake_run(tmp_path, "e-crashed", None, {"started_at": "2026-01-01T14:00:00", "pid": dead_pid(), "host": host})
    fake_run(
        tmp_path,
        "f-failed",
        {"status": "failed", "error": "ValueError: x", "finished_at": "2026"},
        {"started_at": "2026-01-01T15:00:00"},
    )
    fake_run(tmp_path, "g-running", None, {"started_at": "2026-01-01T16:00:00", "pid": os.getpid(), "host": host})
    r = invoke("runs", str(tmp_path), "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [(x["name"], x["status"]) for x in rows] == [
        ("a-finished", "finished"),
        ("b-early", "stopped_early"),
        ("c-interrupted", "interrupted"),
        ("d-killed", "interrupted"),
        ("e-crashed", "failed"),
        ("f-failed", "failed"),
        ("g-running", "running"),
    ]
    assert rows[0]["best_epoch"] == 3 and rows[0]["best_value"] == 0.4 and rows[0]["duration_s"] == 3.5
    r = invoke("runs", str(tmp_path))
    text = r.output
    for fragment in (
        "a-finished",
        "2026-01-01 10:00",
        "stopped early (patience)",
        "val/loss 0.4",
        "3.5 s",
        "interrupted",
        "failed",
        "running",
    ):
        assert fragment in text, fragment


def test_runs_errors(tmp_path):
    r = invoke("runs", str(tmp_path / "nope"))
    assert r.exit_code == 2 and "no such directory" in r.output
    r = invoke("runs", str(tmp_path))
    assert r.exit_code == 0 and "no runs in" in r.output


def test_plot_curves_and_confusion(real_run, tmp_path):
    run = real_run[0]
    other = fake_run(
        tmp_path,
        "other",
        {"status": "stopped_early", "stop_reason": "patience", "best_epoch": 2, "monitor": "val/loss", "epochs_run": 3},
    )
    out = tmp_path / "curves.png"
    r = invoke("plot", str(run), str(other), "--out", str(out), "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["out"] == str(out) and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert {"loss", "accuracy", "mae"} <= set(doc["quantities"])
    assert len(doc["confusion"]) == 1 and sum(map(sum, doc["confusion"][0]["matrix"])) == 4  # xor: 4 examples
    r = invoke("plot", str(run))
    assert r.exit_code == 0 and (run / "curves.png").exists()


def test_plot_errors(tmp_path):
    r = invoke("plot", str(tmp_path / "nope"))
    assert r.exit_code == 2 and "no such run directory" in r.output
    d = tmp_path / "empty"
    d.mkdir()
    (d / rundir.SPEC).write_text("name: x\n")
    r = invoke("plot", str(d))
    assert r.exit_code == 2 and "nothing to plot" in r.output


def test_train_resume_flag_errors(real_run, tmp_path):
    r = invoke("train", "--resume", str(real_run[0]), "specs/xor.yaml")
    assert r.exit_code == 2 and "give no SPEC" in r.output
    r = invoke("train")
    assert r.exit_code == 2 and "give a SPEC to train, or --resume RUN_DIR" in r.output
    r = invoke("train", "--resume", str(tmp_path / "nope"))
    assert r.exit_code == 2 and "no such run directory" in r.output
    r = invoke("train", "--resume", str(real_run[0]))
    assert r.exit_code == 2 and "has already ended (status: finished)" in r.output


def test_resume_through_the_cli(real_run, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(real_run[0], run)
    (run / rundir.SUMMARY).unlink()  # as if killed between the checkpoints of epochs 8 and 12
    (run / "checkpoints" / "ckpt-000012.msgpack").unlink()
    r = invoke("train", "--resume", str(run), "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    assert s["status"] == "finished" and s["resumed_from_epoch"] == 8 and s["epochs_run"] == 12
    for name in (rundir.WEIGHTS, rundir.OPT_STATE, rundir.METRICS):  # metrics.csv differs only in `time`
        assert (run / name).read_bytes() == (real_run[0] / name).read_bytes(), name
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 13 and [r.split(",")[rows[0].split(",").index("epoch")] for r in rows[1:]] == [
        str(e) for e in range(1, 13)
    ]


def test_plot_without_weights_still_draws_curves(tmp_path):
    d = fake_run(tmp_path, "killed-early", {"status": "interrupted", "task": "classification"})
    (d / rundir.SUMMARY).write_text(json.dumps({"name": "k", "status": "interrupted", "task": "classification"}))
    r = invoke("plot", str(d), "--out", str(tmp_path / "p.png"))
    assert r.exit_code == 0, r.output
    assert "no confusion matrix for" in r.output and (tmp_path / "p.png").exists()
