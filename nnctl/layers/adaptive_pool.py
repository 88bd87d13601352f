"""Adaptive pooling: `adaptive_avg_pool`, `adaptive_max_pool` (PyTorch's AdaptiveAvgPool2d/AdaptiveMaxPool2d,
the pool before the classifier of torchvision's AlexNet, VGG and ResNet).

The output size is given, the windows follow from it: along an axis of n inputs and o outputs, output i
reduces inputs floor(i n / o) .. ceil((i + 1) n / o) - 1 (PyTorch's rule). When o divides n every window is
n / o wide and does not overlap; otherwise neighbouring windows may share an input. Output size equal to the
input size is the identity; output size 1 is the global pool.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import jax.numpy as jnp
from pydantic import Field

from nnctl.layers.base import LayerSpec, ShapeError, register_layer
from nnctl.layers.conv import IntOrList, per_axis


def adaptive_windows(n: int, o: int) -> list[tuple[int, int]]:
    """(start, end) of each of the `o` windows over `n` inputs, PyTorch's rule."""
    return [((i * n) // o, -(-((i + 1) * n) // o)) for i in range(o)]


class _AdaptivePool(LayerSpec):
    output_size: IntOrList = Field(..., description="output size per spatial axis: an integer or one per axis")

    reduce: ClassVar[str] = "mean"

    def _sizes(self, shape):
        if len(shape) < 2:
            raise ShapeError(f"({self.type}) expects (steps, channels) or (height, width, channels), got {shape}")
        out = per_axis(self, "output_size", self.output_size, len(shape) - 1)
        for n, o in zip(shape[:-1], out):
            if o > n:
                raise ShapeError(f"({self.type}) output size {o} is larger than the input ({n}): use at most {n}")
        return out

    def out_shape(self, shapes):
        return (*self._sizes(shapes[0]), shapes[0][-1])

    def apply(self, xs, train):
        x = xs[0]
        out = self._sizes(tuple(x.shape[1:]))
        red = jnp.mean if self.reduce == "mean" else jnp.max
        # the windows of a box are the product of per-axis windows, and mean/max reduce axis by axis
        for axis, (n, o) in enumerate(zip(x.shape[1:-1], out)):
            if n == o:
                continue
            ax = axis + 1
            parts = [
                red(jnp.take(x, jnp.arange(s, e), axis=ax), axis=ax, keepdims=True) for s, e in adaptive_windows(n, o)
            ]
            x = jnp.concatenate(parts, axis=ax)
        return x


@register_layer
class AdaptiveAvgPool(_AdaptivePool):
    """Mean over windows sized so that the output has `output_size` (PyTorch's adaptive average pooling)."""

    type: Literal["adaptive_avg_pool", "adaptive_avg_pool2d", "adaptive_avg_pool1d"] = "adaptive_avg_pool"


@register_layer
class AdaptiveMaxPool(_AdaptivePool):
    """Maximum over windows sized so that the output has `output_size` (PyTorch's adaptive max pooling)."""

    type: Literal["adaptive_max_pool", "adaptive_max_pool2d", "adaptive_max_pool1d"] = "adaptive_max_pool"
    reduce: ClassVar[str] = "max"
