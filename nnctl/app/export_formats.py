"""The two export formats: ONNX (converted by jax2onnx, run back in onnxruntime) and StableHLO (jax.export,
serialised, run back with jax.export.deserialize). Each writer returns what its manifest records; each runner
loads the written file the way a user would and predicts with it."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import jax
import numpy as np
import onnx
import onnxruntime as ort
from jax.extend.core import jaxprs_in_params
from jax2onnx import to_onnx
from jax2onnx.plugins.plugin_system import PLUGIN_REGISTRY, import_all_plugins

from nnctl.app.export_graph import ExportError, Graph, padded_batches

PLATFORMS = ("cpu", "cuda")  # StableHLO: lowered for both, the caller's device picks
ONNX_OPSET = 21  # supported by onnxruntime >= 1.20 and the other runtimes of the day


def input_spec(g: Graph, batch: int | None, symbol: str) -> tuple:
    return (symbol if batch is None else batch, *g.input_shape)


# jax2onnx plugins left out of the conversion: linen.max_pool's patch refuses the positional form
# `max_pool(x, window, ...)` nnctl's pooling layers call; without it the pool is traced to lax.reduce_window,
# which jax2onnx converts exactly (tests/test_export.py, digits_inception and digits_cnn).
SKIPPED_PLUGINS = ("linen.max_pool",)


@contextlib.contextmanager
def without_plugins(names: tuple[str, ...]):
    """jax2onnx's plugin registry without `names` for the duration (restored after, even on errors)."""
    import_all_plugins()
    saved = {k: PLUGIN_REGISTRY.pop(k) for k in names if k in PLUGIN_REGISTRY}
    try:
        yield
    finally:
        PLUGIN_REGISTRY.update(saved)


def write_onnx(g: Graph, path: Path, batch: int | None, layers: list[tuple[str, str]]) -> dict:
    """Convert `g` to ONNX at `path`; an operation jax2onnx cannot convert is an ExportError naming it and the
    layer it comes from."""
    shape = input_spec(g, batch, "batch")
    spec = [jax.ShapeDtypeStruct(shape, g.dtype)] if batch is not None else [shape]
    try:  # jax2onnx's Flax plugins broadcast implicitly: allowed here, whatever the caller's setting
        with jax.numpy_rank_promotion("allow"), without_plugins(SKIPPED_PLUGINS):
            model = to_onnx(
                g.fn, spec, model_name="nnctl", opset=ONNX_OPSET, input_names=["x"], output_names=[g.output_name]
            )
    except Exception as e:  # jax2onnx: NotImplementedError "No plugins registered for primitive 'name'", or
        # a plugin's own failure (TypeError, ValueError, ...) naming its primitive, e.g. linen.conv_transpose
        text = str(e)
        prim = re.search(r"primitive '?([A-Za-z_.0-9]+)'?", text)
        name = prim.group(1) if prim else ""
        if name.startswith("linen."):
            found = layers_like(name, layers)
        else:
            found = layers_using(g, batch or 2, name, [n for n, _ in layers]) if name else []
        raise ExportError(unsupported_message(name, found, layers, text.splitlines()[0] if text else "")) from None
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return {"file": path.name, "opset": ONNX_OPSET, "input": "x", "output_names": [g.output_name]}


def layers_like(plugin: str, layers: list[tuple[str, str]]) -> list[str]:
    """The layers whose type is the Flax function a jax2onnx plugin converts (linen.conv_transpose:
    conv2d_transpose; dimensions such as 2d dropped)."""
    want = plugin.removeprefix("linen.")
    return [n for n, t in layers if re.sub(r"\d+d", "", t).replace("__", "_").strip("_") == want]


def layers_using(g: Graph, batch: int, primitive: str, names: list[str]) -> list[str]:
    """The layers (by name) whose computation contains `primitive`: Flax puts each module's name on the name
    stack of the operations it traces, nested programs (scan, jit) included."""
    jaxpr = jax.make_jaxpr(g.fn)(jax.ShapeDtypeStruct((batch, *g.input_shape), g.dtype)).jaxpr
    found: list[str] = []

    def walk(jp, prefix: str) -> None:
        for eqn in jp.eqns:
            stack = f"{prefix}/{eqn.source_info.name_stack}"
            if eqn.primitive.name == primitive:
                found.extend(n for n in names if n in stack.split("/") and n not in found)
            for sub in jaxprs_in_params(eqn.params):
                walk(sub, stack)

    walk(jaxpr, "")
    return found


def unsupported_message(primitive: str, found: list[str], layers: list[tuple[str, str]], detail: str = "") -> str:
    """The error for an operation ONNX conversion lacks, naming the layer(s) it comes from."""
    types = dict(layers)
    what = f"the JAX operation '{primitive}'" if primitive else "an operation"
    if found:
        where = "layer " + ", ".join(f"'{n}' ({types[n]})" for n in found)
    else:
        where = "one of the layers " + ", ".join(f"'{n}' ({t})" for n, t in layers)
    return (
        f"cannot export to ONNX: {what} in {where} has no working ONNX conversion in jax2onnx "
        f"(export --format stablehlo keeps every JAX operation){f'; jax2onnx said: {detail[:200]}' if detail else ''}"
    )


def run_onnx(path: Path, x: np.ndarray, batch: int | None) -> np.ndarray:
    """Predict `x` with the ONNX file at `path` in onnxruntime (fixed batch: in padded batches)."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    if batch is None:
        return np.asarray(sess.run(None, {name: x})[0])
    return np.concatenate([np.asarray(sess.run(None, {name: xb})[0])[:n] for xb, n in padded_batches(x, batch)])


def write_stablehlo(g: Graph, path: Path, batch: int | None) -> dict:
    """Serialise `g` with jax.export to `path`; returns its calling convention and shapes."""
    if batch is None:
        shape = jax.export.symbolic_shape(", ".join(["b", *map(str, g.input_shape)]))
    else:
        shape = (batch, *g.input_shape)
    arg = jax.ShapeDtypeStruct(shape, g.dtype)
    try:  # one file for CPU and CUDA machines, when every operation lowers for both
        exp = jax.export.export(jax.jit(g.fn), platforms=PLATFORMS)(arg)
    except Exception:  # an operation with a platform-specific lowering: this machine's platform only
        exp = jax.export.export(jax.jit(g.fn))(arg)
    path.write_bytes(exp.serialize())
    return {
        "file": path.name,
        "load": "jax.export.deserialize(bytearray(open(file, 'rb').read())).call(x)",
        "calling_convention_version": exp.calling_convention_version,
        "platforms": list(exp.platforms),
        "inputs": [{"name": "x", "shape": [str(d) for d in a.shape], "dtype": str(a.dtype)} for a in exp.in_avals],
        "outputs": [
            {"name": g.output_name, "shape": [str(d) for d in a.shape], "dtype": str(a.dtype)} for a in exp.out_avals
        ],
        "weights": "baked into the program as constants; the one argument is the raw input batch",
    }


def run_stablehlo(path: Path, x: np.ndarray, batch: int | None) -> np.ndarray:
    """Predict `x` with the serialised program at `path`, reloaded by jax.export.deserialize."""
    exp = jax.export.deserialize(bytearray(path.read_bytes()))
    if batch is None:
        return np.asarray(exp.call(x))
    return np.concatenate([np.asarray(exp.call(xb))[:n] for xb, n in padded_batches(x, batch)])
