"""Data sources, splits and scaling."""

import numpy as np
import pytest

from nnctl.app import evaluate_run, predict_run, train_run
from nnctl.data.prepare import prepare
from nnctl.errors import DataError
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


@pytest.mark.parametrize(
    "data,msg",
    [
        ("{source: inline, x: [[0, 1], [1, 0]], y: [0]}", "x has 2 examples but y has 1"),
        ("{source: inline, x: [[0, .nan], [1, 0]], y: [0, 1]}", "non-finite value nan at row 0, column 1"),
        ("{source: inline, x: [[0, 1], [1, 0]], y: [0, 7]}", "labels range 0..7 but the output layer has 3 units"),
    ],
)
def test_bad_data_messages(tmp_path, data, msg):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        f"data: {data}\nmodel: {{layers: [{{type: dense, units: 3, activation: softmax}}]}}\n"
        f"train: {{loss: categorical_crossentropy}}\n"
    )
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


# --- real-world CSVs: separators, text (categorical) features, missing values -----------------------------
MIXED = """\
age;colour;size;label
30;red;1.5;1
;blue;2.5;0
41;NA;0.5;1
25;green;?;0
38;red;1.0;
52;blue;3.0;1
19;green;2.0;0
60;red;2.2;1
"""

MIXED_SPEC = """
data: {source: csv, path: m.csv, target: label, categorical: [colour], missing: %s, shuffle: false}
model: {layers: [{type: dense, units: 1, activation: sigmoid}]}
train: {loss: binary_crossentropy, epochs: 2, batch_size: 4}
"""


def _mixed(tmp_path, missing):
    (tmp_path / "m.csv").write_text(MIXED)
    spec = tmp_path / f"s_{missing}.yaml"
    spec.write_text(MIXED_SPEC % missing)
    return spec


