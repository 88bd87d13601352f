"""`masking`: marks padded steps of variable-length sequences (Keras' `Masking`).

A step whose values all equal `mask_value` is padding. The layer zeroes those steps and starts a mask that
the following layers carry while they keep the steps one for one (dense, dropout, activation, layer_norm,
time_distributed, recurrent layers with `return_sequences`). A recurrent layer reading a mask skips padded
steps: its state is carried over them unchanged and its output there is zero, so a padded batch gives each
sequence exactly the final state of the sequence alone. When the mask reaches the model's output the loss
and the metrics ignore padded steps (see docs/learning.md, "Variable-length sequences")."""

from __future__ import annotations

from typing import ClassVar, Literal

import jax.numpy as jnp
from pydantic import Field

from nnctl.layers.base import LayerSpec, ShapeError, register_layer


@register_layer
class Masking(LayerSpec):
    """(steps, ...) -> same shape: steps whose values all equal `mask_value` are padding (masked, zeroed)."""

    type: Literal["masking"] = "masking"
    mask_value: float = Field(0.0, description="the padding value: a step whose every value equals it is masked")
    keeps_mask: ClassVar[bool] = True

    def out_shape(self, shapes):
        if len(shapes[0]) < 1:
            raise ShapeError(f"(masking) expects a sequence (steps, ...), got {shapes[0]}")
        return shapes[0]

    def makes_mask(self) -> bool:
        return True

    def mask_of(self, x):
        real = (x != self.mask_value).reshape(x.shape[0], x.shape[1], -1)
        return jnp.any(real, axis=-1)

    def apply(self, xs, train):
        x = xs[0]
        m = self.mask_of(x).astype(x.dtype)
        return x * m.reshape(*m.shape, *([1] * (x.ndim - 2)))
