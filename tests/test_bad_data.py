"""A catalogue of bad data files: each gives a clear error (DataError, or a located SpecError when the
problem is found while checking the spec) that names the file and the row/column or array. Never a
traceback."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.errors import DataError, NnctlError, SpecError
from nnctl.spec import load_text


def csv_spec(units=3, loss="categorical_crossentropy", extra_data="", activation="softmax"):
    return f"""\
data:
  source: csv
  path: data.csv
  target: label
{extra_data}model:
  layers:
    - {{type: dense, units: {units}, activation: {activation}}}
train:
  loss: {loss}
  epochs: 1
"""


def npz_spec(x="x", y="y", units=2, input_shape=None):
    shape = f"  input_shape: {input_shape}\n" if input_shape else ""
    return f"""\
data:
  source: npz
  path: data.npz
  x: {x}
  y: {y}
model:
{shape}  layers:
    - {{type: flatten}}
    - {{type: dense, units: {units}, activation: softmax}}
train:
  loss: categorical_crossentropy
  epochs: 1
"""


def inline_spec(x, y):
    return f"""\
data:
  source: inline
  x: {x}
  y: {y}
  task: regression
model:
  layers:
    - {{type: dense, units: 1}}
train:
  loss: mse
  epochs: 1
"""


def load_and_prepare(tmp_path, spec_text):
    from nnctl.data.prepare import prepare
    from nnctl.spec import load_spec

    (tmp_path / "spec.yaml").write_text(spec_text)
    loaded = load_spec(tmp_path / "spec.yaml")
    return prepare(loaded.spec, loaded.analysis, loaded.base_dir)


def npz(tmp_path, **arrays):
    with open(tmp_path / "data.npz", "wb") as f:
        np.savez(f, **arrays)


X10 = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
Y10 = np.arange(10) % 2

# (id, file writer, spec, expected fragments (all must appear), expected error type)
CSV = [
    ("csv-empty", b"", csv_spec(), ["data.csv", "the file is empty"]),
    ("csv-header-only", b"a,b,label\n", csv_spec(), ["data.csv", "no data rows after the header"]),
    ("csv-ragged", b"a,b,label\n1,2,0\n3,1\n", csv_spec(), ["data.csv", "row 3 has 2 fields, the header has 3"]),
    ("csv-ragged-long", b"a,b,label\n1,2,0\n3,1,1,7\n", csv_spec(), ["data.csv", "row 3 has 4 fields"]),
    (
        "csv-string-in-numeric",
        b"a,b,label\n1,2,0\n3,abc,1\n",
        csv_spec(),
        ["data.csv", "row 3, column 'b': 'abc' is not a number"],
    ),
    (
        "csv-empty-cell",
        b"a,b,label\n1,2,0\n3,,1\n",
        csv_spec(),
        ["data.csv", "row 3, column 'b': missing value ''", "set data.missing: drop or mean"],
    ),
    ("csv-nan", b"a,b,label\n1,2,0\n3,nan,1\n", csv_spec(), ["data.csv", "row 3, column 'b': missing value 'nan'"]),
    ("csv-na-marker", b"a,b,label\n1,2,0\n3,NA,1\n", csv_spec(), ["data.csv", "row 3, column 'b': missing value 'NA'"]),
    (
        "csv-text-feature",
        b"a,b,label\n1,red,0\n3,blue,1\n",
        csv_spec(),
        ["data.csv", "row 2, column 'b': 'red' is not a number", "list the column in data.categorical"],
    ),
    (
        "csv-categorical-target",
        b"a,b,label\n1,2,0\n",
        csv_spec(extra_data="  categorical: [label]\n"),
        ["spec.yaml:", "data.categorical[0]", "'label' is a target"],
    ),
    (
        "csv-categorical-unknown",
        b"a,b,label\n1,2,0\n",
        csv_spec(extra_data="  categorical: [colour]\n"),
        ["data.categorical[0]", "'colour' is not a column"],
    ),
    (
        "csv-wrong-delimiter",
        b"a;b;label\n1;2;0\n",
        csv_spec(extra_data="  delimiter: ','\n"),
        ["data.csv", "no column 'label'", "Columns: a;b;label"],
    ),
    ("csv-inf", b"a,b,label\n1,inf,0\n3,4,1\n", csv_spec(), ["data.csv", "non-finite value inf at row 0, column 1"]),
    (
        "csv-nan-label",
        b"a,b,label\n1,2,0\n3,4,nan\n",
        csv_spec(),
        ["data.csv", "row 3, column 'label': the target is missing"],
    ),
    ("csv-no-target", b"a,b,lable\n1,2,0\n", csv_spec(), ["data.csv", "no column 'label'. Did you mean 'lable'?"]),
    (
        "csv-no-feature",
        b"a,b,label\n1,2,0\n",
        csv_spec(extra_data="  features: [a, c]\n"),
        ["data.csv", "no feature column 'c'"],
    ),
    (
        "csv-labels-out-of-range",
        b"a,b,label\n1,2,0\n3,4,5\n",
        csv_spec(),
        ["data.csv", "labels range 0..5 but the output layer has 3 units"],
    ),
    ("csv-negative-label", b"a,b,label\n1,2,0\n3,4,-1\n", csv_spec(), ["data.csv", "labels range -1..0"]),
    (
        "csv-fractional-label",
        b"a,b,label\n1,2,0\n3,4,1.5\n",
        csv_spec(extra_data="  task: classification\n"),
        ["data.csv", "classification labels must be whole numbers"],
    ),
    (
        "csv-binary-not-01",
        b"a,b,label\n1,2,0\n3,4,2\n",
        csv_spec(units=1, loss="binary_crossentropy", activation="sigmoid", extra_data="  task: binary\n"),
        [
            "spec.yaml:",
            "train.loss",
            "binary_crossentropy needs targets in [0, 1], but label ranges 0..2",
        ],  # caught before training
    ),
    (
        "csv-not-utf8",
        b"a,b,label\n1,2,0\n\xff\xfe,4,1\n",
        csv_spec(extra_data="  encoding: utf-8\n"),
        ["data.csv", "cannot be read as utf-8 text", "fix data.encoding"],
    ),
    (
        "csv-not-utf8-read-as-cp1252",
        b"a,b,label\n1,2,0\n\xff\xfe,4,1\n",
        csv_spec(),
        ["data.csv", "row 3, column 'a': '\xff\xfe' is not a number"],
    ),
    ("csv-missing-file", None, csv_spec(), ["data.csv", "no such CSV file"]),
]

NPZ = [
    ("npz-wrong-x-key", dict(inputs=X10, y=Y10), npz_spec(), ["data.npz", "no array 'x'"]),
    ("npz-wrong-y-key", dict(x=X10, labels=Y10), npz_spec(), ["data.npz", "no array 'y' for y", "Arrays: x, labels"]),
    ("npz-length-mismatch", dict(x=X10, y=Y10[:9]), npz_spec(), ["data.npz", "x has 10 examples but y has 9"]),
    (
        "npz-object-array",
        dict(x=np.array([{"a": 1}] * 10, dtype=object), y=Y10),
        npz_spec(),
        ["data.npz", "allow_pickle=False"],
    ),
    (
        "npz-string-array",
        dict(x=X10, y=np.array(["cat"] * 10)),
        npz_spec(),
        ["data.npz", "has dtype <U3; expected numbers"],
    ),
    (
        "npz-nan",
        dict(x=np.where(np.arange(40).reshape(10, 4) == 17, np.nan, X10), y=Y10),
        npz_spec(),
        ["data.npz", "non-finite value nan at row 4, column 1"],
    ),
    (
        "npz-wrong-image-shape",
        dict(x=np.zeros((10, 4, 4), np.float32), y=Y10),
        npz_spec(input_shape="[5, 5]"),
        ["spec.yaml:7:16", "have shape [4, 4]", "cannot be reshaped to input_shape [5, 5]"],
    ),
    ("npz-labels-out-of-range", dict(x=X10, y=np.arange(10)), npz_spec(), ["data.npz", "labels range 0..9"]),
    ("npz-empty", dict(x=np.zeros((0, 4), np.float32), y=np.zeros(0)), npz_spec(), ["data.npz", "no examples"]),
    ("npz-garbage", b"this is not a zip file", npz_spec(), ["data.npz", "not a readable npz file"]),
    ("npz-truncated", "truncate", npz_spec(), ["data.npz", "not a readable npz file"]),
    ("npz-missing-file", None, npz_spec(), ["data.npz", "no such npz file"]),
]

INLINE = [
    ("inline-length-mismatch", inline_spec("[[1], [2], [3]]", "[1, 2]"), ["inline", "x has 3 examples but y has 2"]),
    ("inline-nan", inline_spec("[[1], [.nan], [3]]", "[1, 2, 3]"), ["inline x", "non-finite value nan at row 1"]),
    ("inline-ragged", inline_spec("[[1, 2], [3]]", "[1, 2]"), ["inline x", "same length"]),
    ("inline-string", inline_spec("[[1], [a], [3]]", "[1, 2, 3]"), ["inline x", "rows must be numbers"]),
]


def check(err: Exception, fragments: list[str]):
    assert isinstance(err, (DataError, SpecError)), type(err)
    text = str(err)
    for f in fragments:
        assert f in text, f"{f!r} not in {text!r}"
    assert "Traceback" not in text


@pytest.mark.parametrize("cid, content, spec, fragments", CSV, ids=[c[0] for c in CSV])
def test_bad_csv(tmp_path, cid, content, spec, fragments):
    if content is not None:
        (tmp_path / "data.csv").write_bytes(content)
    with pytest.raises(NnctlError) as e:
        load_and_prepare(tmp_path, spec)
    check(e.value, fragments)


@pytest.mark.parametrize("cid, content, spec, fragments", NPZ, ids=[c[0] for c in NPZ])
def test_bad_npz(tmp_path, cid, content, spec, fragments):
    if isinstance(content, dict):
        npz(tmp_path, **content)
    elif content == "truncate":
        npz(tmp_path, x=X10, y=Y10)
        data = (tmp_path / "data.npz").read_bytes()
        (tmp_path / "data.npz").write_bytes(data[: len(data) // 2])
    elif content is not None:
        (tmp_path / "data.npz").write_bytes(content)
    with pytest.raises(NnctlError) as e:
        load_and_prepare(tmp_path, spec)
    check(e.value, fragments)


@pytest.mark.parametrize("cid, spec, fragments", INLINE, ids=[c[0] for c in INLINE])
def test_bad_inline(tmp_path, cid, spec, fragments):
    with pytest.raises(NnctlError) as e:
        load_and_prepare(tmp_path, spec)
    check(e.value, fragments)


def test_catalogue_size():
    assert len(CSV) + len(NPZ) + len(INLINE) >= 30


def test_cli_reports_bad_data_without_traceback(tmp_path):
    from typer.testing import CliRunner

    from nnctl.cli import app

    (tmp_path / "data.csv").write_bytes(b"a,b,label\n1,2,0\n3,abc,1\n")
    (tmp_path / "spec.yaml").write_text(csv_spec())
    r = CliRunner().invoke(app, ["train", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "run")])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "row 3, column 'b': 'abc' is not a number" in " ".join(r.output.split())
    assert not (tmp_path / "run").exists()  # nothing half-made


@pytest.mark.parametrize("value", ["1e39", "100000000000000000000000000000000000000000000000000000000000000", ".inf"])
def test_inline_number_too_large_for_float32_is_a_located_error(value):
    """A number beyond float32 (an int too large to convert at all, or one that would become inf) is a spec
    error naming it, not an OverflowError (found by tests/test_fuzz.py)."""
    text = (
        f"name: a\ndata: {{source: inline, x: [[0, 0], [1, {value}]], y: [0, 1]}}\n"
        "model: {layers: [{type: dense, units: 1, activation: sigmoid}]}\ntrain: {loss: binary_crossentropy}\n"
    )
    with pytest.raises(SpecError, match="too large for float32"):
        load_text(text, "f.yaml")
