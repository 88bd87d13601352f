"""Issue 11, item 9: --version and -h, validate --set, flags without `<bool>`, steps runs that finish, the
epochs default documented, misplaced keys (lr:) pointed home, plot per model kind, batch-norm momentum."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from nnctl.cli import app
from nnctl.errors import SpecError
from nnctl.spec import load_spec, load_text

INLINE = """\
data: {source: inline, x: [[0, 0], [0, 1], [1, 0], [1, 1]], y: [0, 1, 1, 0], task: binary}
model:
  layers:
    - {type: dense, units: 4, activation: tanh}
    - {type: dense, units: 1, activation: sigmoid}
train:
  loss: binary_crossentropy
  steps: 3
  batch_size: 2
"""


def test_version_and_short_help():
    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == "nnctl 0.1.0"
    r = CliRunner().invoke(app, ["-h"])
    assert r.exit_code == 0 and "Usage" in r.output and "train" in r.output
    r = CliRunner().invoke(app, ["eval", "-h"], terminal_width=120)
    assert r.exit_code == 0 and "--data" in r.output
    json_line = next(line for line in r.output.splitlines() if "--json" in line)
    assert "<bool>" not in json_line


def test_validate_takes_set(tmp_path):
    (tmp_path / "s.yaml").write_text(INLINE)
    r = CliRunner().invoke(app, ["validate", str(tmp_path / "s.yaml"), "--set", "train.batch_size=0"])
    assert r.exit_code == 2 and "--set train.batch_size=0" in r.output
    assert CliRunner().invoke(app, ["validate", str(tmp_path / "s.yaml"), "--set", "train.steps=5"]).exit_code == 0


@pytest.mark.parametrize(
    "section, key, home",
    [
        ("train", "lr", "train.optimizer.learning_rate"),
        ("train", "learning_rate", "train.optimizer.learning_rate"),
        ("model", "loss", "train.loss"),
    ],
)
def test_misplaced_key_points_home(section, key, home):
    text = INLINE.replace(f"{section}:\n", f"{section}:\n  {key}: 0.01\n", 1)
    with pytest.raises(SpecError, match=rf"{section}.{key}: unknown key '{key}'. Did you mean '{home}'\?"):
        load_text(text)


def test_epochs_default_is_documented():
    ref = (Path(__file__).parents[1] / "docs" / "reference.md").read_text()
    line = next(line for line in ref.splitlines() if line.lstrip("-* `").startswith("epochs"))
    assert "default: 10 when steps is not given" in line


def test_a_run_that_completes_its_steps_is_finished(tmp_path):
    from nnctl.app import train_run

    (tmp_path / "s.yaml").write_text(INLINE)
    res = train_run(str(tmp_path / "s.yaml"), out=str(tmp_path / "run"))
    assert res.summary["status"] == "finished" and res.summary["steps"] == 3


def test_plot_draws_no_confusion_matrix_for_a_gan():
    from nnctl.app.plots import _confusions

    cms, skipped = _confusions([{"task": "classification", "model_type": "gan", "run_dir": "runs/g"}])
    assert cms == [] and skipped == [{"run_dir": "runs/g", "reason": "a gan run predicts no classes"}]


def test_short_runs_with_slow_batch_norm_statistics_are_warned(tmp_path):
    from nnctl.app.banner import batch_norm_warnings

    text = INLINE.replace("    - {type: dense, units: 1", "    - {type: batch_norm}\n    - {type: dense, units: 1")
    (tmp_path / "s.yaml").write_text(text)
    loaded = load_spec(tmp_path / "s.yaml")
    short = SimpleNamespace(loaded=loaded, epochs=5, loop=SimpleNamespace(n_batches=4))
    (w,) = batch_norm_warnings(short)
    assert "momentum 0.99 averages its running statistics over ~100 steps, but this run has 20" in w
    assert "set momentum: 0.85" in w
    long = SimpleNamespace(loaded=loaded, epochs=100, loop=SimpleNamespace(n_batches=4))
    assert batch_norm_warnings(long) == []
