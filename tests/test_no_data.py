"""`inspect params` counts from `model.input_shape` alone: no data section, or a data file not there yet."""

import pytest

from nnctl.app.inspect import params_report
from nnctl.errors import SpecError
from nnctl.spec import load_text

NOTES_1024 = """
model:
  input_shape: [1024]
  layers:
    - {type: dense, units: 5, activation: relu}
    - {type: dense, units: 10, activation: relu}
    - {type: dense, units: 10, activation: relu}
    - {type: dense, units: 1000, activation: softmax}
train: {loss: categorical_crossentropy}
"""


def test_notes_16295_parameters_without_any_data():
    rep = params_report(load_text(NOTES_1024, require_sources=False))
    assert [layer["count"] for layer in rep["layers"]] == [5125, 60, 110, 11000]
    assert rep["totals"]["total"]["count"] == 16295


def test_missing_data_file_is_a_warning_when_input_shape_is_given():
    text = "data: {source: csv, path: not_written_yet.csv, target: y}\n" + NOTES_1024
    loaded = load_text(text, require_sources=False)
    assert any("no such CSV file" in str(w) for w in loaded.analysis.warnings)
    assert params_report(loaded)["totals"]["total"]["count"] == 16295
    with pytest.raises(SpecError, match="no such CSV file"):
        load_text(text)  # training needs the file


def test_training_without_data_is_a_located_spec_error():
    with pytest.raises(SpecError, match="this spec has no data"):
        load_text(NOTES_1024)


def test_without_input_shape_or_data_the_error_says_set_input_shape():
    with pytest.raises(SpecError, match="no data: set model.input_shape"):
        load_text(NOTES_1024.replace("  input_shape: [1024]\n", ""), require_sources=False)


def test_source_none_refuses_data_keys():
    with pytest.raises(SpecError, match="source none reads no examples"):
        load_text("data: {source: none, path: a.csv}\n" + NOTES_1024, require_sources=False)
