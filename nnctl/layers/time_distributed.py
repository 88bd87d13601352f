"""`time_distributed`: the same layers applied to every step of a sequence (a CNN per video frame, then a
recurrent layer over the frames: the notes' video example)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import flax.linen as nn
from pydantic import Field

from nnctl.layers.base import LayerSpec, ShapeError, register_layer
from nnctl.layers.graph import _NestedProblems, run_graph, thread_shapes

if TYPE_CHECKING:
    # At runtime `AnyLayer` is bound when nnctl.layers rebuilds this model (it needs every layer registered).
    from nnctl.layers import AnyLayer


class _PerStep(nn.Module):
    layers: tuple

    @nn.compact
    def __call__(self, x, train):
        b, t = x.shape[:2]
        y = run_graph(self.layers, x.reshape(b * t, *x.shape[2:]), train)  # one weight set, every step
        return y.reshape(b, t, *y.shape[1:])


@register_layer
class TimeDistributed(LayerSpec):
    """(steps, *frame) -> (steps, *block output): `layers` run on each step with the same weights."""

    type: Literal["time_distributed", "timedistributed"] = "time_distributed"
    layers: list[AnyLayer] = Field(..., min_length=1)  # bound in nnctl.layers (see the import above)

    slow_in_scan: ClassVar[bool] = False
    keeps_mask: ClassVar[bool] = True  # per step: a sequence's mask of padded steps holds for the output

    def children(self):
        return list(self.layers)

    def out_shape(self, shapes):
        shape = shapes[0]
        if len(shape) < 2:
            raise ShapeError(f"(time_distributed) expects (steps, ...frame), got {shape}: add a reshape layer")
        _, out, problems, _ = thread_shapes(self.layers, shape[1:], path=("layers",))
        if problems:
            raise _NestedProblems(problems)
        assert out is not None
        return (shape[0], *out)

    def apply(self, xs, train):
        return _PerStep(tuple(self.layers), name=self.name)(xs[0], train)
