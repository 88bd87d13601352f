"""Parameter and layer rows for `nnctl inspect`, computed abstractly (no data, no compile), then rendered."""

from __future__ import annotations

import fnmatch
import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ParamRow:
    layer: str
    path: str  # as `train.freeze` globs see it, e.g. dense_0/kernel
    shape: tuple
    count: int
    kind: str  # trainable | frozen | non-trainable
    bytes: int


def param_rows(loaded) -> list[ParamRow]:
    import jax

    from nnctl.model import abstract_variables, build_network, frozen_layer_names

    spec = loaded.spec
    abstract = abstract_variables(build_network(spec.model), loaded.analysis.input_shape)
    frozen_layers = frozen_layer_names(spec.model.layers)
    rows = []
    for collection, tree in abstract.items():
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            parts = [str(getattr(k, "key", k)) for k in path]
            p = "/".join(parts)
            if collection != "params":
                kind = "non-trainable"
                p = f"{collection}:{p}"
            elif any(fnmatch.fnmatchcase(p, g) for g in spec.train.freeze) or any(
                    p.startswith(f"{n}/") for n in frozen_layers):
                kind = "frozen"
            else:
                kind = "trainable"
            n = math.prod(leaf.shape)
            rows.append(ParamRow("/".join(parts[:-1]), p, tuple(leaf.shape), n, kind, n * leaf.dtype.itemsize))
    return rows


def totals(rows: list[ParamRow]) -> dict:
    def tot(kinds):
        sel = [r for r in rows if r.kind in kinds]
        return {"count": sum(r.count for r in sel), "bytes": sum(r.bytes for r in sel)}
    return {"total": tot({"trainable", "frozen", "non-trainable"}), "trainable": tot({"trainable"}),
            "non_trainable": tot({"non-trainable", "frozen"}), "frozen": tot({"frozen"})}


def layer_table(rows: list[ParamRow]) -> list[dict]:
    out: dict[str, dict] = {}
    for r in rows:
        layer = r.layer.split(":")[-1]
        d = out.setdefault(layer, {"layer": layer, "count": 0, "trainable": 0})
        d["count"] += r.count
        d["trainable"] += r.count if r.kind == "trainable" else 0
    return list(out.values())


def params_report(loaded) -> dict:
    rows = param_rows(loaded)
    return {"parameters": [asdict(r) | {"shape": list(r.shape)} for r in rows], "layers": layer_table(rows),
            "totals": totals(rows)}


def model_report(loaded) -> dict:
    """Each layer's output shape, from the spec alone."""
    a = loaded.analysis
    layers = []

    def walk(ls, prefix=""):
        for layer in ls:
            layers.append({"name": f"{prefix}{layer.name}", "type": layer.type, "inputs": list(layer.inputs),
                           "output_shape": list(a.shapes.get(layer.name, ())) if not prefix else None,
                           "activation": layer.activation.type if layer.activation else None})
            walk(layer.children(), f"{prefix}{layer.name}/")
    walk(loaded.spec.model.layers)
    return {"input_shape": list(a.input_shape), "output_shape": list(a.output_shape), "layers": layers,
            "warnings": [str(w) for w in a.warnings]}


def human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n} B"
