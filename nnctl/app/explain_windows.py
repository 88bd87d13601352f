"""`nnctl explain`: convolution and pooling windows written out (the notes' 5×5 ∗ 3×3 example and the
max-pool table).

Each windowed layer (1-D and 2-D convolutions and pooling) is run on its own input, taken from the spec's
network at the current weights, for the first example and the first filter / channel. Everything comes from
the layer's own code through automatic differentiation, so padding, strides, dilation, groups and padding
modes are whatever the layer does:

* a window's positions are the inputs an output cell depends on (the derivative of the cell with the
  kernel set to ones; for max pooling, of the average pooling of the same geometry);
* a convolution cell is its sum of products input × weight, the weight being the derivative of the cell
  with respect to that input (what the kernel contributes there), plus the bias (the rest), and the sum is
  checked against the layer's real output;
* a max-pool cell names the input that wins its window and where the gradient dE/d(cell) goes: the inputs
  that the layer's own backward pass sends it to (with ties, the layer's tie rule decides).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnctl.layers import LAYERS
from nnctl.layers.base import WindowMixin
from nnctl.layers.graph import INPUT, Network

MAX_CELLS = 16  # output cells written out per layer
MAX_TERMS = 27  # products written out per cell (3·3·3); longer sums are given as their count and value


def windowed(layer: Any) -> bool:
    """A 1-D or 2-D convolution or pooling layer (the ones whose windows are written out)."""
    return isinstance(layer, WindowMixin) and getattr(layer, "rank", 0) in (1, 2)


def _single(layer: Any):
    """The layer alone as a network on its own input: f(variables, x) = its output before activation."""
    net = Network((layer.model_copy(update={"inputs": [INPUT]}),))
    return lambda v, x: net.apply(v, x, train=False, head=False)


def _membership(layer: Any, variables: dict, x) -> Any:
    """A function cell -> the input positions its window covers (nonzero derivative)."""
    if "params" in variables:
        probe = layer
        variables = {"params": jax.tree.map(jnp.ones_like, variables["params"])}
    elif getattr(layer, "reduce", "") == "max":  # max pooling: the average pooling of the same geometry
        fields = layer.model_dump(exclude={"type", "name", "inputs", "activation"})
        probe = LAYERS.get(layer.type.replace("max", "avg"))(**fields, name=layer.name, inputs=layer.inputs)
    else:
        probe = layer
    return _jacobian_rows(_single(probe), variables, jnp.ones_like(x))


def _jacobian_rows(f, variables, x):
    """cells (list of output indices of example 0) -> d out[cell] / d x[0] for each, via one vmapped vjp."""
    out, vjp = jax.vjp(lambda x: f(variables, x), x)

    def rows(cells):
        eye = np.zeros((len(cells), *out.shape), out.dtype)
        for k, c in enumerate(cells):
            eye[(k, 0, *c)] = 1.0
        return np.asarray(jax.vmap(lambda g: vjp(g)[0])(jnp.asarray(eye)))[:, 0]

    return rows


def window_record(layer: Any, variables: dict, x) -> dict:
    """One windowed layer written out for example 0 and filter/channel 0 of input `x` (batch first)."""
    f = _single(layer)
    out = np.asarray(f(variables, x))
    spatial = out.shape[1:-1]
    cells = [(*idx, 0) for idx in np.ndindex(*spatial)][:MAX_CELLS]
    member = _membership(layer, variables, x)(cells)
    grads = _jacobian_rows(f, variables, x)(cells)
    x0 = np.asarray(x)[0]
    rec: dict[str, Any] = {
        "name": layer.name,
        "type": layer.type,
        "input_shape": list(x0.shape),
        "output_shape": list(out.shape[1:]),
        "input": x0[..., 0] if x0.shape[-1] == 1 or "params" not in variables else None,
        "output": out[0, ..., 0],
        "cells_total": int(np.prod(spatial)),
        "cells": [],
    }
    is_max = getattr(layer, "reduce", "") == "max"
    for c, m, g in zip(cells, member, grads):
        pos = [tuple(int(i) for i in p) for p in np.argwhere(m != 0)]
        cell: dict[str, Any] = {"cell": list(c[:-1]), "value": float(out[(0, *c)]), "window": pos}
        cell["inputs"] = [float(x0[p]) for p in pos]
        if "params" in variables:
            cell["weights"] = [float(g[p]) for p in pos]
            terms = [a * w for a, w in zip(cell["inputs"], cell["weights"])]
            rest = cell["value"] - float(sum(terms))
            # the output is float32: a rest within its rounding of the sum is no bias, only rounding
            noise = 8 * float(np.finfo(out.dtype).eps) * (abs(cell["value"]) + float(sum(abs(t) for t in terms)))
            cell["bias"] = rest if abs(rest) > noise else 0.0
        elif is_max:
            cell["gradient_to"] = [[int(i) for i in p] for p in np.argwhere(g != 0)]
        rec["cells"].append(cell)
    return rec


def _pos(p, channels: bool = False) -> str:
    """An input position (row, column[, channel]): the channel is written when the input has several."""
    p = tuple(p) if channels else tuple(p)[:-1]
    return "(" + ",".join(str(i) for i in p) + ")" if len(p) > 1 else str(p[0])


def _n(v: float) -> str:
    return f"{v:.9g}"


def render_windows(recs: list[dict]) -> list[str]:
    """The windows as text: conv cells as sums of products, the max-pool table."""
    lines = []
    for r in recs:
        shown = len(r["cells"])
        chan = "filter 0" if r["cells"] and "weights" in r["cells"][0] else "channel 0"
        lines.append(
            f"    {r['name']} ({r['type']}): input {tuple(r['input_shape'])} -> output {tuple(r['output_shape'])}; "
            f"example 0, {chan}, {shown} of {r['cells_total']} output cells"
        )
        if r["input"] is not None and np.asarray(r["input"]).size <= 64:
            for row in np.atleast_2d(np.asarray(r["input"])):
                lines.append("      input  " + "  ".join(_n(v) for v in row))
        many = r["input_shape"][-1] > 1
        for c in r["cells"]:
            lines.append("      " + _cell_line(r["name"], r["type"], c, many))
    return lines


def _span(window: list, many: bool) -> str:
    """`rows 0-2, cols 1-3` when the window is a full box of positions, else the positions listed."""
    if not window:
        return "empty (all padding)"
    arr = np.asarray(window)
    if not many:
        arr = arr[:, :-1]
    lo, hi = arr.min(axis=0), arr.max(axis=0)
    names = ("rows", "cols") if arr.shape[1] >= 2 else ("steps",)
    names = (*names, "channels")[: arr.shape[1]]
    if len(arr) == int(np.prod(hi - lo + 1)):
        return ", ".join(f"{n} {a}-{b}" if a != b else f"{n[:-1]} {a}" for n, a, b in zip(names, lo, hi))
    return " ".join(_pos(p, many) for p in window[:MAX_TERMS]) + (" ..." if len(window) > MAX_TERMS else "")


def _cell_line(name: str, kind: str, c: dict, many: bool) -> str:
    at = f"{name}[{','.join(str(i) for i in c['cell'])}]"
    _pos_ = lambda p: _pos(p, many)
    where = _span(c["window"], many)
    if "weights" in c:
        terms = [f"{_n(a)}·{_n(w)}" for a, w in zip(c["inputs"], c["weights"])]
        s = " + ".join(terms) if len(terms) <= MAX_TERMS else f"the sum of {len(terms)} products input·weight"
        bias = f" + {_n(c['bias'])} (bias)" if abs(c["bias"]) > 1e-12 else ""
        return f"{at} = {s}{bias} = {_n(c['value'])}"
    vals = ", ".join(_n(v) for v in c["inputs"][:MAX_TERMS]) + (", ..." if len(c["inputs"]) > MAX_TERMS else "")
    if "gradient_to" in c:
        to = ", ".join(_pos_(p) for p in c["gradient_to"]) or "nowhere"
        return f"{at} = max({vals}) = {_n(c['value'])} over {where}; dE/d{at} goes to input {to}"
    op = "sum" if "sum" in kind else "mean"
    return f"{at} = {op}({vals}) = {_n(c['value'])} over {where}"


def windows_of(net: Any, layers: list, params: dict, model_state: dict, x) -> list[dict]:
    """The window records of every top-level windowed layer with one input, on the network's own values."""
    chosen = [layer for layer in layers if windowed(layer) and len(layer.inputs) == 1]
    srcs = tuple(sorted({layer.inputs[0] for layer in chosen} - {INPUT}))
    env = {INPUT: x}
    if srcs:
        env.update(net.apply({"params": params, **model_state}, x, train=False, capture=srcs)[1])
    recs = []
    for layer in chosen:
        v = {"params": {layer.name: params[layer.name]}} if layer.name in params else {}
        recs.append(window_record(layer, v, env[layer.inputs[0]]))
    return recs
