"""Using a finished run: `restore` rebuilds it from its directory, `evaluate_run` scores a split,
`predict_run` predicts new inputs from a CSV or .npz file."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jax
import numpy as np

from nnctl import rundir
from nnctl.app import provenance
from nnctl.app.anomaly import anomaly_scores
from nnctl.app.builder import Built, build
from nnctl.app.predict_io import write_predictions
from nnctl.app.scoring import score_arrays
from nnctl.app.session import load_run_spec
from nnctl.data.inputs import input_names, read_inputs
from nnctl.data.newdata import prepare_new
from nnctl.data.prepare import Dataset, Imputer, Scaler, prepare
from nnctl.data.sources.csv import CsvLayout
from nnctl.errors import DataError, RunDirError, SpecError
from nnctl.spec import Loaded, load_text


@dataclass(frozen=True)
class Restored:
    loaded: Loaded
    built: Built
    weights: dict  # {"params", "model_state"}
    scalers: tuple  # (input Scaler, target Scaler, Imputer)
    warnings: tuple = ()  # e.g. the data changed: the saved test examples are scored
    saved_split: bool = False  # the data is the test examples saved with the run (as its only split)


def restore(run_dir: str | Path, new_data: bool = False) -> Restored:
    """Rebuild the model from a run's saved spec and put its weights into it.

    Args:
        run_dir: a finished run directory.
        new_data: other data will be scored (eval --data): a changed or moved training file is no error.
    Returns:
        The loaded spec, the built model, its weights, the run's scalers, and warnings.
    Raises:
        RunDirError: the directory, its spec or its weights are missing or corrupt.
        DataError: the data changed since training and the run saved no test examples.
    """
    run = rundir.check_run_dir(run_dir)
    saved = rundir.read_msgpack(run / rundir.WEIGHTS)
    sc = rundir.read_json(run / rundir.SCALERS)
    try:
        scalers = (Scaler.from_dict(sc["x"]), Scaler.from_dict(sc["y"]), Imputer.from_dict(sc.get("impute")))
    except (KeyError, TypeError) as e:
        raise RunDirError(f"{run / rundir.SCALERS} is malformed ({e})") from None
    loaded, data, why = _training_data(run, scalers)
    warnings, from_saved = [], False
    if why is not None and (data is None or not new_data):
        record = provenance.data_record(run)
        assert record is not None  # `why` is only set for runs with a data record
        if not record.get("test_rows_saved") and data is not None:
            raise DataError(
                f"{why}; this run saved no test examples, so its test split cannot be rebuilt: restore the "
                f"file, or score it as new data with: nnctl eval {run} --data FILE"
            )
        text = provenance.saved_test_spec(run, rundir.read_bytes(run / rundir.SPEC).decode("utf-8"), record)
        loaded = load_text(text, str(run / rundir.SPEC), (), run)
        data = prepare(loaded.spec, loaded.analysis, loaded.base_dir, *scalers)
        data = replace(data, class_names=record.get("class_names"))
        warnings.append(provenance.warning_text(why, "test"))
        from_saved = True
    assert loaded is not None and data is not None  # set above, or an error was raised
    if sc.get("csv"):  # new inputs are read by the trained columns and categories, whatever the file holds now
        data = replace(data, layout=CsvLayout(tuple(sc["csv"]["features"]), sc["csv"]["categories"]))
    b = build(loaded, data)
    abstract = b.variables  # the shapes of the network build() made (abstract_variables, traced once)
    template = {
        "params": abstract.get("params", {}),
        "model_state": {k: v for k, v in abstract.items() if k != "params"},
    }
    weights = rundir.restore_into(template, saved, str(run / rundir.WEIGHTS))
    return Restored(loaded, b, weights, scalers, tuple(warnings), from_saved)


def _training_data(run: Path, scalers: tuple) -> tuple[Loaded | None, Dataset | None, str | None]:
    """The run's spec and data as prepared now, and how the data differs from what the run was trained on
    (None: the same, or a run without a data record). A missing data file is a difference, not an error,
    when the run saved its test examples."""
    record = provenance.data_record(run)
    try:
        loaded = load_run_spec(run)
        data = prepare(loaded.spec, loaded.analysis, loaded.base_dir, *scalers)
    except (SpecError, DataError) as e:
        if record is None or not record.get("test_rows_saved") or "no such" not in str(e):
            raise
        return None, None, f"the data file is not there ({str(e).splitlines()[0]})"
    return loaded, data, provenance.changed(record, data) if record else None


def evaluate_run(run_dir: str | Path, split: str = "test", data_path: str | None = None) -> dict:
    """Loss and metrics of a run on one of its splits (test by default), or on new labelled data, with the
    confusion matrix for classification.

    Args:
        run_dir: a finished run directory.
        split: train | val | test.
        data_path: a file of new labelled examples (read like the training data, with the run's columns,
            classes and scalers) scored instead of a split.
    Returns:
        {run_dir, split, examples, metrics, task, warnings[, confusion_matrix, class_names]}.
    """
    r = restore(run_dir, new_data=data_path is not None)
    data = r.built.data
    x: np.ndarray | None
    y: np.ndarray | None
    if data_path is not None:
        x, y = prepare_new(r.loaded.spec, r.loaded.analysis, data, Path(data_path))
        split = data_path
    elif r.saved_split:
        if split != "test":
            raise DataError(f"{r.warnings[0]}; only the test split was saved, not the {split} split")
        x, y = data.x_train, data.y_train
    else:
        x, y = data.split(split)
    if x is None:
        have = [s for s in ("train", "val", "test") if data.split(s)[0] is not None]
        raise DataError(
            f"this run has no {split} split (set data.{'test' if split == 'test' else 'validation'}_split "
            f"in the spec); available: {', '.join(have)}"
        )
    assert y is not None  # a split has both its inputs and its targets
    result = _score(r, x, y) | {"run_dir": str(run_dir), "split": split, "warnings": list(r.warnings)}
    return result


def _score(r: Restored, x: np.ndarray, y: np.ndarray) -> dict:
    return score_arrays(r.built, r.weights, x, y)


def predict_run(run_dir: str | Path, input_path: str, output: str | None = None) -> dict:
    """Predictions of a run for the examples of a CSV (columns by name), .npz or .parquet file, an image file or a
    folder of them (the result's `names`: the files, relative to the folder).

    Args:
        run_dir: a finished run directory.
        input_path: the new examples.
        output: where to write them (.csv or .npz), if given.
    Returns:
        {run_dir, input, examples, task, classes and probabilities | values}.
    """
    r = restore(run_dir, new_data=True)
    data = r.built.data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x = r.scalers[0].apply(read_inputs(input_path, r.loaded.spec.data, data))
    out = batched_predict(r.built.loop.obj.predict, r.weights, x, r.built.loop.eval_batch)
    result: dict[str, Any] = {
        "run_dir": str(run_dir),
        "input": input_path,
        "examples": len(x),
        "task": data.task,
        "warnings": [str(w.message) for w in caught],
    }
    names = input_names(input_path, r.loaded.spec.data)
    if names is not None:
        result["names"] = names  # the image files, in the order of the predictions
    if data.task == "classification":
        result["classes"] = out.argmax(-1).tolist()
        result["probabilities"] = out.tolist()
    elif data.task == "binary":
        result["classes"] = (out > 0.5).astype(int).reshape(len(out), -1).tolist()
        result["probabilities"] = out.tolist()
    if "classes" in result:  # the names the predictions file and the console show
        result["labels"] = class_labels(result["classes"], data.class_names, data.task)
    else:
        result["values"] = r.scalers[1].invert(out).tolist() if data.task == "regression" else out.tolist()
    if data.task == "autoencoder":  # how unlike the training data each example is (docs/learning.md)
        result["anomaly_scores"] = anomaly_scores(r.built.loop.obj, r.weights, x, r.built.loop.eval_batch).tolist()
    if output:
        write_predictions(Path(output), result, data.class_names)
    return result


def class_labels(classes: list, names: list[str] | None, task: str) -> list:
    """Class indices as the names the data used (text labels, numbered classes), else as index text."""
    if task == "binary" and not names:
        names = ["0", "1"]

    def name(c: int) -> str:
        return names[c] if names and 0 <= c < len(names) else str(c)

    return [[name(int(c)) for c in row] if isinstance(row, list) else name(int(row)) for row in classes]


def batched_predict(predict: Any, weights: dict, x: np.ndarray, batch: int) -> np.ndarray:
    """`predict` over `x` in fixed-size batches (the last one padded): one compiled program for any number of
    inputs, and only one batch on the device at a time."""
    fn = jax.jit(predict)
    b = max(1, min(batch, len(x)))
    outs = []
    for i in range(0, len(x), b):
        xb = x[i : i + b]
        n = len(xb)
        if n < b:
            xb = np.concatenate([xb, np.repeat(xb[-1:], b - n, axis=0)])
        outs.append(np.asarray(fn(weights["params"], weights["model_state"], xb))[:n])
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)
