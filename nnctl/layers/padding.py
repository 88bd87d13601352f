"""`padding` (alias `zero_padding`, `pad`): pads the spatial axes of (steps, channels) or (height, width,
channels) with zeros, a constant, the reflection of the border (`reflect`: d c b | a b c d | c b a) or
copies of the border value (`replicate`: a a | a b c d | d d), as the notes' padding section draws them."""

from __future__ import annotations

from typing import Literal, Union

import jax.numpy as jnp
from pydantic import Field, NonNegativeInt

from nnctl.layers.base import LayerSpec, ShapeError, register_layer

PAD_MODES = {"zeros": "constant", "constant": "constant", "reflect": "reflect", "replicate": "edge"}


def pad_pairs(layer: LayerSpec, padding, rank: int) -> tuple[tuple[int, int], ...]:
    """An int, or one entry per spatial axis (an int or [low, high]) -> (low, high) per axis."""
    if isinstance(padding, int):
        return ((padding, padding),) * rank
    if len(padding) != rank:
        raise ShapeError(
            f"({layer.type}) padding {padding} needs {rank} value(s), one per spatial axis "
            f"(an integer, or a two-item list: low, high)"
        )
    out = []
    for p in padding:
        if isinstance(p, int):
            out.append((p, p))
        elif len(p) == 2:
            out.append((p[0], p[1]))
        else:
            raise ShapeError(f"({layer.type}) padding entry {p} must be an integer or a two-item list: low, high")
    return tuple(out)


def pad_spatial(x, pairs, mode: str, value: float = 0.0):
    """Pad the spatial axes of a batched channels-last array."""
    widths = [(0, 0), *pairs, (0, 0)]
    if PAD_MODES[mode] == "constant":
        return jnp.pad(x, widths, constant_values=value if mode == "constant" else 0.0)
    return jnp.pad(x, widths, mode=PAD_MODES[mode])


def check_pad_mode(layer: LayerSpec, sizes, pairs, mode: str) -> None:
    """reflect needs padding < size (it mirrors without repeating the border); replicate needs size >= 1."""
    if mode != "reflect":
        return
    for n, (lo, hi) in zip(sizes, pairs):
        if max(lo, hi) >= n:
            raise ShapeError(
                f"({layer.type}) reflect padding {max(lo, hi)} needs an axis longer than it, got {n}: "
                f"use replicate, or pad by at most {n - 1}"
            )


@register_layer
class Padding(LayerSpec):
    """Pads the spatial axes (zeros, a constant, reflect or replicate); no parameters."""

    type: Literal["padding", "zero_padding", "pad"] = "padding"
    padding: Union[NonNegativeInt, list[Union[NonNegativeInt, list[NonNegativeInt]]]] = Field(
        1, description="P on every side, or one per spatial axis (an integer or [low, high])"
    )
    mode: Literal["zeros", "constant", "reflect", "replicate"] = Field(
        "zeros", description="zeros | constant (value) | reflect (mirror, border not repeated) | replicate (edge)"
    )
    value: float = Field(0.0, description="mode constant: the value padded with")

    def out_shape(self, shapes):
        shape = shapes[0]
        if len(shape) < 2:
            raise ShapeError(
                f"(padding) expects (steps, channels) or (height, width, channels), got {shape}: "
                f"add a reshape layer before it"
            )
        if self.mode != "constant" and self.value != 0.0:
            raise ShapeError(f"(padding) value {self.value} is used by mode constant only, not {self.mode}")
        pairs = pad_pairs(self, self.padding, len(shape) - 1)
        check_pad_mode(self, shape[:-1], pairs, self.mode)
        return (*(n + lo + hi for n, (lo, hi) in zip(shape[:-1], pairs)), shape[-1])

    def apply(self, xs, train):
        x = xs[0]
        return pad_spatial(x, pad_pairs(self, self.padding, x.ndim - 2), self.mode, self.value)
