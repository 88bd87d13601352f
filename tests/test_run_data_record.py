"""A run records what it was trained and tested on (issue 11, item 3): eval refuses or warns when the data
changed, keeps working when the file moved, and scores new labelled data with --data."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from nnctl.app import evaluate_run, provenance, train_run
from nnctl.errors import DataError

SPEC = """\
data:
  source: csv
  path: d.csv
  target: kind
  categorical: [colour]
  test_split: 0.25
  normalize: standard
model:
  layers:
    - {type: dense, units: 3, activation: softmax}
train:
  loss: categorical_crossentropy
  metrics: [accuracy]
  epochs: 2
  batch_size: 8
"""


def rows(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(0, 3))
        out.append(f"{rng.normal() + k:.4f},{['red', 'blue'][int(rng.integers(0, 2))]},{['ant', 'bee', 'cat'][k]}")
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("rec")
    (d / "d.csv").write_text("\n".join(["a,colour,kind", *rows(40, 0)]) + "\n")
    (d / "s.yaml").write_text(SPEC)
    res = train_run(str(d / "s.yaml"), out=str(d / "run"))
    return d, res.run_dir, evaluate_run(res.run_dir)


def test_the_run_records_the_data_and_the_split(run):
    d, run_dir, first = run
    rec = provenance.data_record(run_dir)
    assert rec["fingerprint"]["rows"] == 40 and len(rec["fingerprint"]["sha256"]) == 64
    assert rec["test_rows_saved"] and rec["class_names"] == ["ant", "bee", "cat"]
    split = np.load(run_dir / provenance.SPLIT)
    assert len(split["test_index"]) == 10 and len(split["train_index"]) == 30
    assert not set(split["test_index"]) & set(split["train_index"])
    assert first["examples"] == 10 and first["warnings"] == []


def test_appended_rows_do_not_leak_into_the_test_split(run, tmp_path):
    d, run_dir, first = run
    original = (d / "d.csv").read_text()
    try:
        (d / "d.csv").write_text(original + "\n".join(rows(10, 1)) + "\n")
        res = evaluate_run(run_dir)
    finally:
        (d / "d.csv").write_text(original)
    assert res["examples"] == 10 and res["metrics"] == first["metrics"]
    assert "changed since this run was trained (40 rows then, 50 now)" in res["warnings"][0]
    with pytest.raises(DataError, match="only the test split was saved"):
        (d / "d.csv").write_text(original + rows(1, 2)[0] + "\n")
        try:
            evaluate_run(run_dir, "train")
        finally:
            (d / "d.csv").write_text(original)


def test_changed_data_without_saved_rows_is_refused(run, monkeypatch, tmp_path):
    d, run_dir, _ = run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    rec = provenance.data_record(copy)
    rec["test_rows_saved"] = False
    from nnctl import rundir

    rundir.write_json(copy / provenance.DATA_RECORD, rec)
    original = (d / "d.csv").read_text()
    try:
        (d / "d.csv").write_text(original + rows(1, 3)[0] + "\n")
        with pytest.raises(DataError, match="saved no test examples.*--data FILE"):
            evaluate_run(copy)
    finally:
        (d / "d.csv").write_text(original)


def test_a_moved_data_file_still_evaluates(run):
    d, run_dir, first = run
    from nnctl.app import predict_run

    (d / "d.csv").rename(d / "moved.csv")
    (d / "in.csv").write_text("a,colour\n0.1,red\n2.2,blue\n")
    try:
        res = evaluate_run(run_dir)
        pred = predict_run(run_dir, str(d / "in.csv"))  # the trained columns and categories come from the run
    finally:
        (d / "moved.csv").rename(d / "d.csv")
    assert res["examples"] == 10 and res["metrics"] == pytest.approx(first["metrics"])
    assert "data file is not there" in res["warnings"][0] and res["class_names"] == ["ant", "bee", "cat"]
    assert pred["examples"] == 2 and set(pred["labels"]) <= {"ant", "bee", "cat"}


def test_eval_scores_new_labelled_data_with_the_training_preprocessing(run, tmp_path):
    d, run_dir, first = run
    lines = (d / "d.csv").read_text().splitlines()
    test = np.load(run_dir / provenance.SPLIT)["test_index"]
    (tmp_path / "new.csv").write_text("\n".join([lines[0]] + [lines[1 + i] for i in test]) + "\n")
    res = evaluate_run(run_dir, data_path=str(tmp_path / "new.csv"))
    assert res["examples"] == 10 and res["metrics"] == pytest.approx(first["metrics"], rel=1e-5)
    assert res["confusion_matrix"] == first["confusion_matrix"]
    (tmp_path / "bad.csv").write_text("a,colour,kind\n0.5,red,dog\n")
    with pytest.raises(DataError, match=r"labels \['dog'\] were not classes in training"):
        evaluate_run(run_dir, data_path=str(tmp_path / "bad.csv"))


def test_predict_checks_the_header_and_names_classes(run, tmp_path):
    from typer.testing import CliRunner

    from nnctl.app import predict_run
    from nnctl.cli import app

    d, run_dir, _ = run
    (tmp_path / "nohead.csv").write_text("0.5,red\n1.5,blue\n")
    with pytest.raises(
        DataError, match=r"missing feature columns \['a', 'colour'\] \(the run was trained on the columns: a, colour\)"
    ):
        predict_run(run_dir, str(tmp_path / "nohead.csv"))
    (tmp_path / "num.csv").write_text("0.5,1\n1.5,2\n")
    with pytest.raises(DataError, match="first line holds numbers, not column names: add a header row"):
        predict_run(run_dir, str(tmp_path / "num.csv"))
    (tmp_path / "new.csv").write_text("colour,a\nred,0.5\nblue,2.5\n")
    res = predict_run(run_dir, str(tmp_path / "new.csv"), str(tmp_path / "p.csv"))
    assert res["labels"] == [["ant", "bee", "cat"][c] for c in res["classes"]] and res["warnings"] == []
    assert (tmp_path / "p.csv").read_text().splitlines()[1].split(",")[0] == res["labels"][0]
    (tmp_path / "green.csv").write_text("colour,a\ngreen,0.5\n")
    with pytest.raises(DataError, match=r"unknown category 'green' \(known: blue, red\)"):
        predict_run(run_dir, str(tmp_path / "green.csv"))
    r = CliRunner().invoke(app, ["inspect", "inputs", str(run_dir)])
    assert r.exit_code == 0 and "colour  (one of: blue, red)" in r.output and "classes: ant, bee, cat" in r.output


def test_unseen_categories_are_a_warning_when_filled(tmp_path):
    from types import SimpleNamespace

    from nnctl.data.prepare import Imputer
    from nnctl.data.sources.csv import CsvLayout, CsvSource
    from nnctl.spec.models import DataSpec

    (tmp_path / "in.csv").write_text("a,colour\n1,green\n2,red\n")
    data = DataSpec(source="csv", path="x.csv", target="kind", categorical=["colour"], missing="mean")
    dataset = SimpleNamespace(
        layout=CsvLayout(("a", "colour"), {"colour": ["blue", "red"]}), imputer=Imputer(np.zeros(3, np.float32))
    )
    with pytest.warns(UserWarning, match="column 'colour': 'green' not seen in training"):
        x = CsvSource().read_inputs(tmp_path / "in.csv", data, dataset)
    assert np.isnan(x[0, 1:]).all() and x[1].tolist() == [2.0, 0.0, 1.0]


def test_inspect_inputs_of_a_run_without_csv_columns(tmp_path):
    from nnctl import rundir
    from nnctl.app.predict_io import run_inputs

    (tmp_path / "spec.yaml").write_text("name: x\n")
    rundir.write_json(
        tmp_path / rundir.SCALERS, {"x": {"kind": "global_minmax", "shift": [0.0], "scale": [1.0]}, "csv": None}
    )
    rundir.write_json(tmp_path / provenance.DATA_RECORD, {"input_shape": [8, 8, 1], "class_names": None})
    res = run_inputs(tmp_path)
    assert res["columns"] is None and res["input_values"] == 64 and res["input_shape"] == [8, 8, 1]
