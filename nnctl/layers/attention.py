"""Self-attention over a sequence: `multi_head_attention` (the core of a transformer encoder)."""

from __future__ import annotations

from typing import ClassVar, Literal, Optional

import flax.linen as nn
from pydantic import Field

from nnctl import initializers
from nnctl.initializers import InitRef
from nnctl.layers.base import LayerSpec, ShapeError, register_layer


@register_layer
class MultiHeadAttention(LayerSpec):
    """Scaled dot-product self-attention with `num_heads` heads of size `key_dim` over (steps, features).

    Query, key and value projections [features, heads, key_dim] (+ bias [heads, key_dim]) and an output
    projection [heads, key_dim, out] (+ bias [out]), out = `output_dim` or the input's features, so
    parameters = 3 (F h k + h k) + h k out + out. `causal: true` lets step t attend to steps <= t only.
    Positions are not seen: add a `positional_embedding` layer before it.
    """

    type: Literal["multi_head_attention", "attention", "self_attention"] = "multi_head_attention"
    num_heads: int = Field(..., gt=0, description="number of attention heads")
    key_dim: int = Field(..., gt=0, description="size of each head's queries and keys (and values)")
    output_dim: Optional[int] = Field(None, gt=0, description="output features (default: the input's features)")
    causal: bool = Field(False, description="mask future steps (decoder-style attention)")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on the attention weights (training only)")
    kernel_init: InitRef = Field("glorot_uniform", description="initializer of the projection kernels")
    bias_init: InitRef = Field("zeros", description="initializer of the projection biases")
    use_bias: bool = True
    has_params: ClassVar[bool] = True
    runtime: ClassVar[tuple[str, ...]] = ("dropout",)  # an input of the compiled programs (nnctl.app.hyper)

    def out_shape(self, shapes):
        shape = shapes[0]
        if len(shape) != 2:
            raise ShapeError(
                f"(multi_head_attention) expects a sequence (steps, features), got {tuple(shape)}: "
                f"add an embedding or a reshape to (steps, features) before it"
            )
        return (shape[0], self.output_dim or shape[1])

    def apply(self, xs, train):
        x = xs[0]
        mask = nn.make_causal_mask(x[..., 0]) if self.causal else None
        return nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads,
            qkv_features=self.num_heads * self.key_dim,
            out_features=self.output_dim or x.shape[-1],
            dropout_rate=self.dropout,  # a float, or a runtime `Rate`: Flax's dropout arithmetic (1 - rate, a
            # Bernoulli draw at that probability, 0 or 1 divided by it) gives the compiled-in bits either way
            deterministic=not train,
            kernel_init=initializers.build(self.kernel_init),
            bias_init=initializers.build(self.bias_init),
            use_bias=self.use_bias,
            name=self.name,
        )(x, x, mask=mask)
