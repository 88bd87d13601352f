"""Batch and layer normalisation."""

from __future__ import annotations

from typing import ClassVar, Literal

import flax.linen as nn
from pydantic import Field

from nnctl.layers.base import LayerSpec, register_layer


@register_layer
class BatchNorm(LayerSpec):
    """Normalises each feature over the batch (training) or with running statistics (eval/predict).

    The running mean/variance live in the `batch_stats` collection: non-trainable, never in the gradient.
    """

    type: Literal["batch_norm", "batchnorm"] = "batch_norm"
    momentum: float = Field(0.99, gt=0, lt=1, description="running-average momentum")
    runtime: ClassVar[tuple[str, ...]] = ("momentum",)  # an input of the compiled programs (nnctl.app.hyper)
    epsilon: float = Field(1e-3, gt=0)
    center: bool = True
    scale: bool = True
    has_params: ClassVar[bool] = True

    def out_shape(self, shapes):
        return shapes[0]

    def apply(self, xs, train):
        return nn.BatchNorm(
            use_running_average=not train,
            momentum=self.momentum,
            epsilon=self.epsilon,
            use_bias=self.center,
            use_scale=self.scale,
            name=self.name,
        )(xs[0])


@register_layer
class LayerNorm(LayerSpec):
    """Normalises each example over its last axis."""

    type: Literal["layer_norm", "layernorm"] = "layer_norm"
    epsilon: float = Field(1e-6, gt=0)
    center: bool = True
    scale: bool = True
    has_params: ClassVar[bool] = True
    keeps_mask: ClassVar[bool] = True  # per step: a sequence's mask of padded steps holds for the output

    def out_shape(self, shapes):
        return shapes[0]

    def apply(self, xs, train):
        return nn.LayerNorm(epsilon=self.epsilon, use_bias=self.center, use_scale=self.scale, name=self.name)(xs[0])
