"""What `nnctl inspect` reports, from the spec alone: parameter and layer rows (abstract shapes: no data, no
compile) and each layer's output shape. Model kinds (`nnctl.kinds`) say what a model's parts and network are."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import jax

from nnctl.app.explain_params import explained, shown
from nnctl.chain import is_frozen
from nnctl.kinds import MODEL_KINDS
from nnctl.kinds.base import abstract_variables
from nnctl.layers.graph import thread_shapes
from nnctl.spec import Loaded
from nnctl.trees import path_str


@dataclass(frozen=True)
class ParamRow:
    """One variable array of a model."""

    layer: str
    path: str  # as `train.freeze` globs see it, e.g. dense_0/kernel
    shape: tuple
    count: int
    kind: str  # trainable | frozen | non-trainable
    bytes: int


def param_rows(loaded: Loaded) -> list[ParamRow]:
    """One row per variable array of the spec's network, frozen by the rule training uses (`is_frozen`)."""
    spec = loaded.spec
    assert loaded.analysis is not None  # the spec was loaded with check=True
    kind = MODEL_KINDS.get(spec.model.type)
    info = loaded.analysis.data_info
    net = kind.network(spec.model, getattr(info, "num_classes", None))
    frozen_layers = kind.frozen_layers(spec.model)
    rows = []
    for collection, tree in abstract_variables(net, loaded.analysis.input_shape).items():
        for key_path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            path = path_str(key_path)
            layer = path.rpartition("/")[0]
            if collection != "params":
                what, path = "non-trainable", f"{collection}:{path}"
            elif is_frozen(path, spec.train.freeze, frozen_layers):
                what = "frozen"
            else:
                what = "trainable"
            n = math.prod(leaf.shape)
            rows.append(ParamRow(layer, path, tuple(leaf.shape), n, what, n * leaf.dtype.itemsize))
    return rows


def totals(rows: list[ParamRow]) -> dict:
    """Count and bytes of all, trainable, non-trainable (frozen included) and frozen parameters."""

    def tot(kinds):
        sel = [r for r in rows if r.kind in kinds]
        return {"count": sum(r.count for r in sel), "bytes": sum(r.bytes for r in sel)}

    return {
        "total": tot({"trainable", "frozen", "non-trainable"}),
        "trainable": tot({"trainable"}),
        "non_trainable": tot({"non-trainable", "frozen"}),
        "frozen": tot({"frozen"}),
    }


def layer_table(rows: list[ParamRow]) -> list[dict]:
    """Parameters per layer (all, and trainable), in the order of the rows."""
    out: dict[str, dict] = {}
    for r in rows:
        layer = r.layer.split(":")[-1]
        d = out.setdefault(layer, {"layer": layer, "count": 0, "trainable": 0})
        d["count"] += r.count
        d["trainable"] += r.count if r.kind == "trainable" else 0
    return list(out.values())


def params_report(loaded: Loaded, explain: bool = False) -> dict:
    """What `nnctl inspect params` shows.

    Args:
        loaded: a loaded, checked spec (its data sources need not exist).
        explain: also write each layer's count as its formula (`formula`, `source` in each layer row).
    Returns:
        {parameters: one row per array, layers: per-layer counts, totals}.
    """
    rows = param_rows(loaded)
    out = {
        "parameters": [asdict(r) | {"shape": list(r.shape)} for r in rows],
        "layers": layer_table(rows),
        "totals": totals(rows),
    }
    return out | {"formulas": formulas(loaded, rows)} if explain else out


def formulas(loaded: Loaded, rows: list[ParamRow]) -> list[dict]:
    """One row per top-level layer of every part (blocks whole): {layer, type, count, formula, source, text}.
    A layer's input shape is known inside the spec's parts, except a part's own input in a kind with several
    parts (there the formula comes from the arrays)."""
    a, m = loaded.analysis, loaded.spec.model
    assert a is not None  # the spec was loaded with check=True
    kind = MODEL_KINDS.get(m.type)
    arrays = [(r.path.split(":")[-1], r.shape) for r in rows]
    out: list[dict] = []
    claimed: set[str] = set()
    for part in kind.parts:
        pre = kind.prefix(part)
        for layer in getattr(m, part) or []:
            path = f"{pre}{layer.name}"
            mine = [(p, s) for p, s in arrays if p.startswith(path + "/")]
            claimed.update(p for p, _ in mine)
            src = layer.inputs[0] if layer.inputs else None
            shape = (tuple(a.input_shape) if not pre else None) if src == "input" else a.shapes.get(f"{pre}{src}")
            d = explained(layer, shape, mine)
            out.append({"layer": path, "type": layer.type} | d | {"text": shown(d)})
    rest: dict[str, list] = {}
    for p, s in arrays:  # layers a kind adds beyond the spec's (a vae's z_mean and z_log_var)
        if p not in claimed:
            rest.setdefault(p.rpartition("/")[0], []).append((p, s))
    for path, mine in rest.items():
        d = explained(None, None, mine)
        out.append({"layer": path, "type": "(added by the model kind)"} | d | {"text": shown(d)})
    return out


def model_report(loaded: Loaded) -> dict:
    """What `nnctl inspect model` shows: each layer's output shape, from the spec alone.

    Args:
        loaded: a loaded, checked spec.
    Returns:
        {input_shape, output_shape, layers: [{name, type, inputs, output_shape, activation}], warnings}.
    """
    a, m = loaded.analysis, loaded.spec.model
    assert a is not None  # the spec was loaded with check=True
    kind = MODEL_KINDS.get(m.type)
    layers: list[dict] = []
    for i, part in enumerate(kind.parts):
        pre = kind.prefix(part)  # a part's shapes are keyed part/layer (none for sequential)
        _walk(getattr(m, part), {k[len(pre) :]: v for k, v in a.shapes.items() if k.startswith(pre)}, pre, layers)
        if i == 0:
            layers += _code_layers(loaded, f"{pre}{getattr(m, part)[-1].name}")
    return {
        "input_shape": list(a.input_shape),
        "output_shape": list(a.output_shape),
        "layers": layers,
        "warnings": [str(w) for w in a.warnings],
    }


def _walk(ls: list, shapes: dict, prefix: str, out: list[dict]) -> None:
    """Rows of layers (and of the layers inside their blocks), named with `prefix`."""
    for layer in ls:
        out.append(
            {
                "name": f"{prefix}{layer.name}",
                "type": layer.type,
                "inputs": list(layer.inputs),
                "output_shape": list(shapes.get(layer.name, ())),
                "activation": layer.activation.type if layer.activation else None,
            }
        )
        kids, first = layer.children(), shapes.get(layer.inputs[0]) if layer.inputs else None
        # a block's layers see the block's input: thread it through them for their own shapes
        _walk(kids, thread_shapes(kids, first)[0] if kids and first is not None else {}, f"{prefix}{layer.name}/", out)


def _code_layers(loaded: Loaded, last: str) -> list[dict]:
    """Layers the kind adds after its first part, beyond the spec's: the codes it encodes to that are no spec
    layer (a vae's z_mean and z_log_var, dense layers of latent_dim units)."""
    m = loaded.spec.model
    kind = MODEL_KINDS.get(m.type)
    spec_layers = {layer.name for layer in kind.layers(m)}
    return [
        {"name": n, "type": "dense", "inputs": [last], "output_shape": [m.latent_dim], "activation": None}
        for n in kind.encodable(m)
        if n not in spec_layers and m.latent_dim  # (a cyclegan's encodable generators are whole parts)
    ]


def human_bytes(n: float) -> str:
    """A byte count for people: 512 B, 1.50 KB, 2.00 MB."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n} B"
