"""The bad-input catalogue of `nnctl sweep`: each mistake in a `search:` section, or in what it searches, is a
located error found before any trial runs (nothing trains in this file); storage and study mistakes are
clear errors; the CLI prints no traceback."""

from __future__ import annotations

import pytest

pytest.importorskip("optuna", reason="nnctl sweep needs the sweep extra (optuna)")

from typer.testing import CliRunner

from nnctl.app import sweep_study
from nnctl.app.sweep import run_sweep
from nnctl.app.sweep_space import plan_sweep, trial_overrides
from nnctl.app.sweep_study import masked, open_storage, open_study
from nnctl.cli import app
from nnctl.errors import NnctlError, SpecError
from nnctl.spec.search import Distribution

BASE = """\
name: s
data: {source: builtin:iris, validation_split: 0.2}
model:
  layers:
    - {type: dense, units: 8, activation: relu}
    - {type: dropout, rate: 0.1}
    - {type: dense, units: 3, activation: softmax}
train:
  loss: categorical_crossentropy
  metrics: [accuracy]
  optimizer: {type: adam, learning_rate: 0.01}
  epochs: 2
search:
  trials: 2
  space:
"""
LR = "    train.optimizer.learning_rate: {float: [1.0e-3, 1.0e-1], log: true}\n"

# (id, the space lines (or a whole replacement of the search section's tail), fragment, "line:col")
CASES = [
    (
        "unknown-path",
        "    train.optimizer.learning_rat: {float: [0.001, 0.1]}\n",
        "Did you mean 'learning_rate'",
        "16:5",
    ),
    ("no-such-layer", "    model.layers[7].units: {int: [2, 4]}\n", "model.layers[7]", "16:5"),
    ("empty-range", "    model.layers[1].rate: {float: [0.2, 0.2]}\n", "the range [0.2, 0.2] is empty", "16:27"),
    ("lo-above-hi", "    model.layers[1].rate: {float: [0.5, 0.1]}\n", "lo > hi in [0.5, 0.1]", "16:35"),
    ("log-zero", "    model.layers[1].rate: {float: [0.0, 0.5], log: true}\n", "log: true needs lo > 0", "16:27"),
    (
        "log-and-step",
        "    model.layers[0].units: {int: [2, 8], log: true, step: 2}\n",
        "log or step, not both",
        "16:28",
    ),
    ("no-distribution", "    model.layers[0].units: {log: true}\n", "give exactly one of float", "16:28"),
    ("two-distributions", "    model.layers[0].units: {int: [2, 8], choice: [2]}\n", "(got int, choice)", "16:28"),
    ("choice-mixed", "    train.optimizer.type: {choice: [adam, 3]}\n", "choices mix number and str", "16:36"),
    ("choice-rejected", "    model.layers[0].units: {choice: [four, eight]}\n", "valid integer", "16:5"),
    ("choice-typo", "    train.optimizer.type: {choice: [adam, sgdd]}\n", "Did you mean 'sgd'", "16:5"),
    ("float-for-int", "    model.layers[0].units: {float: [4, 16]}\n", "valid integer", "16:5"),
    ("rate-out-of-range", "    model.layers[1].rate: {float: [0.0, 1.5]}\n", "less than 1", "16:5"),
    ("unknown-key", "    model.layers[1].rate: {flaot: [0.0, 0.5]}\n", "Did you mean 'float'", "16:28"),
    ("search-name", "    name: {choice: [a, b]}\n", "cannot be searched", "16:5"),
    ("metric-unrecorded", LR + "  metric: val_f1\n", "no run records metric 'val_f1'", "17:11"),
    ("metric-typo", LR + "  metric: val_acuracy\n", "Did you mean 'val_accuracy'", "17:11"),
    ("grid-float", LR + "  sampler: grid\n", "sampler: grid needs choice or int ranges", "16:5"),
    ("sampler-typo", LR + "  sampler: tpee\n", "Did you mean 'tpe'", "17:12"),
    ("pruner-typo", LR + "  pruner: median_\n", "Did you mean 'median'", "17:11"),
    ("timeout-zero", LR + "  timeout: 0\n", "greater than 0", "17:12"),
]