def test_categorical_columns_are_one_hot_and_the_separator_is_detected(tmp_path):
    from nnctl.spec import load_spec

    loaded = load_spec(_mixed(tmp_path, "drop"))
    assert loaded.analysis.input_shape == (5,)  # age, colour (blue, green, red), size
    d = prepare(loaded.spec, loaded.analysis, loaded.base_dir)
    # rows 2 (age), 3 (colour NA), 4 (size ?) have a missing feature, row 5 no label: 4 dropped
    assert d.sizes == {"train": 4, "val": 0, "test": 0, "dropped": 4, "filled": 0}
    np.testing.assert_array_equal(d.x_train[:, 1:4], [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(d.x_train[:, 0], [30, 52, 19, 60])
    assert d.layout.features == ("age", "colour", "size") and d.layout.categories == {
        "colour": ["blue", "green", "red"]
    }


def test_missing_mean_fills_with_training_means_only(tmp_path):
    from nnctl.spec import load_spec

    loaded = load_spec(_mixed(tmp_path, "mean"))
    d = prepare(loaded.spec, loaded.analysis, loaded.base_dir)
    assert d.sizes["dropped"] == 1 and d.sizes["train"] == 7  # only the row without a label
    assert d.sizes["filled"] == 1 + 3 + 1  # age, the colour one-hot block, size
    ages = np.array([30, 41, 25, 52, 19, 60], np.float32)
    assert d.x_train[1, 0] == pytest.approx(ages.mean())
    np.testing.assert_allclose(d.x_train[2, 1:4], [2 / 6, 2 / 6, 2 / 6])  # category frequencies
    # with a validation split, the means come from the training rows alone: unshuffled, the first 4 of the
    # 7 labelled rows are validation, the training rows are ages 52, 19, 60 and sizes 3.0, 2.0, 2.2
    loaded = load_spec(_mixed(tmp_path, "mean"), ("data.validation_split=0.5",))
    d = prepare(loaded.spec, loaded.analysis, loaded.base_dir)
    np.testing.assert_allclose(d.x_val[:, 0], [30, (52 + 19 + 60) / 3, 41, 25], rtol=1e-6)
    np.testing.assert_allclose(d.x_val[3, 4], (3.0 + 2.0 + 2.2) / 3, rtol=1e-6)
    np.testing.assert_allclose(d.x_val[2, 1:4], [1 / 3, 1 / 3, 1 / 3], rtol=1e-6)
    assert not np.isnan(d.x_train).any()


def test_predict_reads_columns_by_name_encodes_and_fills_like_training(tmp_path):
    spec = _mixed(tmp_path, "mean")
    res = train_run(str(spec), out=str(tmp_path / "run"))
    saved = __import__("json").loads((tmp_path / "run" / "scalers.json").read_text())
    assert saved["csv"] == {"features": ["age", "colour", "size"], "categories": {"colour": ["blue", "green", "red"]}}
    assert len(saved["impute"]["fill"]) == 5
    (tmp_path / "in.csv").write_text("size,colour,age\n1.5,red,30\n,purple,\n")  # other order and separator
    out = predict_run(res.run_dir, str(tmp_path / "in.csv"))
    assert len(out["probabilities"]) == 2
    direct = predict_run(res.run_dir, str(tmp_path / "m.csv"))
    assert out["probabilities"][0] == pytest.approx(direct["probabilities"][0], abs=1e-6)


def test_predict_without_fill_refuses_missing_values_and_unknown_categories(tmp_path):
    res = train_run(str(_mixed(tmp_path, "drop")), out=str(tmp_path / "run"))
    (tmp_path / "in.csv").write_text("age,colour,size\n30,purple,1\n")
    with pytest.raises(
        DataError, match=r"row 2, column 'colour': unknown category 'purple' \(known: blue, green, red\)"
    ):
        predict_run(res.run_dir, str(tmp_path / "in.csv"))
    (tmp_path / "in.csv").write_text("age,colour\n30,red\n")
    with pytest.raises(DataError, match=r"missing feature columns \['size'\]"):
        predict_run(res.run_dir, str(tmp_path / "in.csv"))


def test_global_scaling_uses_one_statistic_for_all_features(tmp_path):
    from nnctl.data.prepare import Scaler

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (50, 6)).astype(np.float32)
    x[:, 0] = 0.0  # a pixel that is always dark: per-feature minmax would divide by 1 and leave it, or blow up
    x[:, 1] = rng.integers(0, 2, 50)  # a pixel that is nearly always dark
    g = Scaler.fit("global_minmax", x)
    lo, hi = x.min(), x.max()
    assert g.shift.shape == (1,) and g.shift[0] == lo and g.scale[0] == hi - lo
    np.testing.assert_allclose(g.apply(x), (x - lo) / (hi - lo), rtol=1e-6)
    new = np.full((1, 6), 255.0, np.float32)
    assert g.apply(new).max() <= 1.0 + 1e-6  # per feature, pixel 1 would map 255 to 255
    assert Scaler.fit("minmax", x).apply(new)[0, 1] == pytest.approx(255.0)
    s = Scaler.from_dict(Scaler.fit("global_standard", x).to_dict())
    z = s.apply(x)
    assert z.mean() == pytest.approx(0.0, abs=1e-5) and z.std() == pytest.approx(1.0, abs=1e-5)


def test_csv_quoted_numbers_spaces_and_blank_lines_read_exactly(tmp_path):
    from nnctl.data.sources import read
    from nnctl.spec import load_spec

    rng = np.random.default_rng(2)
    table = np.round(rng.normal(size=(30, 3)), 4)
    labels = rng.integers(0, 3, 30)
    rows = ["a,b,c,label"] + [f' {a:.6g},"{b:.6g}",{c:.6g} ,{k}' for (a, b, c), k in zip(table, labels)] + [""]
    (tmp_path / "n.csv").write_text("\n".join(rows[:10] + [""] + rows[10:]) + "\n")
    (tmp_path / "s.yaml").write_text(
        "data: {source: csv, path: n.csv, target: label, features: [c, a]}\n"
        "model: {layers: [{type: dense, units: 3, activation: softmax}]}\n"
        "train: {loss: categorical_crossentropy, epochs: 1}\n"
    )
    raw = read(load_spec(tmp_path / "s.yaml").spec.data, tmp_path, 0)
    np.testing.assert_array_equal(raw.x, table[:, [2, 0]].astype(np.float32))
    np.testing.assert_array_equal(raw.y, labels)
    assert raw.x.dtype == np.float32 and raw.x.shape == (30, 2)
