"""Merge layers (`add`, `concat`) and the learnable `prelu` activation.

Merge layers read two or more layers named in `inputs: [a, b, ...]`; that is how a spec expresses skip
connections and parallel branches (e.g. an Inception block: 1x1, 3x3 and 5x5 convolutions with `same`
padding side by side, then `concat`).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import flax.linen as nn
import jax.numpy as jnp
from pydantic import Field

from nnctl.layers.base import LayerSpec, ShapeError, register_layer


@register_layer
class Add(LayerSpec):
    """Elementwise sum of inputs of equal shape."""

    type: Literal["add"] = "add"
    n_inputs: ClassVar[int | None] = None

    def out_shape(self, shapes):
        assert self.inputs is not None  # filled in by resolve_names before validation
        first = tuple(shapes[0])
        for name, s in zip(self.inputs[1:], shapes[1:]):
            if tuple(s) != first:
                raise ShapeError(
                    f"(add) inputs must have the same shape: {self.inputs[0]} is {first} but {name} "
                    f"is {tuple(s)}; use concat, or a projection (1x1 conv / dense) to match"
                )
        return first

    def apply(self, xs, train):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


@register_layer
class Concat(LayerSpec):
    """Joins inputs along `axis` (default: the last, i.e. features/channels); other sizes must match."""

    type: Literal["concat", "concatenate"] = "concat"
    axis: int = Field(-1, description="axis to join along, without the batch axis (-1: last)")
    n_inputs: ClassVar[int | None] = None

    def out_shape(self, shapes):
        assert self.inputs is not None  # filled in by resolve_names before validation
        rank = len(shapes[0])
        if not -rank <= self.axis < rank:
            raise ShapeError(f"(concat) axis {self.axis} is out of range for inputs of rank {rank}")
        ax = self.axis % rank
        for name, s in zip(self.inputs[1:], shapes[1:]):
            if len(s) != rank or any(a != b for i, (a, b) in enumerate(zip(s, shapes[0])) if i != ax):
                raise ShapeError(
                    f"(concat) {self.inputs[0]} is {tuple(shapes[0])} and {name} is {tuple(s)}: "
                    f"only axis {self.axis} may differ (use `same` padding on parallel conv branches)"
                )
        return tuple(sum(s[ax] for s in shapes) if i == ax else d for i, d in enumerate(shapes[0]))

    def apply(self, xs, train):
        ax = self.axis % (xs[0].ndim - 1) + 1
        return jnp.concatenate(xs, axis=ax)


@register_layer
class PReLU(LayerSpec):
    """Parametric ReLU: max(0, x) + alpha * min(0, x), with a learned slope `alpha` per channel (the last
    axis) or one shared slope (`shared: true`)."""

    type: Literal["prelu"] = "prelu"
    alpha_init: float = Field(0.25, description="initial slope for negative inputs")
    shared: bool = Field(False, description="one slope for the whole layer instead of one per channel")
    has_params: ClassVar[bool] = True

    def out_shape(self, shapes):
        return shapes[0]

    def apply(self, xs, train):
        return _PReLU(self.alpha_init, self.shared, name=self.name)(xs[0])


class _PReLU(nn.Module):
    alpha_init: float
    shared: bool

    @nn.compact
    def __call__(self, x):
        shape = (1,) if self.shared else (x.shape[-1],)
        alpha = self.param("alpha", nn.initializers.constant(self.alpha_init), shape)
        return jnp.where(x >= 0, x, alpha.reshape((1,) * (x.ndim - 1) + alpha.shape) * x)
