"""Data sources, splits and scaling."""

import numpy as np
import pytest

from nnctl.data.prepare import prepare
from nnctl.errors import DataError
from nnctl.run import evaluate_run, predict_run, train_run
from nnctl.spec import load_text

CSV_SPEC = """
data: {source: csv, path: %s, target: species, validation_split: 0.25, normalize: minmax}
model:
  layers:
    - {type: dense, units: 8, activation: relu}
    - {type: dense, units: 2, activation: softmax}
train: {loss: categorical_crossentropy, metrics: [accuracy], epochs: 30, batch_size: 8,
        optimizer: {type: adam, learning_rate: 0.05}}
"""


def write_csv(path, n=40, seed=0):
    rng = np.random.default_rng(seed)
    rows = ["size,weight,species"]
    for _ in range(n):
        c = rng.integers(0, 2)
        rows.append(f"{rng.normal(3 * c, 0.5):.3f},{rng.normal(10 + 5 * c, 1):.3f},{'cat' if c else 'ant'}")
    path.write_text("\n".join(rows) + "\n")


def test_csv_with_text_labels_trains_and_predicts(tmp_path):
    write_csv(tmp_path / "d.csv")
    spec = tmp_path / "s.yaml"
    spec.write_text(CSV_SPEC % "d.csv")  # relative to the spec file
    res = train_run(str(spec), out=str(tmp_path / "run"))
    assert res.summary["data_sizes"] == {"train": 30, "val": 10, "test": 0}
    assert res.summary["final"]["val/accuracy"] >= 0.8
    (tmp_path / "new.csv").write_text("size,weight\n0.1,10\n3.2,15.1\n")
    out = predict_run(res.run_dir, str(tmp_path / "new.csv"), str(tmp_path / "p.csv"))
    assert out["classes"] == [0, 1]
    assert (tmp_path / "p.csv").read_text().splitlines()[0] == "class,p_ant,p_cat"


def test_minmax_is_fitted_on_training_split_only(tmp_path):
    write_csv(tmp_path / "d.csv")
    loaded = load_text(CSV_SPEC % (tmp_path / "d.csv"))
    d = prepare(loaded.spec, loaded.analysis, tmp_path)
    assert d.x_train.min() == pytest.approx(0.0) and d.x_train.max() == pytest.approx(1.0)
    assert not (d.x_val.min() == 0.0 and d.x_val.max() == 1.0)


def test_npz_with_fixed_test_split(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]))[:, None].astype(np.float32)
    np.savez(tmp_path / "d.npz", features=x[:48], target=y[:48], xt=x[48:], yt=y[48:])
    spec = tmp_path / "s.yaml"
    spec.write_text("""
data: {source: npz, path: d.npz, x: features, y: target, test: {x: xt, y: yt}}
model: {layers: [{type: dense, units: 1}]}
train: {loss: mse, metrics: [r2], epochs: 60, batch_size: 16, optimizer: {type: adam, learning_rate: 0.1}}
""")
    res = train_run(str(spec), out=str(tmp_path / "run"))
    ev = evaluate_run(res.run_dir, "test")
    assert ev["examples"] == 16 and ev["metrics"]["r2"] > 0.95


@pytest.mark.parametrize("data,msg", [
    ("{source: inline, x: [[0, 1], [1, 0]], y: [0]}", "x has 2 examples but y has 1"),
    ("{source: inline, x: [[0, .nan], [1, 0]], y: [0, 1]}", "non-finite value nan at row 0, column 1"),
    ("{source: inline, x: [[0, 1], [1, 0]], y: [0, 7]}", "labels range 0..7 but the output layer has 3 units"),
])
def test_bad_data_messages(tmp_path, data, msg):
    spec = tmp_path / "s.yaml"
    spec.write_text(f"data: {data}\nmodel: {{layers: [{{type: dense, units: 3, activation: softmax}}]}}\n"
                    f"train: {{loss: categorical_crossentropy}}\n")
    with pytest.raises(DataError, match=msg.replace("(", r"\(").replace(".", r"\.")):
        train_run(str(spec), out=str(tmp_path / "run"))


def test_digits_as_images_reshape_from_model_input_shape():
    loaded = load_text("""
data: {source: builtin:digits}
model:
  input_shape: [8, 8, 1]
  layers: [{type: flatten}, {type: dense, units: 10, activation: softmax}]
train: {loss: categorical_crossentropy}
""")
    d = prepare(loaded.spec, loaded.analysis, None)
    assert d.x_train.shape[1:] == (8, 8, 1) and d.task == "classification"
