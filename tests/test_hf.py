"""`source: hf`: Hugging Face datasets on local disk (save_to_disk folders, csv/parquet/json files, image
folders), splits and columns, bad inputs, and training. The datasets are built here; nothing is downloaded."""

from __future__ import annotations

import math
import os

import datasets as hd
import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from nnctl.app import evaluate_run, predict_run, train_run
from nnctl.data.peek import peek
from nnctl.data.sources import read
from nnctl.errors import DataError
from nnctl.spec.models import DataSpec

FEATURES = hd.Features({"v": hd.List(hd.Value("float32")), "label": hd.ClassLabel(names=["no", "yes"])})


def _saved(tmp_path, n=8):
    rows = {"v": [[float(i), float(-i)] for i in range(n)], "label": [i % 2 for i in range(n)]}
    split = hd.Dataset.from_dict(rows, features=FEATURES)
    hd.DatasetDict(train=split, test=split.select(range(2))).save_to_disk(str(tmp_path / "saved"))
    return tmp_path / "saved"


def _spec(path, **kw):
    return DataSpec(**{"source": "hf", "path": str(path), "x": "v", "y": "label", **kw})


def test_saved_dataset_dict_with_a_fixed_test_split(tmp_path):
    _saved(tmp_path)
    raw = read(_spec(tmp_path / "saved", test={"split": "test"}), tmp_path, 0)
    assert raw.x.shape == (8, 2) and raw.x.dtype == np.float32 and raw.x[3].tolist() == [3, -3]
    assert raw.y.tolist() == [0, 1] * 4 and raw.class_names == ["no", "yes"]
    assert raw.x_test is not None and raw.y_test is not None and raw.y_test.tolist() == [0, 1]
    assert peek(_spec(tmp_path / "saved"), tmp_path).x_shape == (2,)
    assert peek(_spec(tmp_path / "saved"), tmp_path).num_classes == 2
    assert read(_spec(tmp_path / "saved", hf_split="test"), tmp_path, 0).x.shape == (2, 2)
    assert os.environ["HF_DATASETS_OFFLINE"] == "1"


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_local_files_through_the_packaged_readers(tmp_path, suffix):
    table = hd.Dataset.from_dict({"a": [1.0, 2.0, 3.0], "b": [4, 5, 6], "kind": ["y", "x", "y"]})
    p = tmp_path / f"t{suffix}"
    {".csv": table.to_csv, ".parquet": table.to_parquet, ".jsonl": table.to_json}[suffix](str(p))
    raw = read(DataSpec(source="hf", path=str(p), x=["a", "b"], y="kind"), tmp_path, 0)
    assert raw.x.tolist() == [[1, 4], [2, 5], [3, 6]] and raw.class_names == ["x", "y"] and raw.y.tolist() == [1, 0, 1]


def test_image_folder_and_image_columns(tmp_path):
    for c, v in (("cat", 10), ("dog", 200)):
        (tmp_path / "pets" / c).mkdir(parents=True)
        for k in range(2):
            Image.fromarray(np.full((4, 6, 3), v, np.uint8)).save(tmp_path / "pets" / c / f"{k}.png")
    raw = read(DataSpec(source="hf", path="pets", x="image", y="label", color_mode="grayscale"), tmp_path, 0)
    assert raw.x.shape == (4, 4, 6, 1) and raw.class_names == ["cat", "dog"]
    assert sorted(zip(raw.y.tolist(), raw.x[:, 0, 0, 0].tolist())) == [(0, 10), (0, 10), (1, 200), (1, 200)]
    mixed = [Image.fromarray(np.zeros((4, 4, 3), np.uint8)), Image.fromarray(np.zeros((5, 5), np.uint8))]
    ds = hd.Dataset.from_dict({"img": mixed, "y": [0, 1]}, features=hd.Features(img=hd.Image(), y=hd.Value("int64")))
    ds.save_to_disk(str(tmp_path / "mixed"))
    with pytest.raises(DataError, match=r"row 1, column 'img': 5x5 pixels but row 0 is 4x4: set data.image_size"):
        read(DataSpec(source="hf", path="mixed", x="img", y="y"), tmp_path, 0)
    sized = read(DataSpec(source="hf", path="mixed", x="img", y="y", image_size=(3, 3)), tmp_path, 0)
    assert sized.x.shape == (2, 3, 3, 3)


