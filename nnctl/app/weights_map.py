"""Weights from another tool's file mapped onto a spec's variables, by name (docs/transfer.md).

PyTorch (a `state_dict`, or safetensors written from one): the variable `<layer path>/<leaf>` reads the tensor
`<layer path with / as .>.<name>`, the names being PyTorch's: kernel and scale -> `weight`, bias -> `bias`,
batch norm's mean and var -> `running_mean`, `running_var`, an embedding table -> `weight`, PReLU's slopes ->
`weight`. Layouts: a convolution kernel [out, in, *window] becomes [*window, in, out] (a transposed
convolution's [in, out, *window] becomes [*window, in, out] with the window flipped); a linear weight [out,
in] becomes [in, out], and when the dense layer reads a `flatten` of an image (H, W, C), its rows are
reordered from PyTorch's channels-first flattening (c, h, w) to nnctl's channels-last one (h, w, c); when it
feeds a `reshape` to an image, its columns and bias are reordered the same way.

Keras (`.weights.h5`): the layer named N reads Keras' layer N, its arrays in Keras' order (kernel, bias;
gamma, beta, moving mean, moving variance), layouts unchanged (Keras is channels-last like nnctl).

Rules: a layer found in the file must match it completely (every array, every shape), else a located error
names the first array that does not (its name, the shape expected, the shape found); a layer the file does not
have keeps its fresh initialisation (a new head) and is reported as new; tensors nothing reads are reported as
unused; a file of which nothing matches is an error listing what it holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnctl.errors import did_you_mean
from nnctl.layers.graph import thread_shapes
from nnctl.trees import flat

TORCH_NAMES = {
    "kernel": "weight",
    "scale": "weight",
    "bias": "bias",
    "mean": "running_mean",
    "var": "running_var",
    "embedding": "weight",
    "alpha": "weight",
}
TORCH_IGNORED = ("num_batches_tracked",)  # batch norm's step counter: nnctl's momentum needs none
KERAS_ORDER = ("kernel", "embedding", "alpha", "scale", "bias", "mean", "var")


@dataclass(frozen=True)
class Slot:
    """One variable of the target: its flat path (params/..., model_state/batch_stats/...), layer path, leaf."""

    path: str
    layer: str
    leaf: str
    shape: tuple


def slots(target: dict, layer_order: list[str]) -> list[Slot]:
    """The target's variables, in the spec's layer order."""
    out = []
    for path, leaf in flat(target).items():
        parts = path.split("/")
        skip = 2 if parts[0] == "model_state" else 1  # model_state/<collection>/...
        out.append(Slot(path, "/".join(parts[skip:-1]), parts[-1], tuple(leaf.shape)))
    rank = {name: i for i, name in enumerate(layer_order)}
    return sorted(
        out,
        key=lambda s: (
            rank.get(s.layer.split("/")[0], len(rank)),
            s.layer,
            KERAS_ORDER.index(s.leaf) if s.leaf in KERAS_ORDER else 99,
        ),
    )


@dataclass(frozen=True)
class Layout:
    """Where PyTorch's channels-first order shows in a spec: dense layers reading a flattened image
    (`flattened`: name -> (H, W, C)) or feeding a reshape to one (`reshaped`), and transposed convolutions."""

    flattened: dict
    reshaped: dict
    transposed: frozenset


def torch_layout(layers: list, input_shape: tuple) -> Layout:
    """The layout of a spec's top-level layers; looks through layers without parameters that keep the shape
    (dropout, activation) between a dense layer and its `flatten` / `reshape`."""
    shapes = thread_shapes(layers, input_shape)[0]
    by_name = {layer.name: layer for layer in layers}
    users: dict[str, list] = {}
    for layer in layers:
        for i in layer.inputs:
            users.setdefault(i, []).append(layer)

    def passes(layer) -> bool:
        return not layer.has_params and len(layer.inputs) == 1 and shapes.get(layer.name) == shapes.get(layer.inputs[0])

    flattened, reshaped = {}, {}
    for layer in layers:
        if layer.type != "dense" or len(layer.inputs) != 1:
            continue
        src = by_name.get(layer.inputs[0])
        while src is not None and src.type != "flatten" and passes(src):
            src = by_name.get(src.inputs[0])
        if src is not None and src.type == "flatten" and len(shapes.get(src.inputs[0], ())) >= 2:
            flattened[layer.name] = shapes[src.inputs[0]]
        dst = users.get(layer.name, [])
        while len(dst) == 1 and dst[0].type != "reshape" and passes(dst[0]):
            dst = users.get(dst[0].name, [])
        if len(dst) == 1 and dst[0].type == "reshape" and len(shapes.get(dst[0].name, ())) >= 2:
            reshaped[layer.name] = shapes[dst[0].name]
    return Layout(flattened, reshaped, frozenset(_paths_of_type(layers, "conv2d_transpose")))


def _paths_of_type(layers: list, type_: str, prefix: str = "") -> list[str]:
    out = []
    for layer in layers:
        out += [f"{prefix}{layer.name}"] if layer.type == type_ else []
        out += _paths_of_type(layer.children(), type_, f"{prefix}{layer.name}/")
    return out


def _channels_last(a: np.ndarray, image: tuple, axis: int) -> np.ndarray:
    """`a` with its `axis` (of size H·W·C, in PyTorch's (c, h, w) order) put in nnctl's (h, w, c) order."""
    *spatial, c = image
    moved = np.moveaxis(a, axis, 0)
    r = len(spatial)
    moved = moved.reshape(c, *spatial, *moved.shape[1:]).transpose(*range(1, r + 1), 0, *range(r + 1, r + moved.ndim))
    return np.moveaxis(moved.reshape(a.shape[axis], *a.shape[:axis], *a.shape[axis + 1 :]), 0, axis)


def torch_value(a: np.ndarray, slot: Slot, layout: Layout) -> tuple[np.ndarray, str]:
    """A PyTorch tensor in nnctl's layout, and the rule applied (for messages)."""
    if slot.leaf == "kernel" and a.ndim >= 3 and slot.layer in layout.transposed:
        flipped = a.transpose(*range(2, a.ndim), 0, 1)[(slice(None, None, -1),) * (a.ndim - 2)]
        return flipped, "transposed convolution [in, out, *window] -> [*window, in, out], window flipped"
    if slot.leaf == "kernel" and a.ndim >= 3:
        return a.transpose(*range(2, a.ndim), 1, 0), "convolution [out, in, *window] -> [*window, in, out]"
    rule = "as stored"
    if slot.leaf == "kernel" and a.ndim == 2:
        a, rule = a.T, "linear [out, in] -> [in, out]"
        image = layout.flattened.get(slot.layer)
        if image is not None and a.shape[0] == math.prod(image):
            a = _channels_last(a, image, 0)
            rule += f", rows reordered from channels-first to channels-last flattening of {list(image)}"
    image = layout.reshaped.get(slot.layer)
    if image is not None and slot.leaf in ("kernel", "bias") and a.shape[-1] == math.prod(image):
        a = _channels_last(a, image, a.ndim - 1)
        rule += f", outputs reordered from a channels-first to a channels-last reshape to {list(image)}"
    return a, rule


def source_layer(layer: str, names: dict[str, str]) -> list[str]:
    """The path of the file's layer for the spec's layer path: the top-level name through `model.init_names`."""
    top, *rest = layer.split("/")
    return [names.get(top, top), *rest]


def map_torch(tensors: dict, targets: list[Slot], layout: Layout, names: dict[str, str], fail: Callable[[str], Any]):
    """{target path: array} and the report, from a PyTorch/safetensors name -> tensor dict."""

    def key_of(slot: Slot) -> str:
        return f"{'.'.join(source_layer(slot.layer, names))}.{TORCH_NAMES.get(slot.leaf, slot.leaf)}"

    def fetch(slot: Slot):
        a = tensors.get(key_of(slot))
        if a is None:
            return None
        value, rule = torch_value(np.asarray(a), slot, layout)
        if tuple(value.shape) != slot.shape:
            fail(
                f"tensor '{key_of(slot)}' has shape {list(a.shape)} ({rule}: {list(value.shape)}), but "
                f"{_show(slot)} is {list(slot.shape)}: the file's model differs from the spec here (rename the "
                f"layer to start it fresh, or fix its size)"
            )
        return value

    return _assemble(targets, fetch, key_of, set(tensors) - {k for k in tensors if k.endswith(TORCH_IGNORED)}, fail)


def map_keras(layers: dict[str, list[np.ndarray]], targets: list[Slot], names: dict[str, str], fail):
    """{target path: array} and the report, from Keras' {layer name: arrays in order}."""
    by_layer: dict[str, list[Slot]] = {}
    for s in targets:
        by_layer.setdefault(s.layer, []).append(s)
    keras_name = lambda layer: source_layer(layer, names)[-1]
    for layer, group in by_layer.items():
        arrays = layers.get(keras_name(layer))
        if arrays is not None and len(arrays) != len(group):
            fail(
                f"Keras layer '{keras_name(layer)}' has {len(arrays)} arrays {[list(a.shape) for a in arrays]}, "
                f"but layer {layer} has {len(group)} ({', '.join(s.leaf for s in group)})"
            )

    def key_of(slot: Slot) -> str:
        return f"{keras_name(slot.layer)}[{by_layer[slot.layer].index(slot)}]"

    def fetch(slot: Slot):
        arrays = layers.get(keras_name(slot.layer))
        if arrays is None:
            return None
        a = np.asarray(arrays[by_layer[slot.layer].index(slot)])
        if tuple(a.shape) != slot.shape:
            fail(
                f"Keras array '{key_of(slot)}' has shape {list(a.shape)}, but {_show(slot)} is {list(slot.shape)}: "
                f"the file's model differs from the spec here (rename the layer to start it fresh, or fix its size)"
            )
        return a

    used = {f"{name}[{i}]" for name, arrays in layers.items() for i in range(len(arrays))}
    return _assemble(targets, fetch, key_of, used, fail)


def _show(slot: Slot) -> str:
    return f"{slot.layer}/{slot.leaf}" + (" (running statistic)" if slot.path.startswith("model_state") else "")


def _assemble(targets: list[Slot], fetch, key_of, source_keys: set[str], fail):
    """Values per target path; a layer is read whole or not at all; the report of copied, new, unused."""
    values: dict[str, np.ndarray] = {}
    report: dict[str, list] = {"copied": [], "new": [], "unused": []}
    fetched = {s.path: fetch(s) for s in targets}
    found_layers = {s.layer for s in targets if fetched[s.path] is not None}
    for s in targets:
        v = fetched[s.path]
        if v is not None:
            values[s.path] = v
            report["copied"].append(f"{s.layer}/{s.leaf}")
        elif s.layer in found_layers:
            fail(f"the file has layer {s.layer} but no '{key_of(s)}' for its {s.leaf} {list(s.shape)}")
        else:
            report["new"].append(f"{s.layer}/{s.leaf}")
    read = {key_of(s) for s in targets if s.path in values}
    report["unused"] = sorted(source_keys - read)
    if not values:
        first = key_of(targets[0]) if targets else ""
        fail(
            f"no array of the file matches the spec's layers by name (the first one looked for: "
            f"'{first}').{did_you_mean(first, source_keys)} The file holds: {', '.join(sorted(source_keys)[:12])}"
            f"{' ...' if len(source_keys) > 12 else ''}. Name the spec's layers after the file's (docs/transfer.md)"
        )
    return values, report
