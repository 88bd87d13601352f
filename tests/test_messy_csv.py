"""A catalogue of real-world messy tables: each is read (and its examples checked) or fails with one located,
correct hint, every problem of the file at once. Then the speed of a wide file."""

from __future__ import annotations

import time

import numpy as np
import pytest

from nnctl.errors import NnctlError


def spec(units=2, loss="categorical_crossentropy", activation="softmax", data="", target="label"):
    return f"""\
data:
  source: csv
  path: data.csv
  target: {target}
  shuffle: false
{data}model:
  layers:
    - {{type: dense, units: {units}, activation: {activation}}}
train:
  loss: {loss}
  epochs: 1
"""


REG = dict(units=1, loss="mse", activation="linear")
ROWS = "1,2,0\n3,4,1\n5,6,0\n7,8,1\n"


def prepared(tmp_path, content: bytes, spec_text: str):
    from nnctl.data.prepare import prepare
    from nnctl.spec import load_spec

    (tmp_path / "data.csv").write_bytes(content)
    (tmp_path / "spec.yaml").write_text(spec_text)
    loaded = load_spec(tmp_path / "spec.yaml")
    return prepare(loaded.spec, loaded.analysis, loaded.base_dir)


# (id, file bytes, spec, expected: dict of x (all examples, file order) / class_names, or a list of fragments)
OK = [
    ("utf8-bom", b"\xef\xbb\xbfheight,weight,label\n" + ROWS.encode(), spec(), {"x": [[1, 2], [3, 4], [5, 6], [7, 8]]}),
    (
        "utf16-excel-unicode-text",
        ("height\tweight\tlabel\r\n" + ROWS.replace(",", "\t").replace("\n", "\r\n")).encode("utf-16"),
        spec(),
        {"x": [[1, 2], [3, 4], [5, 6], [7, 8]]},
    ),
    (
        "latin1-categories",
        "city,t,label\nKöln,1,0\nMünchen,2,1\nKöln,3,0\nMünchen,4,1\n".encode("latin-1"),
        spec(data="  categorical: [city]\n"),
        {"x": [[1, 0, 1], [0, 1, 2], [1, 0, 3], [0, 1, 4]]},
    ),
    (
        "cp1252-header",
        "café,b,label\n".encode("cp1252") + ROWS.encode(),
        spec(data="  features: [café]\n"),
        {"x": [[1], [3], [5], [7]]},
    ),
    (
        "decimal-comma-semicolon",
        b"a;b;label\n1,5;2,25;0\n3,5;4;1\n-0,5;1e3;0\n2;2;1\n",
        spec(data="  decimal: ','\n"),
        {"x": [[1.5, 2.25], [3.5, 4], [-0.5, 1000], [2, 2]]},
    ),
    (
        "thousands-quoted",
        b'a,price,label\n1,"1,234",0\n2,"12,500",1\n3,999,0\n4,"1,000,000",1\n',
        spec(data="  thousands: ','\n"),
        {"x": [[1, 1234], [2, 12500], [3, 999], [4, 1e6]]},
    ),
    (
        "quoted-separators-excluded",
        b'name,b,label\n"Smith, J",1,0\n"Doe, A",2,1\n"Roe, R",3,0\n"Poe, E",4,1\n',
        spec(data="  exclude: [name]\n"),
        {"x": [[1], [2], [3], [4]]},
    ),
    (
        "id-excluded",
        b"id,a,label\nA1,1,0\nB2,2,1\nC3,3,0\nD4,4,1\n",
        spec(data="  exclude: [id]\n"),
        {"x": [[1], [2], [3], [4]]},
    ),
    (
        "date-excluded",
        b"date,a,label\n2024-01-05,1,0\n2024-01-06,2,1\n2024-01-07,3,0\n2024-01-08,4,1\n",
        spec(data="  exclude: [date]\n"),
        {"x": [[1], [2], [3], [4]]},
    ),
    (
        "labels-1-to-3",
        b"a,b,label\n1,2,1\n3,4,2\n5,6,3\n7,8,1\n",
        spec(units=3),
        {"y": [0, 1, 2, 0], "class_names": ["1", "2", "3"]},
    ),
    (
        "labels-10-20-task-classification",
        b"a,b,label\n1,2,10\n3,4,20\n5,6,10\n7,8,20\n",
        spec(units=3, data="  task: classification\n"),
        {"y": [0, 1, 0, 1], "class_names": ["10", "20"]},
    ),
    (
        "text-labels",
        b"a,label\n1,setosa\n2,virginica\n3,setosa\n4,versicolor\n",
        spec(units=3),
        {"y": [0, 2, 0, 1], "class_names": ["setosa", "versicolor", "virginica"]},
    ),
    (
        "missing-markers-mean",
        b"a,b,label\n1,NA,0\n3,,1\n5,?,0\n7,6,1\n9,null,0\n",
        spec(data="  missing: mean\n"),
        {"x": [[1, 6], [3, 6], [5, 6], [7, 6], [9, 6]]},
    ),
    (
        "custom-na-marker",
        b"a,b,label\n1,-,0\n3,4,1\n5,-,0\n7,4,1\n",
        spec(data="  missing: mean\n  na_values: ['-']\n"),
        {"x": [[1, 4], [3, 4], [5, 4], [7, 4]]},
    ),
    (
        "spaces-around",
        b" a , b ,label \n 1 , 2 ,0\n3, 4,1\n5 ,6 , 0\n7,8,1\n",
        spec(),
        {"x": [[1, 2], [3, 4], [5, 6], [7, 8]]},
    ),
    (
        "blank-lines-crlf",
        b"a,b,label\r\n1,2,0\r\n\r\n3,4,1\r\n5,6,0\r\n7,8,1\r\n\r\n",
        spec(),
        {"x": [[1, 2], [3, 4], [5, 6], [7, 8]]},
    ),
    (
        "pipe-separated",
        ROWS.replace(",", "|").join(["a|b|label\n", ""]).encode(),
        spec(),
        {"x": [[1, 2], [3, 4], [5, 6], [7, 8]]},
    ),
    (
        "quoted-numbers-sci",
        b'a,b,label\n"1.5",1e-3,0\n"2",2E2,1\n3,-1.5e+1,0\n4,0,1\n',
        spec(),
        {"x": [[1.5, 1e-3], [2, 200], [3, -15], [4, 0]]},
    ),
    (
        "excel-trailing-separators",
        b"a,b,label,,\n1,2,0,,\n3,4,1,,\n5,6,0,,\n7,8,1,,\n",
        spec(),
        {"x": [[1, 2], [3, 4], [5, 6], [7, 8]]},
    ),
    (
        "yes-no-target",
        b"a,b,label\n1,2,no\n3,4,yes\n5,6,no\n7,8,yes\n",
        spec(),
        {"y": [0, 1, 0, 1], "class_names": ["no", "yes"]},
    ),
]

