"""data.split (random | stratified | sequential) and data.group_by (issue 11, item 6)."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.errors import NnctlError


def prepared(tmp_path, csv: str, data: str, units=1, loss="mse"):
    from nnctl.data.prepare import prepare
    from nnctl.spec import load_spec

    (tmp_path / "d.csv").write_text(csv)
    act = "linear" if loss == "mse" else "softmax"
    (tmp_path / "s.yaml").write_text(
        f"data:\n  source: csv\n  path: d.csv\n  target: y\n{data}"
        f"model:\n  layers:\n    - {{type: dense, units: {units}, activation: {act}}}\n"
        f"train:\n  loss: {loss}\n  epochs: 1\n"
    )
    loaded = load_spec(tmp_path / "s.yaml")
    return prepare(loaded.spec, loaded.analysis, loaded.base_dir)


SERIES = "t,y\n" + "".join(f"{i},{i * 0.5}\n" for i in range(20))


def test_sequential_split_tests_on_the_last_rows(tmp_path):
    d = prepared(tmp_path, SERIES, "  split: sequential\n  test_split: 0.25\n  validation_split: 0.2\n")
    assert d.x_test[:, 0].tolist() == [15, 16, 17, 18, 19]
    assert d.x_val[:, 0].tolist() == [12, 13, 14]
    assert d.x_train[:, 0].tolist() == list(range(12))


def test_random_split_mixes_time(tmp_path):
    d = prepared(tmp_path, SERIES, "  split: random\n  test_split: 0.25\n")
    assert sorted(d.x_test[:, 0].tolist()) != [15, 16, 17, 18, 19] and len(d.x_test) == 5


def test_stratified_needs_classes(tmp_path):
    with pytest.raises(NnctlError, match="data.split: stratified needs class labels"):
        prepared(tmp_path, SERIES, "  split: stratified\n  test_split: 0.25\n")


GROUPS = "patient,a,y\n" + "".join(f"p{g},{g * 10 + k},{k % 2}\n" for g in range(10) for k in range(3))


@pytest.mark.parametrize("split", ["random", "sequential"])
def test_group_by_keeps_each_group_on_one_side(tmp_path, split):
    d = prepared(
        tmp_path,
        GROUPS,
        f"  group_by: patient\n  split: {split}\n  test_split: 0.3\n  validation_split: 0.2\n",
        units=2,
        loss="categorical_crossentropy",
    )
    assert d.input_shape == (1,)  # the group column is not a feature
    sides = [{int(v) // 10 for v in a[:, 0]} for a in (d.x_train, d.x_val, d.x_test)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert len(d.x_test) == 9 and all(len(a) % 3 == 0 for a in (d.x_train, d.x_val))
    if split == "sequential":
        assert sides[2] == {7, 8, 9}


def test_group_by_unknown_column_is_located(tmp_path):
    with pytest.raises(
        NnctlError, match=r"data.group_by.*no column 'patiant' \(data.group_by\). Did you mean 'patient'"
    ):
        prepared(tmp_path, GROUPS, "  group_by: patiant\n  test_split: 0.3\n", units=2, loss="categorical_crossentropy")


def test_group_by_with_dropped_rows_stays_aligned(tmp_path):
    csv = GROUPS.replace("p3,30,0", "p3,,0").replace("p5,51,1", "p5,NA,1")
    d = prepared(
        tmp_path,
        csv,
        "  group_by: patient\n  missing: drop\n  test_split: 0.3\n",
        units=2,
        loss="categorical_crossentropy",
    )
    all_x = np.concatenate([d.x_train, d.x_test])[:, 0]
    assert len(all_x) == 28 and 30 not in all_x and 51 not in all_x
    sides = [{int(v) // 10 for v in a[:, 0]} for a in (d.x_train, d.x_test)]
    assert not sides[0] & sides[1]
