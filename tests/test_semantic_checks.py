"""Mistakes caught before training (issue 11, item 2): the loss against the labels and output units, a
classification-looking target under a regression head, unscaled large targets, a step activation; every
problem of a spec and its data in one pass, in line order."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.errors import SpecError
from nnctl.spec import load_spec


def write(tmp_path, spec: str, y=None, x=None) -> str:
    if y is not None:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(len(y), 2)) if x is None else x
        rows = ["a,b,y"] + [f"{a:.4f},{b:.4f},{v:g}" for (a, b), v in zip(x, y)]
        (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "s.yaml").write_text(spec)
    return str(tmp_path / "s.yaml")


def csv_spec(units: int, activation: str, loss: str, data: str = "", hidden: str = "") -> str:
    return (
        f"data:\n  source: csv\n  path: d.csv\n  target: y\n{data}"
        f"model:\n  layers:\n{hidden}    - {{type: dense, units: {units}, activation: {activation}}}\n"
        f"train:\n  loss: {loss}\n  epochs: 1\n"
    )


THREE = np.arange(30) % 3
ERRORS = [
    (
        "bce-on-iris",
        "data: {source: 'builtin:iris'}\nmodel:\n  layers:\n    - {type: dense, units: 1, activation: sigmoid}\n"
        "train:\n  loss: binary_crossentropy\n  epochs: 1\n",
        None,
        [
            "s.yaml:6:9: train.loss",
            "binary_crossentropy with 1 output unit fits 2 classes, but the data has 3",
            "categorical_crossentropy with a last layer of 3 softmax units",
        ],
    ),
    (
        "bce-on-three-integer-labels",
        csv_spec(1, "sigmoid", "binary_crossentropy"),
        THREE,
        ["train.loss", "binary_crossentropy needs targets in [0, 1], but y ranges 0..2", "3 softmax units"],
    ),
    (
        "bce-on-values",
        csv_spec(1, "sigmoid", "binary_crossentropy"),
        np.linspace(0, 500, 30),
        ["binary_crossentropy needs targets in [0, 1], but y ranges 0..500", "use loss mse with a linear last layer"],
    ),
    (
        "cce-on-values",
        csv_spec(3, "softmax", "categorical_crossentropy"),
        np.linspace(0, 2, 30) + 0.25,
        ["categorical_crossentropy needs class labels, but y holds fractional values", "use loss mse"],
    ),
    (
        "step-activation",
        csv_spec(1, "linear", "mse", hidden="    - {type: dense, units: 4, activation: step}\n"),
        np.linspace(0, 1, 30),
        ["model.layers[0].activation", "step has a zero gradient", "use sigmoid"],
    ),
]


@pytest.mark.parametrize("cid, spec, y, fragments", ERRORS, ids=[e[0] for e in ERRORS])
def test_mistake_is_a_located_error(tmp_path, cid, spec, y, fragments):
    with pytest.raises(SpecError) as e:
        load_spec(write(tmp_path, spec, y))
    text = str(e.value)
    for f in fragments:
        assert f in text, f"{f!r} not in {text!r}"


WARNINGS = [
    (
        "classes-into-regression",
        csv_spec(1, "linear", "mse"),
        THREE + 1,
        [
            "train.loss",
            "y holds only 3 distinct whole numbers (1, 2, 3)",
            "categorical_crossentropy with 3 softmax units",
            "data.task: regression",
        ],
    ),
    (
        "large-unscaled-targets",
        csv_spec(1, "linear", "mse"),
        np.linspace(1000, 50000, 30),
        ["y ranges 1000..50000", "set data.normalize_target: standard"],
    ),
]


@pytest.mark.parametrize("cid, spec, y, fragments", WARNINGS, ids=[w[0] for w in WARNINGS])
def test_doubtful_spec_trains_with_a_warning(tmp_path, cid, spec, y, fragments):
    loaded = load_spec(write(tmp_path, spec, y))
    text = "\n".join(str(w) for w in loaded.analysis.warnings)
    for f in fragments:
        assert f in text, f"{f!r} not in {text!r}"


@pytest.mark.parametrize(
    "spec, y",
    [
        (csv_spec(1, "linear", "mse", data="  task: regression\n  normalize_target: standard\n"), THREE + 1),
        (csv_spec(1, "linear", "mse", data="  normalize_target: standard\n"), np.linspace(1000, 50000, 30)),
        (csv_spec(3, "softmax", "categorical_crossentropy"), THREE + 1),  # 1..3 become classes
        (csv_spec(1, "sigmoid", "binary_crossentropy"), np.arange(30) % 2),
    ],
)
def test_sound_specs_get_no_warning(tmp_path, spec, y):
    assert load_spec(write(tmp_path, spec, y)).analysis.warnings == []


def test_every_problem_in_one_pass_in_line_order(tmp_path):
    spec = csv_spec(
        1, "sigmoid", "binary_crossentropy", hidden="    - {type: dense, units: 4, activation: step}\n"
    ).replace("  epochs: 1\n", "  epochs: 1\n  early_stopping: {monitor: val_acc}\n")
    with pytest.raises(SpecError) as e:
        load_spec(write(tmp_path, spec, THREE))
    lines = [p.line for p in e.value.problems]
    assert len(lines) == 3 and lines == sorted(lines), str(e.value)
    assert [p.path for p in e.value.problems] == [
        "model.layers[0].activation",
        "train.loss",
        "train.early_stopping.monitor",
    ]
