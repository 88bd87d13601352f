"""`nnctl explain`: training steps written out layer by layer in the notes' notation, for students.

For each step: the weighted sums z and activations a of every layer, the loss, the error terms
delta = dE/dz, the gradients dE/dW and dE/db, and the weights after the update. Everything comes from the
code that trains: the spec's own network and loss (`Supervised.forward` / `per_example` / `penalty`), with
flax method interception recording each layer's z and adding a zero perturbation to it, so that one
`jax.grad` gives both dE/dW and delta = dE/dz; the update is the objective's own `train_step` (the same
Optax chain, freezing included). It runs in float64 so the numbers can be compared with hand calculations.

Names follow the notes' worked example: inputs x1.., hidden weighted sums H1.. (H<layer>_<unit> with
several hidden layers) and their activations H1_final.., outputs y1.. and y1_final.., weights w1.. numbered
layer by layer, unit by unit, input by input, biases b<layer>_<unit>, targets T1.., loss E_total. Layers
too large to list are summarised (shape, norm, first entries).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnctl.errors import NnctlError

LIST_LIMIT = 16  # values shown one by one up to this many per array; larger arrays are summarised
FEW = 4


def _num(v: float) -> str:
    return f"{float(v):.9g}"


def summarize(a) -> dict:
    a = np.asarray(a, np.float64)
    return {"shape": list(a.shape), "norm": float(np.linalg.norm(a)), "mean": float(a.mean()) if a.size else 0.0,
            "first": [float(v) for v in a.reshape(-1)[:FEW]]}


def as_data(a):
    a = np.asarray(a, np.float64)
    return a.tolist() if a.size <= LIST_LIMIT * FEW else summarize(a)


@dataclass
class Names:
    """The notes' names of units and weights of a stack of layers."""

    layers: list  # [(layer spec, role, index among hidden layers)]
    weight_numbers: dict  # layer name -> first weight number (1-based), when the weights are numbered

    @staticmethod
    def of(layers, kernel_shapes: dict) -> "Names":
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
        k = [layer.name for layer, role, _ in self.layers if role != "other"].index(layer_name) + 1
        return f"b{k}_{j + 1}"


# ---------------------------------------------------------------------------------------------- computing

def widen(a):
    """float32 -> float64 through the shortest decimal that reads back as the same float32, so that a
    spec's 0.05 is 0.05 again (not 0.0500000007); other dtypes unchanged."""
    a = np.asarray(a)
    if a.dtype != np.float32:
        return a
    return np.array([float(str(v)) for v in a.reshape(-1)], np.float64).reshape(a.shape)


def _intercepted_loss(obj, layer_names: set, params, model_state, x, y, eps):
    """The training loss with every top-level layer's weighted sum z recorded (and eps added to it)."""
    import flax.linen as nn
    import jax.numpy as jnp

    from nnctl.layers.graph import Network

    zs: dict = {}

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        m = context.module
        if context.method_name == "__call__" and m.name in layer_names and isinstance(m.parent, Network):
            zs[m.name] = out
            if eps is not None and m.name in eps:
                out = out + eps[m.name]
        return out

    names = tuple(layer.name for layer in obj.net.layers[:-1])
    with nn.intercept_methods(interceptor):
        logits, acts = obj.net.apply({"params": params, **model_state}, x, train=False, head=False, capture=names)
    last = obj.net.layers[-1].name
    if last not in zs:  # a last layer without parameters: its output before the activation
        zs[last] = logits
    acts = dict(acts)
    acts[last] = obj.head.fn(logits)
    per = obj.per_example(logits, y)
    loss = jnp.mean(per) + obj.penalty(params)
    return loss, (zs, acts)


def explain_spec(spec_path: str, steps: int = 1, sample: int | None = None, overrides: tuple = ()) -> dict:
    """The data of `nnctl explain`: one record per training step."""
    import jax

    with jax.enable_x64(True):
        return _explain(spec_path, steps, sample, overrides)


