"""Using a finished run: `restore` rebuilds it from its directory, `evaluate_run` scores a split,
`predict_run` predicts new inputs from a CSV or .npz file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from nnctl import rundir
from nnctl.app.builder import Built, build
from nnctl.app.predict_io import write_predictions
from nnctl.app.scoring import score
from nnctl.app.session import load_run_spec
from nnctl.data.inputs import read_inputs
from nnctl.data.prepare import Imputer, Scaler, prepare
from nnctl.errors import RunDirError
from nnctl.kinds.base import abstract_variables
from nnctl.spec import Loaded


@dataclass(frozen=True)
class Restored:
    loaded: Loaded
    built: Built
    weights: dict  # {"params", "model_state"}
    scalers: tuple  # (input Scaler, target Scaler, Imputer)


def restore(run_dir: str | Path) -> Restored:
    """Rebuild the model from a run's saved spec and put its weights into it.

    Args:
        run_dir: a finished run directory.
    Returns:
        The loaded spec, the built model, its weights and the run's scalers.
    Raises:
        RunDirError: the directory, its spec or its weights are missing or corrupt.
    """
    run = rundir.check_run_dir(run_dir)
    loaded = load_run_spec(run)
    saved = rundir.read_msgpack(run / rundir.WEIGHTS)
    sc = rundir.read_json(run / rundir.SCALERS)
    try:
        scalers = (Scaler.from_dict(sc["x"]), Scaler.from_dict(sc["y"]), Imputer.from_dict(sc.get("impute")))
    except (KeyError, TypeError) as e:
        raise RunDirError(f"{run / rundir.SCALERS} is malformed ({e})") from None
    data = prepare(loaded.spec, loaded.analysis, loaded.base_dir, *scalers)
    b = build(loaded, data)
    abstract = abstract_variables(b.loop.obj.net, data.input_shape)
    template = {
        "params": abstract.get("params", {}),
        "model_state": {k: v for k, v in abstract.items() if k != "params"},
    }
    weights = rundir.restore_into(template, saved, str(run / rundir.WEIGHTS))
    return Restored(loaded, b, weights, scalers)


def evaluate_run(run_dir: str | Path, split: str = "test") -> dict:
    """Loss and metrics of a run on one of its splits (test by default), with the confusion matrix for
    classification.

    Args:
        run_dir: a finished run directory.
        split: train | val | test.
    Returns:
        {run_dir, split, examples, metrics, task[, confusion_matrix, class_names]}.
    """
    r = restore(run_dir)
    return {"run_dir": str(run_dir), **score(r.built, r.weights, split)}


def predict_run(run_dir: str | Path, input_path: str, output: str | None = None) -> dict:
    """Predictions of a run for the examples of a CSV (columns by name) or .npz file.

    Args:
        run_dir: a finished run directory.
        input_path: the new examples.
        output: where to write them (.csv or .npz), if given.
    Returns:
        {run_dir, input, examples, task, classes and probabilities | values}.
    """
    r = restore(run_dir)
    data = r.built.data
    x = r.scalers[0].apply(read_inputs(input_path, r.loaded.spec.data, data))
    out = batched_predict(r.built.loop.obj.predict, r.weights, x, r.built.loop.eval_batch)
    result: dict[str, Any] = {"run_dir": str(run_dir), "input": input_path, "examples": len(x), "task": data.task}
    if data.task == "classification":
        result["classes"] = out.argmax(-1).tolist()
        result["probabilities"] = out.tolist()
    elif data.task == "binary":
        result["classes"] = (out > 0.5).astype(int).reshape(len(out), -1).tolist()
        result["probabilities"] = out.tolist()
    else:
        result["values"] = r.scalers[1].invert(out).tolist() if data.task == "regression" else out.tolist()
    if output:
        write_predictions(Path(output), result, data.class_names)
    return result


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