BAD = [
    (
        "decimal-comma-unset",
        b"a;b;label\n1,5;2,25;0\n3,5;4;1\n",
        spec(),
        ["column 'a' holds decimal commas (e.g. '1,5')", "set data.decimal: ','"],
    ),
    (
        "thousands-unset",
        b'a,price,label\n1,"1,234",0\n2,"12,500",1\n',
        spec(),
        ["column 'price' holds thousands separators (e.g. '1,234')", "set data.thousands: ','"],
    ),
    (
        "id-column",
        b"id,a,label\nA1,1,0\nB2,2,1\nC3,3,0\n",
        spec(),
        ["row 2, column 'id': 'A1' is not a number", "an ID or free text? list the column in data.exclude"],
    ),
    (
        "date-column",
        b"date,a,label\n2024-01-05,1,0\n2024-01-06,2,1\n",
        spec(),
        ["column 'date' holds dates or times (e.g. '2024-01-05')", "data.exclude"],
    ),
    (
        "date-dmy",
        b"when,a,label\n05/01/2024,1,0\n06/01/2024,2,1\n",
        spec(),
        ["column 'when' holds dates or times (e.g. '05/01/2024')"],
    ),
    (
        "percent",
        b"a,rate,label\n1,12%,0\n2,15%,1\n",
        spec(),
        ["column 'rate' holds units or currency signs (e.g. '12%')"],
    ),
    (
        "currency",
        b"a,price,label\n1,$12.50,0\n2,$3,1\n",
        spec(),
        ["column 'price' holds units or currency signs (e.g. '$12.50')"],
    ),
    (
        "text-feature",
        b"a,colour,label\n1,red,0\n3,blue,1\n5,red,0\n",
        spec(),
        ["row 2, column 'colour': 'red' is not a number", "list the column in data.categorical"],
    ),
    (
        "odd-marker",
        b"a,b,label\n1,2,0\n3,-,1\n5,6,0\n7,8,1\n9,1,0\n11,2,1\n",
        spec(),
        ["column 'b': 1 value(s) are not numbers (row 3: '-')", "add them to data.na_values"],
    ),
    ("row-after-blank-line", b"a,b,label\n1,2,0\n\n3,x,1\n", spec(), ["row 4, column 'b': 'x' is not a number"]),
    ("duplicate-header", b"a,a,label\n1,2,0\n", spec(), ["column 'a' appears twice in the header (columns 1 and 2)"]),
    (
        "wrong-encoding-given",
        "a,b,label\nKöln,2,0\n".encode("latin-1"),
        spec(data="  encoding: utf-8\n"),
        ["cannot be read as utf-8 text", "fix data.encoding"],
    ),
    (
        "exclude-unknown",
        ROWS.join(["a,b,label\n", ""]).encode(),
        spec(data="  exclude: [idd]\n"),
        ["data.exclude[0]", "no column 'idd'"],
    ),
    (
        "labels-0-and-5",
        b"a,b,label\n1,2,0\n3,4,5\n",
        spec(units=3),
        [
            "labels range 0..5 but the output layer has 3 units",
            "or to 2 for the 2 distinct labels",
            "data.task: classification",
        ],
    ),
    ("short-row", b"a,b,label\n1,2,0\n3,4\n", spec(), ["row 3 has 2 fields, the header has 3"]),
    (
        "all-problems-at-once",
        b"id,date,a,b,colour,label\nA1,2024-01-05,1,2,red,0\nB2,2024-01-06,1;5,x,blue,1\nC3,2024-01-07,3,4,red,\n",
        spec(target="label"),
        ["6 problems in", "the target is missing", "'id'", "'date' holds dates", "column 'b'", "column 'colour'"],
    ),
    (
        "text-targets-several",
        b"a,t1,t2\n1,x,y\n2,z,w\n",
        spec(target="[t1, t2]"),
        ["target columns ['t1', 't2'] must be numeric"],
    ),
]


