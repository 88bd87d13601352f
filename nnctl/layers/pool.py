"""Pooling: `max_pool1d/2d`, `avg_pool1d/2d` (windows) and `global_avg_pool`, `global_max_pool`.

Non-overlapping windows without padding (the usual `pool_size: 2`) run as reshape + max/mean, about 5x
faster than `lax.reduce_window` on XLA:CPU (measured); every other case uses `reduce_window`.
Average pooling with `same` padding averages only the real inputs (Keras); an integer padding counts
the zeros (PyTorch's default). `ceil_mode: true` rounds the output size up as PyTorch's ceil_mode does
(GoogLeNet's pools): the last window may hang over the end, and an average divides only by what it covers.

The maximum of those non-overlapping windows and `global_max_pool` have a hand-written gradient
(`window_max`, `global_max`): the output gradient goes to every input equal to its window's maximum,
computed in the input's own layout. Where a window's maximum is unique (almost always for real-valued
inputs) this is exactly autodiff's gradient. Tie rule: where several inputs of a window equal its maximum,
EACH receives the full output gradient (autodiff of `max` splits it equally among them; PyTorch gives it to
the first). The usual tie, a window of zeros after a ReLU, makes no difference, since the ReLU's gradient at
0 is 0. Autodiff's rule counts the ties per window with a broadcast in the 2(rank)+2-dimensional window
layout, a memory-bound pass that took ~35 % of a small CNN's training step on XLA:CPU.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, ClassVar, Literal, Optional, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
from pydantic import BeforeValidator, Field, NonNegativeInt

from nnctl.layers.base import LayerSpec, ShapeError, WindowMixin, register_layer
from nnctl.layers.conv import IntOrList, _padding_word, pads_of, per_axis, spatial_in, window_out


def pool_geometry(layer, shape):
    """(output shape, warnings, window, strides, padding) of a windowed pooling layer (pool_size, strides,
    padding, rank) on an input of `shape` (without the batch axis)."""
    sizes = spatial_in(layer, shape, layer.rank)
    k = per_axis(layer, "pool_size", layer.pool_size, layer.rank)
    s = per_axis(layer, "strides", layer.strides if layer.strides is not None else layer.pool_size, layer.rank)
    pads = pads_of(layer, layer.padding, layer.rank)
    out, warns = window_out(layer, sizes, k, s, (1,) * layer.rank, pads, what="pool")
    if getattr(layer, "ceil_mode", False):
        if pads == "SAME":
            raise ShapeError(f"({layer.type}) ceil_mode needs `valid` or integer padding (`same` already rounds up)")
        (out, pads), warns = ceil_windows(sizes, k, s, pads), []
    return (*out, shape[-1]), warns, k, s, pads


def ceil_windows(sizes, k, s, pads) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    """PyTorch's ceil_mode: out = ceil((n + lo + hi - k) / s) + 1, less one when the last window would start
    in the high padding; the padding grown on the high side so the last window fits. (out, pads)."""
    out, grown = [], []
    for n, ki, si, (lo, hi) in zip(sizes, k, s, pads):
        o = -(-(n + lo + hi - ki) // si) + 1
        if (o - 1) * si >= n + lo:
            o -= 1
        out.append(o)
        grown.append((lo, hi + max((o - 1) * si + ki - (n + lo + hi), 0)))
    return tuple(out), tuple(grown)


class _Pool(WindowMixin, LayerSpec):
    pool_size: IntOrList = Field(2, description="window size: an integer or one per spatial axis")
    strides: Optional[IntOrList] = Field(None, description="step between windows (default: pool_size)")
    padding: Annotated[
        Union[Literal["same", "valid"], NonNegativeInt, list[NonNegativeInt]], BeforeValidator(_padding_word)
    ] = Field("valid", description="`valid`, `same` or an integer P on every side (one per axis allowed)")
    ceil_mode: bool = Field(
        False, description="round the output size up (PyTorch's ceil_mode): a last, partial window is kept"
    )

    rank: ClassVar[int] = 0
    reduce: ClassVar[str] = "max"
    slow_in_scan: ClassVar[bool] = True

    def _geometry(self, shape):
        return pool_geometry(self, shape)

    def apply(self, xs, train):
        x = xs[0]
        out, _, k, s, pads = self._geometry(tuple(x.shape[1:]))
        no_pad = pads != "SAME" and all(p == (0, 0) for p in pads)
        exact_same = pads == "SAME" and all(n % ki == 0 for n, ki in zip(x.shape[1:-1], k))
        if k == s and (no_pad or exact_same):
            return _reshape_pool(x, k, out[:-1], self.reduce)
        if self.reduce == "mean" and self.ceil_mode:
            return _avg_ceil(x, k, s, pads, pads_of(self, self.padding, self.rank))
        if self.reduce == "max":
            return nn.max_pool(x, k, strides=s, padding=pads if pads == "SAME" else list(pads))
        return nn.avg_pool(
            x, k, strides=s, padding=pads if pads == "SAME" else list(pads), count_include_pad=pads != "SAME"
        )


def _avg_ceil(x, k, s, pads, base):
    """Average pooling under ceil_mode: the explicit padding counts (zeros), the grown part does not."""
    window, strides = (1, *k, 1), (1, *s, 1)
    sums = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, strides, [(0, 0), *pads, (0, 0)])
    ones = jnp.ones(tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[1:-1], base)), x.dtype)
    grown = [(0, g[1] - b[1]) for g, b in zip(pads, base)]
    counts = jax.lax.reduce_window(ones, 0.0, jax.lax.add, tuple(k), tuple(s), grown)
    return sums / counts[None, ..., None]


def _reshape_pool(x, k, out, reduce):
    """Non-overlapping windows as a reshape + reduction (crops the rows a strided window never reaches)."""
    x = x[(slice(None), *(slice(0, o * ki) for o, ki in zip(out, k)))]
    if reduce == "max":
        return window_max(x, tuple(k))
    w, axes = _windows(x, k)
    return w.mean(axis=axes)


def _windows(x, k):
    """(B, o1, k1, o2, k2, ..., C) view of x (B, o1*k1, o2*k2, ..., C) and the window axes."""
    shape, axes = [x.shape[0]], []
    for i, ki in enumerate(k):
        shape += [x.shape[1 + i] // ki, ki]
        axes.append(2 + 2 * i)
    return x.reshape(*shape, x.shape[-1]), tuple(axes)


def _upsample(y, k):
    """Each value of y repeated over its window: back to the input's layout."""
    for i, ki in enumerate(k):
        y = jnp.repeat(y, ki, axis=1 + i)
    return y


