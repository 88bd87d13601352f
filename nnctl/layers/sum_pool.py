"""Sum pooling: `sum_pool1d`, `sum_pool2d` (the notes' third pooling kind: the sum of each window)."""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal, Optional, Union

import flax.linen as nn
from pydantic import BeforeValidator, Field, NonNegativeInt

from nnctl.layers.base import LayerSpec, WindowMixin, register_layer
from nnctl.layers.conv import IntOrList, _padding_word
from nnctl.layers.pool import pool_geometry


class _SumPool(WindowMixin, LayerSpec):
    pool_size: IntOrList = Field(2, description="window size: an integer or one per spatial axis")
    strides: Optional[IntOrList] = Field(None, description="step between windows (default: pool_size)")
    padding: Annotated[
        Union[Literal["same", "valid"], NonNegativeInt, list[NonNegativeInt]], BeforeValidator(_padding_word)
    ] = Field("valid", description="`valid`, `same` or an integer P on every side (zeros: they add nothing)")

    rank: ClassVar[int] = 0
    slow_in_scan: ClassVar[bool] = True

    def _geometry(self, shape):
        return pool_geometry(self, shape)

    def apply(self, xs, train):
        x = xs[0]
        _, _, k, s, pads = self._geometry(tuple(x.shape[1:]))
        # the sum of each window: avg_pool counting the zero padding, times the window size
        return nn.avg_pool(x, k, strides=s, padding=pads if pads == "SAME" else list(pads)) * math.prod(k)


@register_layer
class SumPool1D(_SumPool):
    """Sum over windows of `pool_size` steps, per channel."""

    type: Literal["sum_pool1d", "sumpool1d"] = "sum_pool1d"
    rank: ClassVar[int] = 1


@register_layer
class SumPool2D(_SumPool):
    """Sum over `pool_size` windows of rows x columns, per channel."""

    type: Literal["sum_pool2d", "sumpool2d"] = "sum_pool2d"
    rank: ClassVar[int] = 2
