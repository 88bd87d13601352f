"""What an export contains, for every format: the run's prediction as one pure function of raw inputs (the
run's normalisation and, for regression, the inverse target scaling inside it), a held-out sample to check it
on, and the metadata written beside the exported file (spec, classes, versions, preprocessing).

The same function serves `nnctl serve`, so a served, an exported and a `predict`-ed prediction are one
computation."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import nnctl
from nnctl import rundir
from nnctl.app.restore import Restored
from nnctl.errors import NnctlError


class ExportError(NnctlError):
    """A run that cannot be exported in the format asked for (names the layer or the reason)."""


@dataclass(frozen=True)
class Graph:
    fn: Any  # raw inputs (batch, *input_shape) -> what `predict` reports (probabilities or values)
    input_shape: tuple
    dtype: np.dtype
    output_name: str  # "probabilities" | "values"


def prediction_graph(r: Restored) -> Graph:
    """The run's `predict` with the weights baked in, reading raw (unnormalised) inputs."""
    data = r.built.data
    predict = r.built.loop.obj.predict
    params, state = r.weights["params"], r.weights["model_state"]
    xs, ys = r.scalers[0], r.scalers[1]
    in_shift, in_scale = jnp.asarray(xs.shift), jnp.asarray(xs.scale)
    out_shift, out_scale = jnp.asarray(ys.shift), jnp.asarray(ys.scale)
    scale_in = xs.kind != "none"
    unscale_out = data.task == "regression" and ys.kind != "none"

    def fn(x):
        if scale_in:
            flat = x.reshape(x.shape[0], -1)
            x = ((flat - in_shift[None, :]) / in_scale[None, :]).reshape(x.shape)
        out = predict(params, state, x)
        if unscale_out:
            flat = out.reshape(out.shape[0], -1)
            out = (flat * out_scale[None, :] + out_shift[None, :]).reshape(out.shape)
        return out

    dtype = np.dtype(data.x_train.dtype)
    name = "values" if data.task not in ("classification", "binary") else "probabilities"
    return Graph(fn, tuple(data.input_shape), dtype, name)


def held_out(r: Restored, limit: int = 256) -> tuple[str, np.ndarray]:
    """Up to `limit` raw examples the run did not train on (test, else val, else train), for the checks."""
    data = r.built.data
    for split in ("test", "val", "train"):
        x = data.split(split)[0]
        if x is not None and len(x):
            x = x[:limit]
            if r.scalers[0].kind != "none":  # the splits are stored normalised: back to raw inputs
                x = r.scalers[0].invert(x)
            return split, np.asarray(x, data.x_train.dtype)
    raise ExportError("the run has no examples to check an export on")


def reference(g: Graph, x: np.ndarray, batch: int | None) -> np.ndarray:
    """`g.fn` run by JAX on `x` (in batches of `batch`, the last padded; None: all at once)."""
    fn = jax.jit(g.fn)
    if batch is None:
        return np.asarray(fn(x))
    return np.concatenate([np.asarray(fn(xb))[:n] for xb, n in padded_batches(x, batch)])


def padded_batches(x: np.ndarray, batch: int):
    """(batch-sized chunk of x, how many rows of it are real), the last chunk padded with its last row."""
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        n = len(xb)
        if n < batch:
            xb = np.concatenate([xb, np.repeat(xb[-1:], batch - n, axis=0)])
        yield xb, n


def preprocessing(r: Restored) -> dict:
    """How raw values become the graph's input, and what the graph does to them itself: the exact formulas."""
    data = r.built.data
    xs, ys, imp = r.scalers
    doc: dict[str, Any] = {
        "graph_input": f"float array (batch, {', '.join(map(str, data.input_shape))})"
        if data.x_train.dtype.kind == "f"
        else f"{data.x_train.dtype} array (batch, {', '.join(map(str, data.input_shape))})",
        "in_graph": [],
        "before_graph": [],
    }
    if xs.kind != "none":
        doc["in_graph"].append(
            {
                "step": "normalise",
                "kind": xs.kind,
                "formula": "x' = (x - shift) / scale, per value of the flattened example (one value each: all alike)",
                "shift": xs.shift.tolist(),
                "scale": xs.scale.tolist(),
            }
        )
    if data.task == "regression" and ys.kind != "none":
        doc["in_graph"].append(
            {
                "step": "unscale output",
                "formula": "y = y' * scale + shift",
                "shift": ys.shift.tolist(),
                "scale": ys.scale.tolist(),
            }
        )
    if data.layout is not None:
        doc["before_graph"].append(
            {
                "step": "columns",
                "formula": "the input row is these CSV columns in this order; a categorical column becomes one "
                "value per category (1.0 for the row's category, 0.0 for the others), in the order listed",
                "features": list(data.layout.features),
                "one_hot": data.layout.categories,
            }
        )
    if imp.fill is not None:
        doc["before_graph"].append(
            {"step": "fill missing", "formula": "a missing (NaN) value i becomes fill[i]", "fill": imp.fill.tolist()}
        )
    return doc


def metadata(r: Restored, run_dir: str, fmt: str, graph: Graph) -> dict:
    """What every export records beside its file."""
    data = r.built.data
    spec_text = (rundir.check_run_dir(run_dir) / rundir.SPEC).read_text(encoding="utf-8")
    return {
        "format": fmt,
        "run_dir": str(run_dir),
        "name": r.loaded.spec.name,
        "task": data.task,
        "class_names": data.class_names
        or ([str(i) for i in range(data.num_classes)] if data.num_classes and data.task == "classification" else None),
        "input": {"shape": list(graph.input_shape), "dtype": str(graph.dtype)},
        "output": graph.output_name,
        "preprocessing": preprocessing(r),
        "versions": {
            "nnctl": nnctl.__version__,
            "jax": jax.__version__,
            "python": platform.python_version(),
        },
        "spec": spec_text,
    }