@pytest.mark.parametrize("cid, content, spec_text, want", OK, ids=[c[0] for c in OK])
def test_messy_table_is_read(tmp_path, cid, content, spec_text, want):
    d = prepared(tmp_path, content, spec_text)
    if "x" in want:
        np.testing.assert_allclose(d.x_train, np.array(want["x"], np.float32), rtol=1e-6)
    if "y" in want:
        np.testing.assert_array_equal(d.y_train, want["y"])
    assert d.class_names == want.get("class_names", d.class_names)


@pytest.mark.parametrize("cid, content, spec_text, fragments", BAD, ids=[c[0] for c in BAD])
def test_messy_table_fails_with_the_fix(tmp_path, cid, content, spec_text, fragments):
    with pytest.raises(NnctlError) as e:
        prepared(tmp_path, content, spec_text)
    text = str(e.value)
    for f in fragments:
        assert f in text, f"{f!r} not in {text!r}"
    assert "Traceback" not in text and "data.csv" in text


def test_catalogue_size():
    assert len(OK) + len(BAD) >= 25


def test_wide_csv_reads_in_linear_time(tmp_path):
    """10,000 columns (issue: the layout code was quadratic in the column count: 9 s)."""
    from nnctl.data.sources import read
    from nnctl.spec.models import DataSpec

    n = 10_000
    rows = np.arange(5 * n, dtype=np.float64).reshape(5, n) % 7
    text = ",".join(f"c{i}" for i in range(n)) + ",label\n"
    text += "".join(",".join(f"{v:g}" for v in r) + f",{k % 2}\n" for k, r in enumerate(rows))
    (tmp_path / "wide.csv").write_text(text)
    data = DataSpec(source="csv", path="wide.csv", target="label")
    import pandas  # noqa: F401  (its one-off import is not what is measured)

    t = time.perf_counter()
    raw = read(data, tmp_path, 0)
    took = time.perf_counter() - t
    assert raw.x.shape == (5, n) and raw.x[4, 9999] == rows[4, 9999]
    assert took < 2.0, f"{took:.2f} s for {n} columns"


def test_an_excel_table_trains_and_scores_new_rows_from_the_cli(tmp_path):
    """BOM, ';' and decimal commas, an ID and a date column excluded, classes numbered 1..3: trains, then
    `nnctl eval RUN --data` scores new rows written the same way."""
    from typer.testing import CliRunner

    from nnctl.cli import app

    rng = np.random.default_rng(0)
    lines = ["id;date;size;weight;grade"]
    for i in range(60):
        k = i % 3
        lines.append(
            f"R{i};2024-01-{1 + i % 28:02d};{k + rng.normal() * 0.1:.2f};{2 * k + 1:.1f};{k + 1}".replace(".", ",")
        )
    (tmp_path / "t.csv").write_bytes(("\n".join(lines) + "\n").encode("utf-8-sig"))
    (tmp_path / "new.csv").write_bytes(("\n".join(lines[:1] + lines[1:13]) + "\n").encode("utf-8-sig"))
    (tmp_path / "s.yaml").write_text(
        "data: {source: csv, path: t.csv, target: grade, exclude: [id, date], decimal: ',', test_split: 0.2}\n"
        "model: {layers: [{type: dense, units: 3, activation: softmax}]}\n"
        "train: {loss: categorical_crossentropy, metrics: [accuracy], epochs: 30, optimizer: {type: adam, learning_rate: 0.1}}\n"
    )
    r = CliRunner().invoke(app, ["train", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "run"), "-q"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["eval", str(tmp_path / "run"), "--data", str(tmp_path / "new.csv"), "--json"])
    assert r.exit_code == 0, r.output
    import json

    res = json.loads(r.output)
    assert res["examples"] == 12 and res["class_names"] == ["1", "2", "3"] and res["metrics"]["accuracy"] > 0.9
