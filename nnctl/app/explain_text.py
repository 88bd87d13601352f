"""`nnctl explain` as text and JSON: the notes' names for units, weights and biases, formulas, and value
summaries for layers too large to list one by one."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnctl.app.explain_bptt import render_bptt
from nnctl.app.explain_optim import render_optimizer
from nnctl.app.explain_windows import render_windows

LIST_LIMIT = 16  # values shown one by one up to this many per array; larger arrays are summarised
FEW = 4


def _num(v: float) -> str:
    return f"{float(v):.9g}"


def summarize(a) -> dict:
    a = np.asarray(a, np.float64)
    return {
        "shape": list(a.shape),
        "norm": float(np.linalg.norm(a)),
        "mean": float(a.mean()) if a.size else 0.0,
        "first": [float(v) for v in a.reshape(-1)[:FEW]],
    }


def as_data(a):
    a = np.asarray(a, np.float64)
    return a.tolist() if a.size <= LIST_LIMIT * FEW else summarize(a)


@dataclass
class Names:
    """The notes' names of units and weights of a stack of layers."""

    layers: list  # [(layer spec, role, index among hidden layers)]
    weight_numbers: dict  # layer name -> first weight number (1-based), when the weights are numbered

    @staticmethod
    def of(layers, kernel_shapes: dict) -> Names:
        hidden = [layer for layer in layers[:-1] if layer.name in kernel_shapes]
        roles = []
        for layer in layers:
            if layer is layers[-1]:
                roles.append((layer, "output", 0))
            elif layer.name in kernel_shapes:
                roles.append((layer, "hidden", hidden.index(layer) + 1))
            else:
                roles.append((layer, "other", 0))
        numbers, n = {}, 1
        if all(math.prod(s) <= LIST_LIMIT * FEW for s in kernel_shapes.values()):
            for layer in layers:
                if layer.name in kernel_shapes:
                    numbers[layer.name] = n
                    n += math.prod(kernel_shapes[layer.name])
        return Names(roles, numbers)

    def unit(self, layer_name: str, j: int) -> str:
        for layer, role, k in self.layers:
            if layer.name == layer_name:
                if role == "output":
                    return f"y{j + 1}"
                n_hidden = sum(1 for _, r, _ in self.layers if r == "hidden")
                return f"H{j + 1}" if n_hidden == 1 else f"H{k}_{j + 1}"
        return f"{layer_name}[{j}]"

    def weight(self, layer_name: str, i: int, j: int, n_in: int) -> str:
        if layer_name in self.weight_numbers:
            return f"w{self.weight_numbers[layer_name] + j * n_in + i}"
        return f"W[{layer_name}][{i},{j}]"

    def bias(self, layer_name: str, j: int) -> str:
        named = [layer.name for layer, role, _ in self.layers if role != "other"]
        if layer_name not in named:  # a layer with parameters but no kernel (layer_norm, batch_norm, ...)
            return f"{layer_name}.bias[{j}]"
        return f"b{named.index(layer_name) + 1}_{j + 1}"


# ---------------------------------------------------------------------------------------------- computing


def to_json(doc: dict) -> dict:
    """The same content as data: small arrays as nested lists, large ones summarised."""
    out = {k: v for k, v in doc.items() if k not in ("names", "steps", "x", "y")}
    out["x"], out["y"] = as_data(doc["x"]), as_data(doc["y"])
    lr = out.get("learning_rate")
    out["learning_rate"] = lr if isinstance(lr, (int, float)) or lr is None else str(lr)
    out["steps"] = []
    for st in doc["steps"]:
        layers = []
        for r in st["layers"]:
            d: dict[str, Any] = {k: v for k, v in r.items() if isinstance(v, (str, list))}
            for k in ("z", "a", "delta"):
                if k in r:
                    d[k] = as_data(r[k])
            for k in ("params", "grads", "updated"):
                if k in r:
                    d[k] = {pk: as_data(pv) for pk, pv in r[k].items()}
            layers.append(d)
        out["steps"].append(
            {"step": st["step"], "loss": st["loss"], "layers": layers, "optimizer_state": st.get("optimizer_state", [])}
        )
        for part in ("windows", "bptt"):
            if st.get(part):
                out["steps"][-1][part] = [_plain(w) for w in st[part]]
    return out


def _plain(d: dict) -> dict:
    """A window record as JSON data (arrays as nested lists)."""
    return {k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v) for k, v in d.items()}


def _vals(arr, j) -> str:
    """Unit j over the examples of the batch."""
    col = np.asarray(arr)[:, j]
    if len(col) == 1:
        return _num(col[0])
    shown = ", ".join(_num(v) for v in col[:FEW])
    return f"[{shown}{', ...' if len(col) > FEW else ''}]"


def _summary_line(label: str, a) -> str:
    s = summarize(a)
    first = ", ".join(_num(v) for v in s["first"])
    return f"{label}: shape {s['shape']}, norm {_num(s['norm'])}, first entries [{first}, ...]"


