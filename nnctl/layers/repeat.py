"""`repeat_vector`: a vector repeated `n` times as a sequence (the encoder's code fed to every decoder step of a
sequence-to-sequence autoencoder)."""

from __future__ import annotations

from typing import Literal

import jax.numpy as jnp
from pydantic import Field

from nnctl.layers.base import LayerSpec, register_layer, vector_in


@register_layer
class RepeatVector(LayerSpec):
    """(features,) -> (n, features): the same vector at every step; no parameters."""

    type: Literal["repeat_vector", "repeatvector"] = "repeat_vector"
    n: int = Field(..., gt=0, description="number of steps")

    def out_shape(self, shapes):
        return (self.n, vector_in(self, shapes[0]))

    def apply(self, xs, train):
        return jnp.repeat(xs[0][:, None, :], self.n, axis=1)
