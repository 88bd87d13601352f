"""`source: parquet`: the csv source's column features on a Parquet table (identical arrays from the same
data), typed columns and nulls, bad tables, training and predicting."""

from __future__ import annotations

import math
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nnctl.app import evaluate_run, predict_run, train_run
from nnctl.data.sources import read
from nnctl.errors import DataError
from nnctl.spec.models import DataSpec
from tests.conftest import SPECS

LOANS = dict(target="approved", categorical=["region", "employment"], missing="mean")


def test_parquet_and_csv_of_the_same_table_read_identical_arrays():
    a = read(DataSpec(source="csv", path="data/loans_synthetic.csv", **LOANS), SPECS, 0)
    b = read(DataSpec(source="parquet", path="data/loans_synthetic.parquet", **LOANS), SPECS, 0)
    np.testing.assert_array_equal(a.x, b.x)  # NaN where missing, in the same places
    assert np.isnan(b.x).any() and a.x.dtype == b.x.dtype == np.float32
    np.testing.assert_array_equal(a.y, b.y)
    assert a.layout == b.layout and a.class_names == b.class_names and a.dropped == b.dropped


def _write(tmp_path, **columns):
    pq.write_table(pa.table(columns), tmp_path / "t.parquet")
    return tmp_path / "t.parquet"


def _read(tmp_path, **kw):
    return read(DataSpec(source="parquet", path="t.parquet", **kw), tmp_path, 0)


def test_typed_columns_text_labels_and_nulls(tmp_path):
    _write(
        tmp_path,
        n=pa.array([1, None, 3], pa.int32()),
        f=pa.array([0.1, 0.2, 0.3], pa.float32()),
        ok=[True, False, True],
        c=["x", "y", None],
        label=["dog", "cat", "dog"],
    )
    raw = _read(tmp_path, target="label", categorical=["c"], missing="mean")
    assert raw.class_names == ["cat", "dog"] and raw.y.tolist() == [1, 0, 1]
    np.testing.assert_array_equal(raw.x[:, 1], np.array([0.1, 0.2, 0.3], np.float32))  # float32 exactly
    assert raw.x[:, 2].tolist() == [1, 0, 1] and math.isnan(raw.x[1, 0]) and np.isnan(raw.x[2, 3:]).all()
    with pytest.raises(DataError, match="row 2, column 'n': missing value ''"):
        _read(tmp_path, target="label", categorical=["c"])


def test_numeric_table_takes_the_array_path_with_several_targets(tmp_path):
    _write(tmp_path, a=[1.5, 2.5], b=[3, 4], t1=[0.0, 1.0], t2=[1, 0])
    raw = _read(tmp_path, target=["t1", "t2"])
    assert raw.x.tolist() == [[1.5, 3], [2.5, 4]] and raw.y.tolist() == [[0, 1], [1, 0]]


@pytest.mark.parametrize(
    "columns, kw, fragment",
    [
        (dict(a=[1], labl=[0]), dict(target="label"), "no column 'label'. Did you mean 'labl'?"),
        (dict(a=[1], y=[0]), dict(target="y", features=["b"]), "no feature column 'b'"),
        (dict(a=["1", "x"], y=[0, 1]), dict(target="y"), "row 2, column 'a': 'x' is not a number"),
        (dict(a=[1, 2], y=[0, None]), dict(target="y"), "row 2, column 'y': the target is missing"),
        (dict(a=pa.array([], pa.int64()), y=pa.array([], pa.int64())), dict(target="y"), "the table has no rows"),
    ],
)
def test_bad_tables_are_located_errors(tmp_path, columns, kw, fragment):
    _write(tmp_path, **columns)
    with pytest.raises(DataError) as e:
        _read(tmp_path, **kw)
    assert fragment in str(e.value)


def test_keys_of_other_sources_are_spec_errors():
    with pytest.raises(ValueError, match="source parquet does not use data.x"):
        DataSpec(source="parquet", path="t.parquet", target="y", x="a")


def test_not_a_parquet_file(tmp_path):
    (tmp_path / "t.parquet").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="not a readable parquet file"):
        _read(tmp_path, target="b")


def test_without_pyarrow_the_error_says_what_to_install(tmp_path, monkeypatch):
    _write(tmp_path, a=[1], y=[0])
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(DataError, match=r"reading parquet needs pyarrow: pip install 'nnctl\[data\]'"):
        _read(tmp_path, target="y")


def test_example_spec_trains_and_predicts_from_parquet(tmp_path):
    res = train_run(str(SPECS / "loans_parquet.yaml"), out=str(tmp_path / "r"), overrides=("train.epochs=15",))
    assert evaluate_run(res.run_dir, "test")["metrics"]["accuracy"] >= 0.7
    new = pa.table(
        {
            "region": ["north", None],
            "income": [80.0, 10.0],
            "age": [40, 30],
            "employment": ["salaried", "x"],
            "years_at_address": [10, 1],
        }
    )  # columns by name, in any order; a null and an unknown category are filled as in training
    pq.write_table(new, tmp_path / "new.parquet")
    out = predict_run(res.run_dir, str(tmp_path / "new.parquet"))
    assert out["examples"] == 2 and len(out["classes"]) == 2