def _explain(spec_path, steps, sample, overrides):
    import jax
    import jax.numpy as jnp

    from nnctl.data.prepare import prepare
    from nnctl.run import build
    from nnctl.spec import load_spec
    from nnctl.train import Supervised

    if steps < 1:
        raise NnctlError(f"--steps must be at least 1, got {steps}")
    loaded = load_spec(spec_path, tuple(overrides))
    spec = loaded.spec
    if spec.model.type != "sequential":
        raise NnctlError(f"explain follows plain networks layer by layer; this spec's model is {spec.model.type}")
    data = prepare(spec, loaded.analysis, loaded.base_dir)
    b = build(loaded, data)
    obj = b.obj
    if not isinstance(getattr(obj, "inner", obj), Supervised):
        raise NnctlError("explain supports supervised and autoencoder specs")
    n = len(data.x_train)
    if sample is not None:
        if not 0 <= sample < n:
            raise NnctlError(f"--sample must be between 0 and {n - 1} (the training split has {n} examples)")
        idx = np.array([sample])
    else:
        idx = np.arange(min(b.loop.batch_size, n))
    f64 = lambda t: jax.tree.map(widen, t)
    x = jnp.asarray(widen(data.x_train[idx]))
    y = jnp.asarray(widen(data.y_train[idx]))

    init_key = jax.random.fold_in(jax.random.key(spec.seed), 0)
    state = obj.init(init_key, tuple(data.input_shape))
    params = f64(state["params"])
    state = {"params": params, "model_state": f64(state["model_state"]), "opt_state": obj.tx.init(params),
             "step": jnp.int32(0)}

    layers = list(spec.model.layers)
    kernel_shapes = {k: tuple(v["kernel"].shape) for k, v in params.items() if isinstance(v, dict) and "kernel" in v}
    names = Names.of(layers, kernel_shapes)
    layer_names = {layer.name for layer in layers}
    mask = jnp.ones(len(idx), jnp.float64)
    train_key = jax.random.fold_in(jax.random.key(spec.seed), 1)

    @jax.jit
    def loss_and_grads(p, ms, eps):
        return jax.value_and_grad(lambda p, e: _intercepted_loss(obj, layer_names, p, ms, x, y, e),
                                  argnums=(0, 1), has_aux=True)(p, eps)

    trainable = getattr(obj, "trainable", None)
    records = []
    step_fn = jax.jit(lambda st, k: obj.train_step(st, obj.zero_sums(tuple(loaded.analysis.output_shape), y.dtype,
                                                                         True), x, y, mask, k, 2**31 - 1, True))
    for s in range(steps):
        p, ms = state["params"], state["model_state"]
        _, (zs, _) = jax.eval_shape(lambda p, ms: _intercepted_loss(obj, layer_names, p, ms, x, y, None), p, ms)
        eps = {k: jnp.zeros(v.shape, v.dtype) for k, v in zs.items() if k in kernel_shapes}
        (loss, (zs, acts)), (g_params, g_eps) = loss_and_grads(p, ms, eps)
        state, _ = step_fn(state, jax.random.fold_in(train_key, s))
        new_p = state["params"]
        recs = []
        for layer, role, _ in names.layers:
            nm = layer.name
            r: dict[str, Any] = {"name": nm, "type": layer.type, "role": role,
                                 "activation": layer.activation.type if layer.activation else "linear",
                                 "a": np.asarray(acts[nm])}
            if nm in zs:
                r["z"] = np.asarray(zs[nm])
            if nm in g_eps:
                r["delta"] = np.asarray(g_eps[nm])
            if nm in p:
                order = sorted(p[nm], key=lambda k: (k != "kernel", k))
                r["params"] = {k: np.asarray(p[nm][k]) for k in order}
                r["grads"] = {k: np.asarray(g_params[nm][k]) for k in order}
                r["updated"] = {k: np.asarray(new_p[nm][k]) for k in order}
                r["frozen"] = [k for k in order if trainable is not None and not trainable.get(nm, {}).get(k, True)]
            recs.append(r)
        records.append({"step": s + 1, "loss": float(loss), "layers": recs})
    notes = []
    if spec.train.regularizers:
        notes.append("the training loss also has train.regularizers (" + ", ".join(r.type for r in spec.train.regularizers)
                     + "): E_total, delta and the gradients above leave them out; the update includes them")
    if spec.data.augment or spec.data.corruption is not None:
        notes.append("training perturbs the inputs (data.augment / data.corruption); the forward pass above shows "
                     "them unperturbed, the update uses the perturbed ones")
    if any(layer.type == "dropout" for layer in layers):
        notes.append("dropout is off in the forward pass above (as in evaluation) and on in the update")
    opt = spec.train.optimizer
    return {"notes": notes, "spec": str(spec_path), "name": spec.name, "examples": [int(i) for i in idx],
            "x": np.asarray(x), "y": np.asarray(y), "loss_name": spec.train.loss.type,
            "optimizer": opt.type, "learning_rate": getattr(opt, "learning_rate", None),
            "chain": b.chain_desc, "names": names, "steps": records}


