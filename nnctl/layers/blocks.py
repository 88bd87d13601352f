"""Blocks made of other layers: `residual` (output = activation(block(x) + shortcut(x)))."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import flax.linen as nn
from pydantic import Field

from nnctl.layers.base import LayerSpec, ShapeError, register_layer
from nnctl.layers.graph import _NestedProblems, run_graph, thread_shapes

if TYPE_CHECKING:
    # At runtime `AnyLayer` is bound when nnctl.layers rebuilds this model (it needs every layer registered).
    from nnctl.layers import AnyLayer


class _ResidualModule(nn.Module):
    layers: tuple
    projection: tuple | None  # (features, strides) of a 1x1 projection, or None for identity

    @nn.compact
    def __call__(self, x, train):
        y = run_graph(self.layers, x, train)
        if self.projection is not None:
            features, strides = self.projection
            if x.ndim == 2:
                x = nn.Dense(features, name="projection")(x)
            else:
                k = (1,) * (x.ndim - 2)
                x = nn.Conv(features, k, strides=strides, padding="VALID", name="projection")(x)
        return y + x


@register_layer
class Residual(LayerSpec):
    """output = block(input) + input. When the block changes the shape, `projection: auto` adds a learned
    linear projection of the input (dense for vectors, 1x1 convolution with the matching stride for images)."""

    type: Literal["residual"] = "residual"
    layers: list[AnyLayer] = Field(..., min_length=1)  # bound in nnctl.layers (see the import above)
    projection: Literal["auto", "none"] = "auto"

    def children(self):
        return list(self.layers)

    def _inner(self, shape):
        _, out, problems, _ = thread_shapes(self.layers, shape, path=("layers",))
        if problems:
            raise _NestedProblems(problems)
        return out

    def _projection(self, shape, out):
        if tuple(shape) == tuple(out):
            return None
        if self.projection == "none":
            raise ShapeError(
                f"(residual) block output {out} differs from its input {shape}; "
                f"set projection: auto or make the shapes equal"
            )
        if len(shape) != len(out):
            raise ShapeError(f"(residual) block output {out} and input {shape} have different ranks")
        if len(shape) == 1:
            return (out[0], None)
        strides = []
        for a, b in zip(shape[:-1], out[:-1]):
            if b == 0 or a % b:
                raise ShapeError(f"(residual) cannot project input {shape} onto block output {out}")
            strides.append(a // b)
        return (out[-1], tuple(strides))

    def out_shape(self, shapes):
        out = self._inner(shapes[0])
        self._projection(shapes[0], out)
        return out

    def apply(self, xs, train):
        out = self._inner(tuple(xs[0].shape[1:]))
        proj = self._projection(tuple(xs[0].shape[1:]), out)
        return _ResidualModule(tuple(self.layers), proj, name=self.name)(xs[0], train)
