"""Token and position embeddings: `embedding` (ids -> vectors) and `positional_embedding`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from pydantic import Field

from nnctl.initializers import InitRef
from nnctl.layers.base import LayerSpec, ShapeError, register_layer
from nnctl.layers.conv import checked_init


@register_layer
class Embedding(LayerSpec):
    """Looks up a learned vector per token id: (steps,) ids -> (steps, features); vocab_size x features
    parameters. Data are float32, so ids are rounded to int32 inside the layer; ids outside
    0..vocab_size-1 are clipped to the nearest valid id."""

    type: Literal["embedding"] = "embedding"
    vocab_size: int = Field(..., gt=0, description="number of distinct token ids (ids are 0..vocab_size-1)")
    features: int = Field(..., gt=0, description="size of each embedding vector")
    embeddings_init: InitRef = Field({"type": "normal", "stddev": 0.05}, description="initializer of the table")
    mask_zero: bool = Field(
        False,
        description="id 0 is padding: steps with id 0 are masked for the layers after it (Keras' mask_zero; "
        "see the masking layer)",
    )
    has_params: ClassVar[bool] = True

    def makes_mask(self) -> bool:
        return self.mask_zero

    def mask_of(self, x):
        return jnp.round(x).astype(jnp.int32) != 0

    def out_shape(self, shapes):
        checked_init(self.embeddings_init, (self.vocab_size, self.features), "embeddings_init")
        return (*shapes[0], self.features)

    def apply(self, xs, train):
        ids = jnp.clip(jnp.round(xs[0]).astype(jnp.int32), 0, self.vocab_size - 1)
        init = checked_init(self.embeddings_init, (self.vocab_size, self.features), "embeddings_init")
        return nn.Embed(self.vocab_size, self.features, embedding_init=init, name=self.name)(ids)


def sinusoid(steps: int, features: int) -> np.ndarray:
    """Vaswani et al.: sin on even features, cos on odd, wavelengths 2 pi .. 10000 * 2 pi."""
    pos = np.arange(steps)[:, None]
    i = np.arange(features)[None, :]
    angle = pos / np.power(10000.0, (2 * (i // 2)) / features)
    return np.where(i % 2 == 0, np.sin(angle), np.cos(angle)).astype(np.float32)


@register_layer
class PositionalEmbedding(LayerSpec):
    """Adds position information to a sequence (steps, features): `learned` (a steps x features table,
    trained) or `sinusoidal` (fixed sin/cos codes, no parameters). Shape unchanged."""

    type: Literal["positional_embedding", "position_embedding", "positional_encoding"] = "positional_embedding"
    kind: Literal["learned", "sinusoidal"] = Field("learned", description="learned | sinusoidal")
    embeddings_init: InitRef = Field({"type": "normal", "stddev": 0.05}, description="initializer of the learned table")
    has_params: ClassVar[bool] = True

    def out_shape(self, shapes):
        if len(shapes[0]) != 2:
            raise ShapeError(
                f"(positional_embedding) expects a sequence (steps, features), got {shapes[0]}: "
                f"put it after an embedding layer or a reshape to (steps, features)"
            )
        if self.kind == "learned":
            checked_init(self.embeddings_init, shapes[0], "embeddings_init")
        return shapes[0]

    def apply(self, xs, train):
        x = xs[0]
        if self.kind == "sinusoidal":
            return x + jnp.asarray(sinusoid(x.shape[1], x.shape[2]), x.dtype)[None]
        return _Learned(checked_init(self.embeddings_init, x.shape[1:], "embeddings_init"), name=self.name)(x)


class _Learned(nn.Module):
    init_fn: Callable[..., Any]  # a Flax initializer (key, shape, dtype) -> array

    @nn.compact
    def __call__(self, x):
        return x + self.param("embedding", self.init_fn, x.shape[1:])[None]
