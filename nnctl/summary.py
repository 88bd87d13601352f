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
    info = loaded.analysis.data_info
    abstract = abstract_variables(build_network(spec.model, getattr(info, "num_classes", None)),
                                  loaded.analysis.input_shape)
    from nnctl.spec.models import MODEL_PARTS  # vae/gan parts: paths start with the part ("encoder/dense_0")
    frozen_layers = [n for part in MODEL_PARTS[spec.model.type] for n in frozen_layer_names(
        getattr(spec.model, part), "" if spec.model.type == "sequential" else f"{part}/")]
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
    from nnctl.layers.graph import thread_shapes

    a = loaded.analysis
    layers = []

    def walk(ls, shapes, prefix=""):
        for layer in ls:
            layers.append({"name": f"{prefix}{layer.name}", "type": layer.type, "inputs": list(layer.inputs),
                           "output_shape": list(shapes.get(layer.name, ())),
                           "activation": layer.activation.type if layer.activation else None})
            kids, first = layer.children(), shapes.get(layer.inputs[0]) if layer.inputs else None
            # a block's layers see the block's input: thread it through them for their own shapes
            walk(kids, thread_shapes(kids, first)[0] if kids and first is not None else {}, f"{prefix}{layer.name}/")
    m = loaded.spec.model
    if m.type == "sequential":
        walk(m.layers, a.shapes)
    else:  # vae / gan: each part's layers, named part/layer as the spec check threads them
        from nnctl.spec.models import MODEL_PARTS
        for part in MODEL_PARTS[m.type]:
            walk(getattr(m, part), {k.split("/", 1)[1]: v for k, v in a.shapes.items() if k.startswith(f"{part}/")},
                 f"{part}/")
            if part == "encoder":  # the vae adds the mean and log-variance layers after the encoder
                last = f"encoder/{m.encoder[-1].name}"
                layers += [{"name": n, "type": "dense", "inputs": [last], "output_shape": [m.latent_dim],
                            "activation": None} for n in ("z_mean", "z_log_var")]
    return {"input_shape": list(a.input_shape), "output_shape": list(a.output_shape), "layers": layers,
            "warnings": [str(w) for w in a.warnings]}


def human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n} B"
