"""Depthwise convolution (channels-last): `depthwise_conv2d`, Keras' DepthwiseConv2D.

Each input channel is convolved with its own `depth_multiplier` filters, never mixing channels: the output
has in_channels x depth_multiplier channels, ordered channel by channel (outputs c*M .. c*M + M - 1 come
from input channel c). Spatial sizes, padding and the tiling warnings are those of `conv2d`.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import flax.linen as nn
from pydantic import Field

from nnctl.layers.base import KernelMixin, LayerSpec, WindowMixin, register_layer
from nnctl.layers.conv import PADDING_DOC, IntOrList, Padding, checked_init, conv_geometry


@register_layer
class DepthwiseConv2D(WindowMixin, KernelMixin, LayerSpec):
    """Depthwise 2-D convolution: each channel has its own `depth_multiplier` filters; channels never mix.

    On (height, width, channels); kernel [kh, kw, 1, channels * depth_multiplier] + one bias per output channel.
    """

    type: Literal["depthwise_conv2d", "depthwiseconv2d"] = "depthwise_conv2d"
    kernel_size: IntOrList = Field(..., description="window size: an integer or [kh, kw]")
    strides: IntOrList = Field(1, description="step between windows: an integer or [sh, sw]")
    padding: Padding = Field("valid", description=PADDING_DOC)
    depth_multiplier: int = Field(
        1, gt=0, description="filters per input channel: output channels = input channels x depth_multiplier"
    )
    dilation: IntOrList = Field(1, description="spacing between kernel taps (atrous convolution)")

    rank: ClassVar[int] = 2
    slow_in_scan: ClassVar[bool] = True

    def _shapes(self, channels: int, k: tuple[int, ...]):
        """(kernel shape, bias shape) for `channels` input channels."""
        out = channels * self.depth_multiplier
        return (*k, 1, out), (out,)

    def _geometry(self, shape):
        return conv_geometry(self, shape, lambda k: self._shapes(shape[-1], k))

    def apply(self, xs, train):
        x = xs[0]
        channels = x.shape[-1]
        _, _, k, s, d, pads = self._geometry(tuple(x.shape[1:]))
        kshape, bshape = self._shapes(channels, k)
        return nn.Conv(
            bshape[0],
            k,
            strides=s,
            padding=pads if pads == "SAME" else list(pads),
            kernel_dilation=d,
            feature_group_count=channels,
            use_bias=self.use_bias,
            kernel_init=checked_init(self.kernel_init, kshape, "kernel_init"),
            bias_init=checked_init(self.bias_init, bshape, "bias_init"),
            name=self.name,
        )(x)