# ------------------------------------------------------------------------------------------------ output

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
            d = {k: v for k, v in r.items() if isinstance(v, (str, list))}
            for k in ("z", "a", "delta"):
                if k in r:
                    d[k] = as_data(r[k])
            for k in ("params", "grads", "updated"):
                if k in r:
                    d[k] = {pk: as_data(pv) for pk, pv in r[k].items()}
            layers.append(d)
        out["steps"].append({"step": st["step"], "loss": st["loss"], "layers": layers})
    return out


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
    lines.append(f"loss {doc['loss_name']}, optimizer {doc['chain']}"
                 + (f", learning rate {doc['learning_rate']}" if isinstance(doc['learning_rate'], (int, float)) else ""))
    lines.append("notation: z = weighted sum (inputs . weights + bias), a = activation(z) (the notes' H1 -> H1_final), "
                 "delta = dE/dz, E = the loss")
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
        lines.append(f"  E_total = {_num(st['loss'])}   ({doc['loss_name']}, averaged over the batch)")
        lines.append("  backward pass (delta = dE/dz, then dE/dW = a_prev^T . delta, dE/db = sum of delta)")
        for r in reversed(st["layers"]):
            if "grads" not in r:
                continue
            lines.append(f"    layer {r['name']}")
            d = r.get("delta")
            if d is not None and d.ndim == 2 and d.shape[1] <= LIST_LIMIT:
                for j in range(d.shape[1]):
                    lines.append(f"      delta_{names.unit(r['name'], j)} = dE/d{names.unit(r['name'], j)} = "
                                 f"{_vals(d, j)}")
            elif d is not None:
                lines.append("      " + _summary_line("delta", d))
            lines += ["      " + s for s in _param_lines(names, r, "grads", "dE/d")]
        lines.append("  update (new weight = the optimizer's step from the gradient; frozen weights stay)")
        for r in st["layers"]:
            if "updated" in r:
                lines += ["    " + s for s in _param_lines(names, r, "updated", "", "_new")]
    return lines


def _formula(names: Names, r, j, prev) -> str:
    params = r.get("params") or {}
    w = params.get("kernel")
    if w is None or w.ndim != 2 or w.shape[0] > FEW:
        return ""
    terms = [f"{'x' if prev == 'x' else names.unit(prev, 0)[0]}{i + 1 if prev == 'x' else ''}" for i in range(w.shape[0])]
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
                out.append("  ".join(f"{prefix}{names.weight(r['name'], i, j, n_in)}{suffix} = {_num(arr[i, j])}"
                                     for i in range(n_in)))
        elif pk == "bias" and arr.ndim == 1 and arr.size <= LIST_LIMIT:
            out.append("  ".join(f"{prefix}{names.bias(r['name'], j)}{suffix} = {_num(arr[j])}"
                                 for j in range(arr.size)))
        else:
            out.append(_summary_line(f"{prefix}{r['name']}/{pk}{suffix}", arr))
        if pk in r.get("frozen", ()):
            out[-1] += "   (frozen)"
    return out