def render(doc: dict) -> list[str]:
    names: Names = doc["names"]
    x, y = np.asarray(doc["x"]), np.asarray(doc["y"])
    lines = []
    ex = doc["examples"]
    which = f"example {ex[0]}" if len(ex) == 1 else f"a batch of {len(ex)} examples (values listed per example)"
    lines.append(f"{doc['name'] or doc['spec']}: {len(doc['steps'])} training step(s) on {which}")
    lines.append(
        f"loss {doc['loss_name']}, optimizer {doc['chain']}"
        + (f", learning rate {doc['learning_rate']}" if isinstance(doc["learning_rate"], (int, float)) else "")
    )
    lines.append(
        "notation: z = weighted sum (inputs . weights + bias), a = activation(z) (the notes' H1 -> H1_final), "
        "delta = dE/dz, E = the loss"
    )
    flat_x = x.reshape(len(x), -1)
    if flat_x.shape[1] <= LIST_LIMIT:
        lines.append("inputs:  " + "  ".join(f"x{i + 1} = {_vals(flat_x, i)}" for i in range(flat_x.shape[1])))
    else:
        lines.append(_summary_line("inputs x", flat_x))
    if y.dtype.kind == "f" and y.ndim == 2 and y.shape[1] <= LIST_LIMIT:
        lines.append("targets: " + "  ".join(f"T{j + 1} = {_vals(y, j)}" for j in range(y.shape[1])))
    elif y.ndim == 1:
        lines.append("targets (class labels): " + ", ".join(str(int(v)) for v in y[:LIST_LIMIT]))
    else:
        lines.append(_summary_line("targets T", y.reshape(len(y), -1)))

    lines += [f"note: {n}" for n in doc.get("notes", ())]
    for st in doc["steps"]:
        lines.append("")
        lines.append(f"step {st['step']}")
        lines.append("  forward pass")
        prev = "x"
        for k, r in enumerate(st["layers"]):
            lines.append(f"    layer {k + 1} {r['name']} ({r['type']}, {r['activation']}, {r['role']})")
            z, a = r.get("z"), r["a"]
            if z is not None and z.ndim == 2 and z.shape[1] <= LIST_LIMIT:
                for j in range(z.shape[1]):
                    u = names.unit(r["name"], j)
                    formula = _formula(names, r, j, prev)
                    lines.append(f"      {u} = {formula}{_vals(z, j)}")
                    lines.append(f"      {u}_final = {r['activation']}({u}) = {_vals(a, j)}")
            else:
                if z is not None:
                    lines.append("      " + _summary_line("z", z))
                lines.append("      " + _summary_line("a", a))
            prev = r["name"]
        lines += _windows_lines(st)
        lines.append(f"  E_total = {_num(st['loss'])}   ({doc['loss_name']}, averaged over the batch)")
        lines.append("  backward pass (delta = dE/dz, then dE/dW = a_prev^T . delta, dE/db = sum of delta)")
        for r in reversed(st["layers"]):
            if "grads" not in r:
                continue
            lines.append(f"    layer {r['name']}")
            d = r.get("delta")
            if d is not None and d.ndim == 2 and d.shape[1] <= LIST_LIMIT:
                for j in range(d.shape[1]):
                    lines.append(
                        f"      delta_{names.unit(r['name'], j)} = dE/d{names.unit(r['name'], j)} = {_vals(d, j)}"
                    )
            elif d is not None:
                lines.append("      " + _summary_line("delta", d))
            lines += ["      " + s for s in _param_lines(names, r, "grads", "dE/d")]
        lines += _bptt_lines(st)
        lines.append("  update (new weight = the optimizer's step from the gradient; frozen weights stay)")
        for r in st["layers"]:
            if "updated" in r:
                lines += ["    " + s for s in _param_lines(names, r, "updated", "", "_new")]
    table = render_optimizer(doc["steps"], doc["chain"])
    return lines + ([""] + table if table else [])


def _windows_lines(st: dict) -> list[str]:
    if not st.get("windows"):
        return []
    head = "  windows (each output cell from its window; example 0, first filter / channel)"
    return [head, *render_windows(st["windows"])]


def _bptt_lines(st: dict) -> list[str]:
    if not st.get("bptt"):
        return []
    return ["  backpropagation through time (the recurrent layers unrolled step by step)", *render_bptt(st["bptt"])]


def _formula(names: Names, r, j, prev) -> str:
    params = r.get("params") or {}
    w = params.get("kernel")
    if w is None or w.ndim != 2 or w.shape[0] > FEW:
        return ""
    terms = [
        f"{'x' if prev == 'x' else names.unit(prev, 0)[0]}{i + 1 if prev == 'x' else ''}" for i in range(w.shape[0])
    ]
    if prev != "x":
        terms = [f"{names.unit(prev, i)}_final" for i in range(w.shape[0])]
    s = " + ".join(f"{t}*{names.weight(r['name'], i, j, w.shape[0])}" for i, t in enumerate(terms))
    if "bias" in params:
        s += f" + {names.bias(r['name'], j)}"
    return s + " = "


def _param_lines(names: Names, r, which: str, prefix: str, suffix: str = "") -> list[str]:
    out = []
    for pk, arr in r[which].items():
        arr = np.asarray(arr)
        if pk == "kernel" and arr.ndim == 2 and arr.size <= LIST_LIMIT * FEW:
            n_in = arr.shape[0]
            for j in range(arr.shape[1]):
                out.append(
                    "  ".join(
                        f"{prefix}{names.weight(r['name'], i, j, n_in)}{suffix} = {_num(arr[i, j])}"
                        for i in range(n_in)
                    )
                )
        elif pk == "bias" and arr.ndim == 1 and arr.size <= LIST_LIMIT:
            out.append(
                "  ".join(f"{prefix}{names.bias(r['name'], j)}{suffix} = {_num(arr[j])}" for j in range(arr.size))
            )
        else:
            out.append(_summary_line(f"{prefix}{r['name']}/{pk}{suffix}", arr))
        if pk in r.get("frozen", ()):
            out[-1] += "   (frozen)"
    return out
