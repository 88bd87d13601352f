"""Convolutions (channels-last): `conv1d`, `conv2d`, `conv3d`, `conv2d_transpose`, and `upsample`.

Shapes follow the notes' arithmetic: along each spatial axis out = floor((n + 2P - k_eff) / S) + 1 with
k_eff = D (k - 1) + 1 for dilation D; `padding: same` gives ceil(n / S). A stride that does not tile
the padded input is legal but drops the last rows/columns: `warnings` says so with the arithmetic.
`groups: G` splits the channels into G groups convolved separately (AlexNet's two-GPU halves; kernel
[..., in/G, filters]); `padding_mode` pads with zeros, the reflection or the replicated border.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
from pydantic import BeforeValidator, Field, NonNegativeInt, PositiveInt

from nnctl import initializers
from nnctl.layers.base import KernelMixin, LayerSpec, Shape, ShapeError, WindowMixin, register_layer
from nnctl.layers.padding import check_pad_mode, pad_pairs, pad_spatial

IntOrList = Union[PositiveInt, list[PositiveInt]]


def _padding_word(v):
    if isinstance(v, str) and v not in ("same", "valid"):
        raise ValueError(
            f"padding '{v}' is not allowed: use `same`, `valid`, an integer, or one per axis "
            f"(an integer or a two-item list: low, high)"
        )
    return v


Padding = Annotated[
    Union[Literal["same", "valid"], NonNegativeInt, list[Union[NonNegativeInt, list[NonNegativeInt]]]],
    BeforeValidator(_padding_word),
]


def per_axis(layer: LayerSpec, key: str, value, n: int) -> tuple[int, ...]:
    """An int or a list of `n` ints -> a tuple of `n` ints."""
    if isinstance(value, int):
        return (value,) * n
    if len(value) != n:
        raise ShapeError(f"({layer.type}) {key} {value} needs {n} value(s), one per spatial axis")
    return tuple(value)


def pads_of(layer: LayerSpec, padding, n: int) -> str | tuple[tuple[int, int], ...]:
    """ "same"/"valid" or explicit (low, high) padding per spatial axis."""
    if padding == "same":
        return "SAME"
    if padding == "valid":
        return tuple((0, 0) for _ in range(n))
    return pad_pairs(layer, padding, n)


def spatial_in(layer: LayerSpec, shape: Shape, rank: int) -> tuple[int, ...]:
    """The spatial sizes of a channels-last input of `rank` spatial axes."""
    if len(shape) != rank + 1:
        want = {1: "(steps, channels)", 2: "(height, width, channels)", 3: "(depth, height, width, channels)"}[rank]
        fix = (
            f"add {{type: reshape, shape: [{shape[0]}, 1]}} before it"
            if len(shape) == 1 and rank == 1
            else "add a reshape layer before it"
            if len(shape) < rank + 1
            else "use the layer of matching rank"
        )
        raise ShapeError(f"({layer.type}) expects {want}, got {tuple(shape)}: {fix}")
    return tuple(shape[:-1])


def window_out(layer: LayerSpec, sizes, kernel, strides, dilation, pads, what: str = "kernel"):
    """Output sizes of a sliding window, and warnings where it does not tile the padded input."""
    out, remarks = [], []
    for axis, (n, k, s, d) in enumerate(zip(sizes, kernel, strides, dilation)):
        if pads == "SAME":
            out.append(-(-n // s))
            continue
        lo, hi = pads[axis]
        keff = d * (k - 1) + 1
        if lo >= keff or hi >= keff:
            raise ShapeError(
                f"({layer.type}) padding {max(lo, hi)} is not smaller than the {what} "
                f"({keff}): the window would see only padding; use padding < {keff}"
            )
        if n + lo + hi < keff:
            raise ShapeError(
                f"({layer.type}) the {what} ({keff}) is larger than the padded input "
                f"({n} + {lo + hi} = {n + lo + hi}): use a smaller {what}_size, padding or `same`"
            )
        out.append((n + lo + hi - keff) // s + 1)
        if (n + lo + hi - keff) % s:
            remarks.append((axis, n, k, keff, s, lo, hi))
    return tuple(out), _tile_warnings(layer, remarks, len(sizes), what)


def _tile_warnings(layer, remarks, rank, what) -> list[str]:
    msgs = []
    for axis, n, k, keff, s, lo, hi in remarks:
        dropped = (n + lo + hi - keff) % s
        pad = f"{lo}" if lo == hi else f"[{lo}, {hi}]"
        padsum = f"{2 * lo}" if lo == hi else f"{lo} + {hi}"
        kt = f"{k}" if k == keff else f"{k} (dilated to {keff})"
        exact = (n + lo + hi - keff) / s + 1
        fix = next((p for p in range(1, keff) if (n + 2 * p - keff) % s == 0), None)
        fix_text = f"padding {fix} or `same`" if fix is not None else "`same` padding"
        if rank == 1:
            lost = "the last step is" if dropped == 1 else f"the last {dropped} steps are"
        elif rank == 2:
            unit = "row" if axis == 0 else "column"
            lost = f"the last {unit} is" if dropped == 1 else f"the last {dropped} {unit}s are"
        else:
            lost = f"{dropped} position(s) on axis {axis} are"
        msgs.append(
            f"{layer.name}: input {n}, {what} {kt}, stride {s}, padding {pad}: "
            f"({n} + {padsum} − {keff})/{s} + 1 = {exact:g}, {lost} dropped; {fix_text} tiles it"
        )
    if rank == 2 and len(msgs) == 2 and remarks[0][1:] == remarks[1][1:]:
        return [msgs[0].replace("the last row is", "the last row/column is").replace("rows are", "rows/columns are")]
    return msgs


def checked_init(opts, shape: Shape, what: str):
    init = initializers.build(opts)
    got = getattr(init, "values_shape", None)
    if got is not None and math.prod(got) != math.prod(shape):
        raise ShapeError(f"{what} values have shape {list(got)} but the parameter is {list(shape)}")
    return init


def conv_geometry(layer: Any, shape: tuple, param_shapes: Callable[[tuple], tuple[tuple, tuple]]) -> tuple:
    """(output shape, warnings, kernel size, strides, dilation, padding) of a convolution layer on `shape`;
    `param_shapes(kernel_size)` gives its (kernel, bias) shapes, whose initializers are checked against them."""
    sizes = spatial_in(layer, shape, layer.rank)
    k = per_axis(layer, "kernel_size", layer.kernel_size, layer.rank)
    s = per_axis(layer, "strides", layer.strides, layer.rank)
    d = per_axis(layer, "dilation", layer.dilation, layer.rank)
    pads = pads_of(layer, layer.padding, layer.rank)
    out, warns = window_out(layer, sizes, k, s, d, pads)
    kshape, bshape = param_shapes(k)
    checked_init(layer.kernel_init, kshape, "kernel_init")
    checked_init(layer.bias_init, bshape, "bias_init")
    return (*out, bshape[0]), warns, k, s, d, pads


PADDING_DOC = (
    "`valid` (none), `same` (output = ceil(input / stride)), an integer P on every side, or one per axis "
    "([low, high] allowed)"
)


def same_pairs(sizes, kernel, strides, dilation) -> tuple[tuple[int, int], ...]:
    """The (low, high) padding XLA's SAME uses: output ceil(n / s), the odd extra row at the end."""
    out = []
    for n, k, st, d in zip(sizes, kernel, strides, dilation):
        total = max((-(-n // st) - 1) * st + d * (k - 1) + 1 - n, 0)
        out.append((total // 2, total - total // 2))
    return tuple(out)


class _Conv(WindowMixin, KernelMixin, LayerSpec):
    filters: int = Field(..., gt=0, description="number of output channels (filters)")
    kernel_size: IntOrList = Field(..., description="window size: an integer or one per spatial axis")
    strides: IntOrList = Field(1, description="step between windows: an integer or one per spatial axis")
    padding: Padding = Field("valid", description=PADDING_DOC)
    padding_mode: Literal["zeros", "reflect", "replicate"] = Field(
        "zeros", description="what `padding` adds: zeros, the reflection of the border (no repeat) or its copies"
    )
    dilation: IntOrList = Field(1, description="spacing between kernel taps (atrous convolution)")
    groups: int = Field(
        1, gt=0, description="channel groups convolved separately (AlexNet); in and out channels divisible by it"
    )

    rank: ClassVar[int] = 0  # number of spatial axes
    slow_in_scan: ClassVar[bool] = True

    def _geometry(self, shape):
        if shape and (shape[-1] % self.groups or self.filters % self.groups):
            raise ShapeError(
                f"({self.type}) groups {self.groups} must divide the input channels ({shape[-1]}) "
                f"and filters ({self.filters})"
            )
        geo = conv_geometry(self, shape, lambda k: ((*k, shape[-1] // self.groups, self.filters), (self.filters,)))
        if self.padding_mode != "zeros":
            _, _, k, s, d, pads = geo
            pairs = same_pairs(shape[:-1], k, s, d) if pads == "SAME" else pads
            check_pad_mode(self, shape[:-1], pairs, self.padding_mode)
            geo = (*geo[:5], pairs)
        return geo

    def apply(self, xs, train):
        x = xs[0]
        _, _, k, s, d, pads = self._geometry(tuple(x.shape[1:]))
        if self.padding_mode != "zeros":
            x, pads = pad_spatial(x, pads, self.padding_mode), tuple((0, 0) for _ in k)
        return nn.Conv(
            self.filters,
            k,
            strides=s,
            padding=pads if pads == "SAME" else list(pads),
            kernel_dilation=d,
            feature_group_count=self.groups,
            use_bias=self.use_bias,
            kernel_init=checked_init(self.kernel_init, (*k, x.shape[-1] // self.groups, self.filters), "kernel_init"),
            bias_init=checked_init(self.bias_init, (self.filters,), "bias_init"),
            name=self.name,
        )(x)


@register_layer
class Conv1D(_Conv):
    """1-D convolution over (steps, channels): kernel [kernel_size, in_channels, filters] + one bias per filter."""

    type: Literal["conv1d"] = "conv1d"
    rank: ClassVar[int] = 1


@register_layer
class Conv2D(_Conv):
    """2-D convolution over (height, width, channels): kernel [kh, kw, in_channels, filters] + one bias per filter."""

    type: Literal["conv2d"] = "conv2d"
    rank: ClassVar[int] = 2


@register_layer
class Conv3D(_Conv):
    """3-D convolution over (depth, height, width, channels) (video: frames x rows x columns):
    kernel [kd, kh, kw, in_channels, filters] + one bias per filter."""

    type: Literal["conv3d"] = "conv3d"
    rank: ClassVar[int] = 3


@register_layer
class Conv2DTranspose(KernelMixin, LayerSpec):
    """Transposed 2-D convolution (upsampling, for decoders and generators).

    Per spatial axis: `valid` -> (n - 1) S + k; `same` -> n S; an integer P -> (n - 1) S + k - 2P
    (PyTorch's ConvTranspose2d padding). Kernel [kh, kw, in_channels, filters] + one bias per filter.
    """

    type: Literal["conv2d_transpose", "conv2dtranspose", "deconv2d"] = "conv2d_transpose"
    filters: int = Field(..., gt=0, description="number of output channels")
    kernel_size: IntOrList = Field(..., description="window size: an integer or [kh, kw]")
    strides: IntOrList = Field(1, description="upsampling factor: an integer or [sh, sw]")
    padding: Annotated[
        Union[Literal["same", "valid"], NonNegativeInt, list[NonNegativeInt]], BeforeValidator(_padding_word)
    ] = Field("valid", description="`valid`, `same` (output = input x stride) or an integer P (crops P from each side)")

    slow_in_scan: ClassVar[bool] = True

    def _geometry(self, shape):
        sizes = spatial_in(self, shape, 2)
        k = per_axis(self, "kernel_size", self.kernel_size, 2)
        s = per_axis(self, "strides", self.strides, 2)
        pads: str | list[tuple[int, int]]
        if self.padding == "same":
            out, pads = tuple(n * st for n, st in zip(sizes, s)), "SAME"
        else:
            p = (0, 0) if self.padding == "valid" else per_axis(self, "padding", self.padding, 2)
            for pi, ki in zip(p, k):
                if pi > ki - 1:
                    raise ShapeError(f"(conv2d_transpose) padding {pi} must be at most kernel_size - 1 = {ki - 1}")
            out = tuple((n - 1) * st + ki - 2 * pi for n, st, ki, pi in zip(sizes, s, k, p))
            pads = [(ki - 1 - pi, ki - 1 - pi) for ki, pi in zip(k, p)]
        checked_init(self.kernel_init, (*k, shape[-1], self.filters), "kernel_init")
        checked_init(self.bias_init, (self.filters,), "bias_init")
        return (*out, self.filters), k, s, pads

    def out_shape(self, shapes):
        return self._geometry(shapes[0])[0]

    def apply(self, xs, train):
        x = xs[0]
        _, k, s, pads = self._geometry(tuple(x.shape[1:]))
        return nn.ConvTranspose(
            self.filters,
            k,
            strides=s,
            padding=pads,
            use_bias=self.use_bias,
            kernel_init=checked_init(self.kernel_init, (*k, x.shape[-1], self.filters), "kernel_init"),
            bias_init=checked_init(self.bias_init, (self.filters,), "bias_init"),
            name=self.name,
        )(x)


@register_layer
class Upsample(LayerSpec):
    """Repeats (nearest) or interpolates (bilinear/linear) each spatial axis by `size`; no parameters.
    Works on (steps, channels) and (height, width, channels)."""

    type: Literal["upsample", "upsampling", "upsample2d", "upsampling2d"] = "upsample"
    size: IntOrList = Field(2, description="factor per spatial axis: an integer or one per axis")
    method: Literal["nearest", "bilinear", "linear"] = Field("nearest", description="nearest | bilinear")

    def out_shape(self, shapes):
        shape = shapes[0]
        if len(shape) < 2:
            raise ShapeError(
                f"(upsample) expects (steps, channels) or (height, width, channels), got {shape}: "
                f"add a reshape layer before it"
            )
        f = per_axis(self, "size", self.size, len(shape) - 1)
        return (*(n * fi for n, fi in zip(shape[:-1], f)), shape[-1])

    def apply(self, xs, train):
        x = xs[0]
        f = per_axis(self, "size", self.size, x.ndim - 2)
        if self.method == "nearest":
            for axis, fi in enumerate(f):
                x = jnp.repeat(x, fi, axis=axis + 1)
            return x
        out = (x.shape[0], *(n * fi for n, fi in zip(x.shape[1:-1], f)), x.shape[-1])
        return jax.image.resize(x, out, method="linear")
