"""`export_run`: a finished run as a file other runtimes load, checked before it is handed over.

ONNX (`model.onnx`, converted by jax2onnx) or StableHLO (`model.stablehlo`, serialised by jax.export), each
with `metadata.json` beside it: the spec, class names, nnctl/JAX versions, the input/output shapes and the
preprocessing (normalisation is inside the graph; column order and one-hot encoding are written as formulas).
Every export is loaded back (onnxruntime; jax.export.deserialize) and run on held-out examples against the
run's own prediction; the largest difference is recorded and returned."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from nnctl.app.export_formats import run_onnx, run_stablehlo, write_onnx, write_stablehlo
from nnctl.app.export_graph import ExportError, held_out, metadata, prediction_graph, reference
from nnctl.app.restore import restore

FORMATS = ("onnx", "stablehlo")
FILES = {"onnx": "model.onnx", "stablehlo": "model.stablehlo"}
TOLERANCE = 1e-4  # float32: an export differing more than this (relative above 1) from `predict` is refused


def parse_batch(batch: str | int) -> int | None:
    """'dynamic' -> None (any batch size); a positive integer -> that fixed batch size."""
    if isinstance(batch, int) or str(batch).isdigit():
        n = int(batch)
        if n >= 1:
            return n
    elif str(batch) == "dynamic":
        return None
    raise ExportError(f"--batch {batch!r}: expected 'dynamic' or a positive integer batch size")


def export_run(run_dir: str | Path, fmt: str = "onnx", output: str | None = None, batch: str | int = "dynamic") -> dict:
    """Export a run's prediction to `output` (a directory; default RUN/export-FORMAT) and verify it.

    Args:
        run_dir: a finished run directory.
        fmt: onnx | stablehlo.
        output: the directory to write (created; files of an earlier export there are replaced).
        batch: 'dynamic' (any batch size) or a fixed batch size.
    Returns:
        The metadata written, with `path` (the model file) and `verification` (split, examples,
        max_abs_diff against the run's prediction).
    Raises:
        ExportError: unknown format or batch, a layer the format cannot express, or a failed verification.
    """
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    b = parse_batch(batch)
    r = restore(run_dir)
    g = prediction_graph(r)
    out = Path(output) if output else Path(run_dir) / f"export-{fmt}"
    out.mkdir(parents=True, exist_ok=True)
    path = out / FILES[fmt]
    tmp = out / (FILES[fmt] + ".partial")  # a failed export leaves no file that looks finished
    layers = [(layer.name, layer.type) for layer in getattr(r.loaded.spec.model, "layers", None) or []]
    try:
        manifest = write_onnx(g, tmp, b, layers) if fmt == "onnx" else write_stablehlo(g, tmp, b)
        split, x = held_out(r)
        got = (run_onnx if fmt == "onnx" else run_stablehlo)(tmp, x, b)
        want = reference(g, x, b)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    gap = np.abs(got.astype(np.float64) - want) if got.shape == want.shape else np.full(1, np.inf)
    diff = float(gap.max()) if gap.size else 0.0
    scaled = float((gap / np.maximum(1.0, np.abs(want))).max()) if gap.size and got.shape == want.shape else diff
    if not scaled <= TOLERANCE:
        tmp.unlink(missing_ok=True)
        raise ExportError(
            f"the {fmt} export does not reproduce the run's predictions (shape {list(got.shape)} vs "
            f"{list(want.shape)}, max difference {scaled:.3g} > {TOLERANCE}, relative above 1); nothing was written"
        )
    shutil.move(tmp, path)
    manifest["file"] = path.name
    meta = metadata(r, str(run_dir), fmt, g)
    meta["batch"] = "dynamic" if b is None else b
    meta["model"] = manifest
    meta["verification"] = {
        "split": split,
        "examples": int(len(x)),
        "max_abs_diff": diff,
        "max_diff_relative_above_1": scaled,  # |got - want| / max(1, |want|): float32 rounding of large values
        "against": "nnctl predict",
    }
    (out / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    return {**meta, "path": str(path), "metadata_path": str(out / "metadata.json")}