@pytest.mark.parametrize("space,fragment,where", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_search(tmp_path, space, fragment, where):
    f = tmp_path / "s.yaml"
    f.write_text(BASE + space)
    with pytest.raises(SpecError) as e:
        plan_sweep(str(f))
    text = str(e.value)
    assert fragment in text, text
    assert f"s.yaml:{where}:" in text, text


def test_no_search_section_and_no_validation_data(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(BASE.split("search:")[0])
    with pytest.raises(SpecError, match="has no search section"):
        plan_sweep(str(f))
    f.write_text(BASE.replace(", validation_split: 0.2", "") + LR)
    with pytest.raises(SpecError, match="metric 'val_loss' needs validation data"):
        plan_sweep(str(f))


def test_plan_defaults_and_corners(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(BASE.replace("epochs: 2", "epochs: 2\n  early_stopping: {monitor: val_accuracy}") + LR)
    plan = plan_sweep(str(f))
    assert (plan.metric, plan.key, plan.direction) == ("val_accuracy", "val/accuracy", "maximize")
    assert "search" not in plan.base and plan.base["train"]["epochs"] == 2
    f.write_text(BASE + LR)
    assert plan_sweep(str(f)).direction == "minimize"  # val_loss
    assert Distribution.model_validate({"int": [16, 100], "step": 16}).corners() == [16, 96]
    assert Distribution.model_validate({"choice": ["a", "b"]}).corners() == ["a", "b"]
    assert trial_overrides({"train.optimizer.type": "sgd", "model.layers[0].units": 8}) == (
        'train.optimizer.type="sgd"',
        "model.layers[0].units=8",
    )


@pytest.mark.parametrize(
    "url,fragment",
    [
        ("postgresql://nnctl:secret@127.0.0.1:1/nowhere", "cannot open the study storage postgresql://nnctl:***@"),
        ("sqlite:////nonexistent/dir/study.db", "cannot open the study storage sqlite:////nonexistent"),
        ("study.db", "--storage expects a database URL"),
    ],
)
def test_unreachable_storage(tmp_path, url, fragment):
    f = tmp_path / "s.yaml"
    f.write_text(BASE + LR)
    with pytest.raises(NnctlError) as e:
        run_sweep(str(f), str(tmp_path / "sw"), storage=url)
    assert fragment in str(e.value) and "secret" not in str(e.value)
    assert not list((tmp_path / "sw").glob("trial-*"))


def test_study_clash(tmp_path):
    f, g = tmp_path / "a.yaml", tmp_path / "b.yaml"
    f.write_text(BASE + LR)
    g.write_text(BASE + "    model.layers[1].rate: {float: [0.0, 0.5]}\n")
    url = f"sqlite:///{tmp_path / 'study.db'}"
    open_study(plan_sweep(str(f)), open_storage(url, tmp_path), "s", masked(url))
    open_study(plan_sweep(str(f)), open_storage(url, tmp_path), "s", masked(url))  # the same search continues
    with pytest.raises(NnctlError, match="study 's' in sqlite:///.* was created with a different space"):
        open_study(plan_sweep(str(g)), open_storage(url, tmp_path), "s", masked(url))
    # the same space over a changed base spec is a different study too
    f.write_text((BASE + LR).replace("epochs: 2", "epochs: 3"))
    with pytest.raises(NnctlError, match="different base spec"):
        open_study(plan_sweep(str(f)), open_storage(url, tmp_path), "s", masked(url))


def test_cli_errors_without_traceback(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(BASE + "    model.layers[1].rate: {float: [0.5, 0.1]}\n")
    res = CliRunner().invoke(app, ["sweep", str(f), "--out", str(tmp_path / "sw")])
    assert res.exit_code == 2
    assert "lo > hi" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["sweep", str(f), "--json"])
    assert res.exit_code == 2 and '"problems"' in res.output


@pytest.mark.parametrize("sampler", ["tpe", "random", "grid", "cmaes", "qmc"])
def test_every_sampler_and_pruner_is_built(tmp_path, sampler):
    import optuna

    space = "    model.layers[0].units: {int: [4, 12], step: 4}\n    train.optimizer.type: {choice: [adam, sgd]}\n"
    if sampler != "grid":
        space += LR
    f = tmp_path / "s.yaml"
    f.write_text(BASE + space + f"  sampler: {sampler}\n  seed: 3\n")
    plan = plan_sweep(str(f))
    s = sweep_study.sampler(plan, 0)
    kinds = {"tpe": "TPESampler", "random": "RandomSampler", "grid": "GridSampler", "cmaes": "CmaEsSampler"}
    assert type(s).__name__ == kinds.get(sampler, "QMCSampler")
    assert sweep_study.grid_size(plan) == (6 if sampler == "grid" else None)  # units 4, 8, 12 x 2 optimizers
    study = optuna.create_study(sampler=s)
    t = study.ask(sweep_study.distributions(plan))
    assert t.params["model.layers[0].units"] in (4, 8, 12) and t.params["train.optimizer.type"] in ("adam", "sgd")
    for pruner, name in (("median", "MedianPruner"), ("hyperband", "HyperbandPruner"), ("none", "NopPruner")):
        f.write_text(BASE + LR + f"  pruner: {pruner}\n")
        assert type(sweep_study.pruner(plan_sweep(str(f)))).__name__ == name


def test_timeout_stops_new_trials(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(BASE + LR + "  timeout: 1.0e-9\n")
    res = run_sweep(str(f), str(tmp_path / "sw"))
    assert res.progress.done == 0 and not list((tmp_path / "sw").glob("trial-*"))
    assert (tmp_path / "sw" / "trials.csv").exists() and res.best is None


def test_a_spec_with_a_search_section_round_trips(tmp_path):
    """`nnctl train` ignores the section, and the resolved spec written to a run loads back equal."""
    import yaml

    from nnctl.spec import load_text

    f = tmp_path / "s.yaml"
    f.write_text(
        BASE + LR + "    train.optimizer.type: {choice: [adam, sgd]}\n    model.layers[0].units: {int: [4, 8]}\n"
    )
    spec = plan_sweep(str(f)).loaded.spec
    again = load_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True))).spec
    assert again == spec and again.search is not None
    assert again.search.space["train.optimizer.learning_rate"].log is True
