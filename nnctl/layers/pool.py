"""Pooling: `max_pool1d/2d`, `avg_pool1d/2d` (windows) and `global_avg_pool`, `global_max_pool`.

Non-overlapping windows without padding (the usual `pool_size: 2`) run as reshape + max/mean, about 5x
faster than `lax.reduce_window` on XLA:CPU (measured); every other case uses `reduce_window`.
Average pooling with `same` padding averages only the real inputs (Keras); an integer padding counts
the zeros (PyTorch's default).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Optional, Union

import flax.linen as nn
import jax.numpy as jnp
from pydantic import BeforeValidator, Field, NonNegativeInt

from nnctl.layers.base import LayerSpec, ShapeError, WindowMixin, register_layer
from nnctl.layers.conv import IntOrList, _padding_word, pads_of, per_axis, spatial_in, window_out


class _Pool(WindowMixin, LayerSpec):
    pool_size: IntOrList = Field(2, description="window size: an integer or one per spatial axis")
    strides: Optional[IntOrList] = Field(None, description="step between windows (default: pool_size)")
    padding: Annotated[
        Union[Literal["same", "valid"], NonNegativeInt, list[NonNegativeInt]], BeforeValidator(_padding_word)
    ] = Field("valid", description="`valid`, `same` or an integer P on every side (one per axis allowed)")

    rank: ClassVar[int] = 0
    reduce: ClassVar[str] = "max"
    slow_in_scan: ClassVar[bool] = True

    def _geometry(self, shape):
        sizes = spatial_in(self, shape, self.rank)
        k = per_axis(self, "pool_size", self.pool_size, self.rank)
        s = per_axis(self, "strides", self.strides if self.strides is not None else self.pool_size, self.rank)
        pads = pads_of(self, self.padding, self.rank)
        out, warns = window_out(self, sizes, k, s, (1,) * self.rank, pads, what="pool")
        return (*out, shape[-1]), warns, k, s, pads

    def apply(self, xs, train):
        x = xs[0]
        out, _, k, s, pads = self._geometry(tuple(x.shape[1:]))
        no_pad = pads != "SAME" and all(p == (0, 0) for p in pads)
        exact_same = pads == "SAME" and all(n % ki == 0 for n, ki in zip(x.shape[1:-1], k))
        if k == s and (no_pad or exact_same):
            return _reshape_pool(x, k, out[:-1], self.reduce)
        if self.reduce == "max":
            return nn.max_pool(x, k, strides=s, padding=pads if pads == "SAME" else list(pads))
        return nn.avg_pool(
            x, k, strides=s, padding=pads if pads == "SAME" else list(pads), count_include_pad=pads != "SAME"
        )


def _reshape_pool(x, k, out, reduce):
    """Non-overlapping windows as a reshape + reduction (crops the rows a strided window never reaches)."""
    b, c = x.shape[0], x.shape[-1]
    x = x[(slice(None), *(slice(0, o * ki) for o, ki in zip(out, k)))]
    shape, axes = [b], []
    for i, (o, ki) in enumerate(zip(out, k)):
        shape += [o, ki]
        axes.append(2 + 2 * i)
    x = x.reshape(*shape, c)
    return x.max(axis=tuple(axes)) if reduce == "max" else x.mean(axis=tuple(axes))


@register_layer
class MaxPool1D(_Pool):
    """Maximum over windows of `pool_size` steps, per channel."""

    type: Literal["max_pool1d", "maxpool1d", "max_pooling1d"] = "max_pool1d"
    rank: ClassVar[int] = 1


@register_layer
class MaxPool2D(_Pool):
    """Maximum over `pool_size` windows of rows x columns, per channel."""

    type: Literal["max_pool2d", "maxpool2d", "max_pooling2d"] = "max_pool2d"
    rank: ClassVar[int] = 2


@register_layer
class AvgPool1D(_Pool):
    """Mean over windows of `pool_size` steps, per channel."""

    type: Literal["avg_pool1d", "avgpool1d", "average_pooling1d"] = "avg_pool1d"
    rank: ClassVar[int] = 1
    reduce: ClassVar[str] = "mean"


@register_layer
class AvgPool2D(_Pool):
    """Mean over `pool_size` windows of rows x columns, per channel."""

    type: Literal["avg_pool2d", "avgpool2d", "average_pooling2d"] = "avg_pool2d"
    rank: ClassVar[int] = 2
    reduce: ClassVar[str] = "mean"


class _GlobalPool(LayerSpec):
    reduce: ClassVar[str] = "max"

    def out_shape(self, shapes):
        shape = shapes[0]
        if len(shape) < 2:
            raise ShapeError(f"({self.type}) expects (steps, channels) or (height, width, channels), got {shape}")
        return (shape[-1],)

    def apply(self, xs, train):
        x = xs[0]
        axes = tuple(range(1, x.ndim - 1))
        return x.max(axis=axes) if self.reduce == "max" else jnp.mean(x, axis=axes)


@register_layer
class GlobalAvgPool(_GlobalPool):
    """Mean over every spatial position: one value per channel."""

    type: Literal["global_avg_pool", "global_average_pooling", "global_avg_pool2d", "global_avg_pool1d"] = (
        "global_avg_pool"
    )
    reduce: ClassVar[str] = "mean"


@register_layer
class GlobalMaxPool(_GlobalPool):
    """Maximum over every spatial position: one value per channel."""

    type: Literal["global_max_pool", "global_max_pooling", "global_max_pool2d", "global_max_pool1d"] = "global_max_pool"
