"""Writing predictions: .npz (arrays) or CSV (one row per example; class names, probabilities or values)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnctl import rundir


def run_inputs(run_dir: str | Path) -> dict:
    """What `predict` needs as input for a run: the CSV columns by name (categorical ones with their known
    categories), or the per-example input shape of an .npz `x` array.

    Returns:
        {run_dir, columns: [{name, categories | None}] | None, input_shape, input_values, classes}
        (input_shape and classes: None for runs written before data.json).
    """
    run = rundir.check_run_dir(run_dir)
    sc = rundir.read_json(run / rundir.SCALERS)
    layout = sc.get("csv")
    data = rundir.read_json(run / "data.json") if (run / "data.json").exists() else {}
    columns = [{"name": c, "categories": layout["categories"].get(c)} for c in layout["features"]] if layout else None
    shape = data.get("input_shape")
    width = int(np.prod(shape)) if shape else None
    return {
        "run_dir": str(run),
        "columns": columns,
        "input_shape": shape,
        "input_values": width,
        "classes": data.get("class_names"),
    }


def write_predictions(path: Path, result: dict, class_names: list[str] | None) -> None:
    """Write `predict_run`'s result to `path` (.npz: arrays; else CSV)."""
    if path.suffix == ".npz":
        arrays = {
            k: np.asarray(v)
            for k, v in result.items()
            if k in ("classes", "probabilities", "values", "names", "anomaly_scores")
        }
        with open(path, "wb") as f:
            # numpy's stub types savez's `allow_pickle: bool` beside **kwds, and mypy checks every value of
            # `arrays` against it; the keys here are only classes/probabilities/values/names/anomaly_scores
            np.savez(f, **arrays)  # type: ignore[arg-type]
        return
    rows = []
    if "values" in result:
        vals = np.asarray(result["values"]).reshape(len(result["values"]), -1)
        header = [f"y{i}" for i in range(vals.shape[1])] if vals.shape[1] > 1 else ["prediction"]
        rows = [header] + [[f"{v:.6g}" for v in row] for row in vals]
        if "anomaly_scores" in result:  # autoencoders and vaes: the reconstruction error, last column
            rows = [rows[0] + ["anomaly_score"]] + [
                r + [f"{a:.6g}"] for r, a in zip(rows[1:], result["anomaly_scores"])
            ]
    elif (
        np.ndim(result["classes"]) == 2 and np.shape(result["classes"])[1] > 1 and np.ndim(result["probabilities"]) == 3
    ):
        # per-step classes (a tagger): one row per example, one class column per step (full probabilities: .npz)
        cls = np.asarray(result["classes"])
        names = class_names or [str(i) for i in range(np.shape(result["probabilities"])[-1])]
        rows = [[f"class_{t}" for t in range(cls.shape[1])]] + [
            [names[c] if c < len(names) else str(c) for c in row] for row in cls
        ]
    else:
        probs = np.asarray(result["probabilities"]).reshape(len(result["probabilities"]), -1)
        cls = np.asarray(result["classes"]).reshape(len(probs), -1)[:, 0]
        names = class_names or [str(i) for i in range(max(probs.shape[1], 2))]
        header = ["class"] + [f"p_{n}" for n in (names if probs.shape[1] > 1 else [names[-1]])]
        rows = [header] + [
            [names[c] if c < len(names) else str(c)] + [f"{v:.6g}" for v in p] for c, p in zip(cls, probs)
        ]
    if "names" in result:  # image files: which prediction is whose (names quoted as CSV needs)
        rows = [["file", *rows[0]]] + [[_csv_cell(n), *r] for n, r in zip(result["names"], rows[1:])]
    path.write_text("\n".join(",".join(r) for r in rows) + "\n")


def _csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text