@partial(jax.custom_vjp, nondiff_argnums=(1,))
def window_max(x, k: tuple):
    """Maximum over non-overlapping windows `k` of x (B, *spatial, C), each spatial size a multiple of k.
    Gradient: the full output gradient to every input equal to its window's maximum (module docstring)."""
    w, axes = _windows(x, k)
    return w.max(axis=axes)


def _window_max_fwd(x, k):
    y = window_max(x, k)
    return y, (x, y)


def _window_max_bwd(k, res, g):
    x, y = res
    return (jnp.where(x == _upsample(y, k), _upsample(g, k), jnp.zeros((), g.dtype)),)


window_max.defvjp(_window_max_fwd, _window_max_bwd)


@jax.custom_vjp
def global_max(x):
    """Maximum over every spatial axis of x (B, *spatial, C); gradient as `window_max`'s."""
    return x.max(axis=tuple(range(1, x.ndim - 1)))


def _global_max_fwd(x):
    y = global_max(x)
    return y, (x, y)


def _global_max_bwd(res, g):
    x, y = res
    spread = lambda a: jnp.expand_dims(a, tuple(range(1, x.ndim - 1)))
    return (jnp.where(x == spread(y), spread(g), jnp.zeros((), g.dtype)),)


global_max.defvjp(_global_max_fwd, _global_max_bwd)


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
        return global_max(x) if self.reduce == "max" else jnp.mean(x, axis=axes)


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
