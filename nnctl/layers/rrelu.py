"""`rrelu`: the randomized leaky ReLU, a layer because it draws a slope per value during training."""

from __future__ import annotations

from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
from pydantic import Field, model_validator

from nnctl.layers.base import LayerSpec, register_layer


class _RReLU(nn.Module):
    lower: float
    upper: float

    @nn.compact
    def __call__(self, x, train):
        if train:
            a = jax.random.uniform(self.make_rng("dropout"), x.shape, x.dtype, self.lower, self.upper)
        else:
            a = jnp.asarray((self.lower + self.upper) / 2, x.dtype)
        return jnp.where(x >= 0, x, a * x)


@register_layer
class RReLU(LayerSpec):
    """x if x >= 0 else a x, a ~ U(lower, upper) drawn per value at every training step, (lower + upper) / 2
    when evaluating and predicting (PyTorch's RReLU); no parameters."""

    type: Literal["rrelu"] = "rrelu"
    lower: float = Field(1 / 8, ge=0)
    upper: float = Field(1 / 3, ge=0)

    @model_validator(mode="after")
    def _order(self):
        if self.upper < self.lower:
            raise ValueError(f"rrelu needs lower <= upper, got {self.lower} > {self.upper}")
        return self

    def out_shape(self, shapes):
        return shapes[0]

    def apply(self, xs, train):
        return _RReLU(self.lower, self.upper, name=self.name)(xs[0], train)
