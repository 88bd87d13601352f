"""Wiring layers into a network: default names/inputs, shape threading, and the Flax module.

A model is a list of layers; each reads the layers named in `inputs` (default: the one before it, and
`input` for the model's input) and the last layer is the output. That covers plain stacks, skip
connections and parallel branches with one mechanism.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import flax.linen as nn

from nnctl import activations
from nnctl.errors import did_you_mean
from nnctl.layers.base import LAYERS, LayerSpec, Shape, ShapeError

INPUT = "input"


def resolve_names(raw_layers: Any) -> Any:
    """Fill default `name` (<type>_<index>) and `inputs` (the previous layer) into raw layer mappings.

    Runs before validation so the resolved spec shows them; anything malformed is left for validation
    to report.
    """
    if not isinstance(raw_layers, list):
        return raw_layers
    out, prev = [], INPUT
    for i, raw in enumerate(raw_layers):
        if not isinstance(raw, dict):
            out.append(raw)
            continue
        d = dict(raw)
        if d.get("name") is None:
            d["name"] = f"{LAYERS.canonical(str(d.get('type', 'layer')))}_{i}"
        if d.get("inputs") is None:
            d["inputs"] = [prev]
        elif isinstance(d["inputs"], str):
            d["inputs"] = [d["inputs"]]
        if isinstance(d.get("layers"), list):
            d["layers"] = resolve_names(d["layers"])
        prev = d["name"] if isinstance(d["name"], str) else prev
        out.append(d)
    return out


def thread_shapes(
    layers: Iterable[LayerSpec], input_shape: Shape, path: tuple = ()
) -> tuple[dict[str, Shape], Shape | None, list[tuple[tuple, str]], list[tuple[tuple, str]]]:
    """Output shape of every layer. Returns (shapes by name, output shape, problems, warnings);
    problems and warnings are (key path, message). A layer after a broken one is not checked again."""
    shapes: dict[str, Shape | None] = {INPUT: tuple(input_shape)}
    problems: list[tuple[tuple, str]] = []
    warnings: list[tuple[tuple, str]] = []
    out: Shape | None = tuple(input_shape)
    seen_names: set[str] = set()
    for i, layer in enumerate(layers):
        here = path + (i,)
        assert layer.name is not None and layer.inputs is not None  # filled in by resolve_names before validation
        if layer.name in seen_names or layer.name == INPUT:
            problems.append((here + ("name",), f"layer name '{layer.name}' is used twice; names must be unique"))
        seen_names.add(layer.name)
        ins: list[Shape | None] = []
        unknown_input = False
        for k in layer.inputs:
            if k not in shapes:
                problems.append(
                    (
                        here + ("inputs",),
                        f"unknown input '{k}'.{did_you_mean(k, shapes)} "
                        f"Layers defined before this one: {', '.join(shapes)}",
                    )
                )
                unknown_input = True
                break
            ins.append(shapes[k])
        out = None
        if not unknown_input and all(s is not None for s in ins):
            if layer.n_inputs is not None and len(ins) != layer.n_inputs:
                problems.append((here + ("inputs",), f"({layer.type}) takes {layer.n_inputs} input, got {len(ins)}"))
            elif layer.n_inputs is None and len(ins) < 2:
                problems.append(
                    (
                        here + ("inputs",),
                        f"({layer.type}) merges two or more inputs, got {len(ins)}: list them in `inputs: [a, b]`",
                    )
                )
            else:
                known = cast(list[Shape], ins)  # every entry was checked to be not None above
                try:
                    out = tuple(layer.out_shape(known))
                    warnings += [(here, w) for w in layer.warnings(known)]
                except ShapeError as e:
                    problems.append((here, f"{layer.name} {e}"))
                except (ValueError, TypeError, ArithmeticError) as e:  # e.g. options that cannot be built, absurd sizes
                    problems.append((here, f"{layer.name} ({layer.type}): {e}"))
                except _NestedProblems as e:
                    problems += [(here + p, m) for p, m in e.problems]
        shapes[layer.name] = out
    return {k: v for k, v in shapes.items() if v is not None}, out, problems, warnings


class _NestedProblems(Exception):
    def __init__(self, problems):
        super().__init__("nested")
        self.problems = problems


OUTPUT_MASK = "(output mask)"  # a `capture` key: the (batch, steps) 0/1 mask of the output, or None


def mask_flow(layers: Iterable[LayerSpec]) -> dict[str, str]:
    """Which layers' outputs carry a mask of padded steps: {layer name: name of the layer that made it}.

    A `makes_mask` layer starts one; a layer whose output keeps its first input's steps (`passes_mask`)
    carries its first input's mask on; every other layer drops it (Keras 3's rule)."""
    flow: dict[str, str] = {}
    for layer in layers:
        assert layer.name is not None and layer.inputs is not None
        src = flow.get(layer.inputs[0])
        if layer.makes_mask():
            flow[layer.name] = layer.name
        elif src is not None and layer.passes_mask():
            flow[layer.name] = src
    return flow


def run_graph(
    layers: tuple[LayerSpec, ...], x, train: bool, head: bool = True, capture: tuple = (), outputs: tuple = ()
):
    """The forward pass over a layer list; call it inside a compact linen method. `outputs`: layer names whose
    outputs are returned (a tuple, in that order) instead of the last layer's; each before its activation when
    `head` is False (a model with several outputs, `model.outputs`)."""
    env = {INPUT: x}
    out = x
    last = len(layers) - 1
    flow = mask_flow(layers)
    masks: dict[str, Any] = {}
    heads: dict[str, Any] = {}
    for i, layer in enumerate(layers):
        assert layer.name is not None and layer.inputs is not None  # filled in by resolve_names before validation
        xs = [env[k] for k in layer.inputs]
        mask = masks.get(flow.get(layer.inputs[0], ""))
        if layer.makes_mask():
            masks[layer.name] = layer.mask_of(xs[0])
        z = layer.apply_masked(xs, train, mask) if (mask is not None and layer.takes_mask) else layer.apply(xs, train)
        out = z if (i == last and not head) else activations.apply(layer.activation, z)
        env[layer.name] = out
        if layer.name in outputs:
            heads[layer.name] = out if head else z
    if outputs:
        out = tuple(heads[k] for k in outputs)
    if capture:
        out_mask = masks.get(flow.get(layers[-1].name or "", ""))
        return out, {k: (out_mask if k == OUTPUT_MASK else env[k]) for k in capture}
    return out


class Network(nn.Module):
    """A whole model. `head=False` returns the last layer's output before its activation (logits)."""

    layers: tuple

    @nn.compact
    def __call__(self, x, train: bool = False, head: bool = True, capture: tuple = (), outputs: tuple = ()):
        return run_graph(self.layers, x, train, head, capture, outputs)