@pytest.mark.parametrize(
    "kw, fragment",
    [
        (dict(hf_split="tset"), "no split 'tset'. Did you mean 'test'? Splits: test, train"),
        (dict(test={"split": "valid"}), "no split 'valid'."),
        (dict(x="w"), "no column 'w' for data.x. Columns: v, label"),
        (dict(y="lable"), "no column 'lable' for data.y. Did you mean 'label'?"),
    ],
)
def test_bad_splits_and_columns(tmp_path, kw, fragment):
    _saved(tmp_path)
    with pytest.raises(DataError) as e:
        read(_spec(tmp_path / "saved", **kw), tmp_path, 0)
    assert fragment in str(e.value)


def test_unlabelled_rows_are_an_error(tmp_path):
    split = hd.Dataset.from_dict({"v": [[1.0, 2.0]] * 3, "label": [0, -1, 1]}, features=FEATURES)
    split.save_to_disk(str(tmp_path / "d"))
    with pytest.raises(DataError, match=r"row 1: no label \(-1\) in 'label'"):
        read(_spec(tmp_path / "d"), tmp_path, 0)


def test_unusable_columns_and_paths(tmp_path):
    hd.Dataset.from_dict({"r": [[1, 2], [3]], "t": ["a", "b"], "y": [0, 1]}).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(DataError, match="column 'r' holds lists of different lengths"):
        read(DataSpec(source="hf", path="d", x="r", y="y"), tmp_path, 0)
    with pytest.raises(DataError, match="column 't' holds values like 'a'"):
        read(DataSpec(source="hf", path="d", x="t", y="y"), tmp_path, 0)
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(DataError, match="not a dataset folder written by save_to_disk"):
        read(DataSpec(source="hf", path="f.txt", x="t", y="y"), tmp_path, 0)


@pytest.mark.parametrize(
    "fields, fragment",
    [
        (
            dict(source="csv", path="t.csv", target="y", hf_split="train"),
            "data.hf_split applies to source hf only, not csv",
        ),
        (dict(source="hf", path="d", x="a", y="b", test={"x": "a"}), "hf data: test must be {split: <name>}"),
        (dict(source="hf", path="d", x="a"), "source hf needs y"),
        (dict(source="hf", path="d", x="a", y="b", target="b"), "source hf does not use data.target"),
        (dict(source="hf", path="d", x="a", y=["b"]), "hf data needs x as a column name"),
    ],
)
def test_spec_errors(fields, fragment):
    with pytest.raises(ValidationError, match=fragment):
        DataSpec(**fields)


SPEC = """
seed: 0
data: {{source: hf, path: {path}, x: v, y: label, hf_split: train, test: {{split: test}}, normalize: standard,
        validation_split: 0.25}}
model:
  layers: [{{type: dense, units: 2, activation: softmax}}]
train: {{loss: categorical_crossentropy, metrics: [accuracy], optimizer: {{type: adam, learning_rate: 0.1}},
         batch_size: 8, epochs: 20}}
"""


def test_a_saved_dataset_trains_and_evaluates_on_its_test_split(tmp_path):
    rng = np.random.default_rng(0)
    v = rng.normal(size=(48, 2)).astype(np.float32)
    y = (v[:, 0] + v[:, 1] > 0).astype(int)
    ds = hd.Dataset.from_dict({"v": v.tolist(), "label": y.tolist()}, features=FEATURES)
    hd.DatasetDict(train=ds.select(range(32)), test=ds.select(range(32, 48))).save_to_disk(str(tmp_path / "d"))
    (tmp_path / "s.yaml").write_text(SPEC.format(path="d"))
    res = train_run(str(tmp_path / "s.yaml"), out=str(tmp_path / "r"))
    ev = evaluate_run(res.run_dir, "test")
    assert ev["metrics"]["accuracy"] >= 0.8 and math.isfinite(ev["metrics"]["loss"])
    # predict on a saved dataset: a DatasetDict's test split (the 16 rows eval scored), or a single dataset
    pred = predict_run(res.run_dir, str(tmp_path / "d"))
    assert pred["examples"] == 16
    hits = np.mean(np.ravel(pred["labels"]) == np.array(["no", "yes"])[y[32:]])
    assert hits == pytest.approx(ev["metrics"]["accuracy"])
    ds.select(range(5)).remove_columns("label").save_to_disk(str(tmp_path / "five"))
    assert predict_run(res.run_dir, str(tmp_path / "five"))["examples"] == 5
    hd.DatasetDict(a=ds, b=ds).save_to_disk(str(tmp_path / "two"))
    with pytest.raises(DataError, match="predict reads its 'test' split, or its only one; it has a, b"):
        predict_run(res.run_dir, str(tmp_path / "two"))
