"""The CLI end to end (typer's CliRunner): exit codes, --json documents, no tracebacks."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from nnctl.cli import app
from tests.conftest import SPECS

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "iris"
    r = invoke("train", SPECS / "iris.yaml", "--out", out, "--set", "train.epochs=5", "--json")
    assert r.exit_code == 0, r.output
    return out, json.loads(r.stdout)


def test_train_json_summary(iris_run):
    out, summary = iris_run
    assert summary["status"] in ("finished", "stopped_early") and summary["epochs_run"] <= 5
    assert {"best_epoch", "best_value", "compile_seconds", "train_seconds", "steps_per_second"} <= set(summary)
    assert (out / "summary.json").exists()


def test_eval_json_with_confusion_matrix(iris_run):
    out, _ = iris_run
    r = invoke("eval", out, "--split", "test", "--json")
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and doc["examples"] == 30
    assert np.asarray(doc["confusion_matrix"]).sum() == 30
    human = invoke("eval", out)
    assert "confusion matrix" in human.stdout and "accuracy" in human.stdout


def test_predict_csv_and_npz(iris_run, tmp_path):
    out, _ = iris_run
    csv = tmp_path / "in.csv"
    csv.write_text("a,b,c,d\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n")
    r = invoke("predict", out, "--input", csv, "--output", tmp_path / "pred.csv", "--json")
    doc = json.loads(r.stdout)
    assert doc["classes"] == [0, 2]
    lines = (tmp_path / "pred.csv").read_text().splitlines()
    assert lines[0] == "class,p_0,p_1,p_2" and len(lines) == 3
    np.savez(tmp_path / "in.npz", x=np.array([[5.1, 3.5, 1.4, 0.2]], np.float32))
    r = invoke("predict", out, "--input", tmp_path / "in.npz", "--json")
    assert json.loads(r.stdout)["classes"] == [0]


def test_inspect_params_and_model():
    r = invoke("inspect", "params", SPECS / "iris.yaml", "--json")
    doc = json.loads(r.stdout)
    assert doc["totals"]["total"]["count"] == 4 * 16 + 16 + 16 * 3 + 3
    assert [p["path"] for p in doc["parameters"]][:2] == ["dense_0/bias", "dense_0/kernel"]
    human = invoke("inspect", "params", SPECS / "iris.yaml").stdout
    assert "Total params:" in human and "Trainable params:" in human and "Frozen params:" in human
    r = invoke("inspect", "model", SPECS / "iris.yaml", "--json")
    assert [layer["output_shape"] for layer in json.loads(r.stdout)["layers"]] == [[16], [16], [3]]


def test_inspect_counts_frozen_and_nontrainable(tmp_path):
    spec = tmp_path / "bn.yaml"
    spec.write_text("""
data: {source: builtin:iris}
model:
  layers:
    - {type: dense, units: 8}
    - {type: batch_norm}
    - {type: dense, units: 3, activation: softmax}
train: {loss: categorical_crossentropy, freeze: ["dense_0/*"]}
""")
    doc = json.loads(invoke("inspect", "params", spec, "--json").stdout)["totals"]
    assert doc["frozen"]["count"] == 40
    assert doc["non_trainable"]["count"] == 40 + 16  # frozen + batch-norm mean/var
    assert doc["trainable"]["count"] == 16 + 27


def test_validate_exit_codes(tmp_path):
    assert invoke("validate", *sorted(SPECS.glob("*.yaml"))).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {source: builtin:iris}\nmodel: {layers: [{type: dense, unitz: 3}]}\ntrain: {loss: mse}\n")
    r = invoke("validate", bad)
    assert r.exit_code == 2
    assert f"{bad}:2:32: model.layers[0].unitz: unknown key 'unitz'. Did you mean 'units'?" in r.output
    assert "Traceback" not in r.output
    doc = json.loads(invoke("validate", bad, "--json").stdout)
    assert doc["ok"] is False and "unitz" in doc["results"][0]["problems"][1]


def test_user_errors_have_no_traceback(tmp_path):
    for args in (
        ["train", tmp_path / "missing.yaml"],
        ["eval", tmp_path],
        ["predict", tmp_path, "--input", "x.csv"],
        ["inspect", "params", tmp_path / "nope.yaml"],
    ):
        r = invoke(*args)
        assert r.exit_code == 2 and "Traceback" not in r.output, (args, r.output)


def test_schema_is_json_schema():
    doc = json.loads(invoke("schema").stdout)
    assert doc["title"] == "nnctl spec" and "properties" in doc and "$defs" in doc
