"""`nnctl inspect params --explain`: each layer's parameter count written as the formula of nnctl's own
implementation, e.g. `conv2d: 3·3·3·64 + 64 = 1,792` or `lstm: 4·32·(1 + 32 + 1) = 4,352`.

A formula is text over whole numbers (`·`, `+`, `/` for channels split into groups, parentheses) built from
the layer's spec keys and its input shape; its value is that text evaluated, so what is printed is what is
checked. A layer type without a formula here (one added later), or a formula that disagrees with the real
arrays, is written from the arrays themselves (`kernel 3·3·2 + bias 2`): never a wrong formula.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from typing import Any

from nnctl.layers.graph import thread_shapes

FORMULAS: dict[str, Callable[[Any, tuple], str]] = {}
NO_PARAMS = "0"


def formula(*types: str):
    def deco(fn):
        for t in types:
            FORMULAS[t] = fn
        return fn

    return deco


def evaluate(text: str) -> int:
    """The value of a formula's text (integers, `·`, `+`, `/`, parentheses; nothing else is accepted)."""

    def ev(node) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Mult):
                return a * b
            if isinstance(node.op, ast.Div) and b and a % b == 0:
                return a // b
        raise ValueError(f"not a parameter formula: {text!r}")

    return ev(ast.parse(text.replace("·", "*"), mode="eval").body)


def _dot(*factors: Any) -> str:
    return "·".join(str(f) for f in factors)


def _bias(layer: Any, n: Any) -> str:
    return f" + {n}" if getattr(layer, "use_bias", True) else ""


@formula("dense")
def _dense(layer, shape):
    return _dot(shape[-1], layer.units) + _bias(layer, layer.units)


@formula("conv1d", "conv2d", "conv3d")
def _conv(layer, shape):
    rank = len(shape) - 1
    k = layer.kernel_size if isinstance(layer.kernel_size, list) else [layer.kernel_size] * rank
    cin = shape[-1] if layer.groups == 1 else f"({shape[-1]}/{layer.groups})"
    return _dot(*k, cin, layer.filters) + _bias(layer, layer.filters)


@formula("conv2d_transpose")
def _conv_t(layer, shape):
    k = layer.kernel_size if isinstance(layer.kernel_size, list) else [layer.kernel_size] * 2
    return _dot(*k, shape[-1], layer.filters) + _bias(layer, layer.filters)


@formula("depthwise_conv2d")
def _depthwise(layer, shape):
    k = layer.kernel_size if isinstance(layer.kernel_size, list) else [layer.kernel_size] * 2
    out = _dot(shape[-1], layer.depth_multiplier)
    return _dot(*k, 1, shape[-1], layer.depth_multiplier) + _bias(layer, out)


@formula("batch_norm")
def _batch_norm(layer, shape):
    learned = int(layer.center) + int(layer.scale)
    stats = _dot(2, shape[-1])  # running mean and variance: variables, not trained
    return f"{_dot(learned, shape[-1])} + {stats}" if learned else stats


@formula("layer_norm")
def _layer_norm(layer, shape):
    return _dot(int(layer.center) + int(layer.scale), shape[-1])


@formula("embedding")
def _embedding(layer, shape):
    return _dot(layer.vocab_size, layer.features)


@formula("positional_embedding")
def _positional(layer, shape):
    return _dot(*shape) if layer.kind == "learned" else NO_PARAMS


@formula("simple_rnn", "lstm", "gru")
def _recurrent(layer, shape):
    gates = {"simple_rnn": 1, "lstm": 4, "gru": 3}[layer.type]
    inner = f"{shape[-1]} + {layer.units}" + (" + 1" if layer.use_bias else "")
    lead = [2] if layer.bidirectional else []
    return _dot(*lead, *([gates] if gates > 1 else []), layer.units, f"({inner})")


@formula("multi_head_attention")
def _attention(layer, shape):
    f, h, k = shape[-1], layer.num_heads, layer.key_dim
    out = layer.output_dim or f
    if layer.use_bias:
        return f"3·({_dot(f, h, k)} + {_dot(h, k)}) + {_dot(h, k, out)} + {out}"
    return f"3·{_dot(f, h, k)} + {_dot(h, k, out)}"


@formula("prelu")
def _prelu(layer, shape):
    return "1" if layer.shared else str(shape[-1])


@formula("rbf")
def _rbf(layer, shape):
    return f"{_dot(layer.units, shape[-1])} + {layer.units}"  # centres, then one gamma per centre


def _children(layers: list, shape: tuple) -> tuple[list[str], tuple | None]:
    """The formulas of a block's layers (those with parameters) and the block's output shape."""
    shapes, out, _, _ = thread_shapes(layers, shape)
    parts = []
    for child in layers:
        text = layer_formula(child, shapes.get(child.inputs[0]) if child.inputs else None)
        if text is not None and text != NO_PARAMS:
            parts.append(text)
    return parts, out


def _group(parts: list[str]) -> str:
    return " + ".join(f"({p})" if "+" in p and len(parts) > 1 else p for p in parts) or NO_PARAMS


@formula("residual")
def _residual(layer, shape):
    parts, out = _children(layer.layers, shape)
    if out is not None and tuple(out) != tuple(shape):  # the learned projection of the shortcut
        k = [1] * (len(shape) - 1)
        parts.append(_dot(*k, shape[-1], out[-1]) + f" + {out[-1]}")
    return _group(parts)


@formula("time_distributed")
def _time_distributed(layer, shape):
    return _group(_children(layer.layers, tuple(shape[1:]))[0])


def layer_formula(layer: Any, shape: tuple | None) -> str | None:
    """The formula of `layer`'s parameter count on inputs of `shape` (None: no formula for it)."""
    fn = FORMULAS.get(layer.type)
    if fn is not None and shape is not None:
        return fn(layer, tuple(shape))
    if fn is None and not layer.has_params and not layer.children():
        return NO_PARAMS
    return None


def array_formula(arrays: list[tuple[str, tuple]]) -> str:
    """A count written from the arrays themselves: `kernel 3·3·2 + bias 2` (a scalar array counts 1)."""
    named = sorted((path.rpartition("/")[2], shape) for path, shape in arrays)
    named.sort(key=lambda a: a[0] != "kernel")  # kernel first, as the formulas write it
    return " + ".join(f"{name} {_dot(*shape) if shape else 1}" for name, shape in named) or NO_PARAMS


def explained(layer: Any, shape: tuple | None, arrays: list[tuple[str, tuple]]) -> dict:
    """{formula, count, source}: the layer's formula (source `formula`), or its arrays' (source `arrays`)
    when it has none or the formula disagrees with the arrays."""
    count = sum(math.prod(s) for _, s in arrays)
    text = None if layer is None else layer_formula(layer, shape)
    if text is not None and evaluate(text) == count:
        return {"formula": text, "count": count, "source": "formula"}
    return {"formula": array_formula(arrays), "count": count, "source": "arrays"}


def shown(d: dict) -> str:
    """`3·3·3·64 + 64 = 1,792` (a bare number is not repeated)."""
    text = d["formula"]
    return f"{d['count']:,}" if text.isdigit() else f"{text} = {d['count']:,}"
