"""`lrn`: local response normalization across channels (AlexNet, section 3.3 of its paper)."""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
from pydantic import Field

from nnctl.layers.base import LayerSpec, ShapeError, register_layer


@register_layer
class LRN(LayerSpec):
    """b_c = a_c / (k + alpha sum_{c' in the `size` channels around c} a_c'^2)^beta (AlexNet's form: alpha is not
    divided by `size`, unlike PyTorch's LocalResponseNorm); no parameters."""

    type: Literal["lrn", "local_response_norm", "local_response_normalization"] = "lrn"
    size: int = Field(5, gt=0, description="number of neighbouring channels summed (n), centred on the channel")
    alpha: float = Field(1e-4, ge=0)
    beta: float = Field(0.75, ge=0)
    k: float = Field(2.0, gt=0, description="additive constant (the paper's k)")

    def out_shape(self, shapes):
        if len(shapes[0]) < 1:
            raise ShapeError("(lrn) expects channels on the last axis")
        return shapes[0]

    def apply(self, xs, train):
        x = xs[0]
        sq = x * x
        lo = (self.size - 1) // 2
        window = (1,) * (x.ndim - 1) + (self.size,)
        pads = [(0, 0)] * (x.ndim - 1) + [(lo, self.size - 1 - lo)]
        s = jax.lax.reduce_window(sq, 0.0, jax.lax.add, window, (1,) * x.ndim, pads)
        return x / jnp.power(self.k + self.alpha * s, self.beta)
