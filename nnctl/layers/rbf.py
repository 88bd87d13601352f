"""`rbf`: a radial-basis-function layer: one Gaussian unit per centre."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import flax.linen as nn
import jax.numpy as jnp
from pydantic import Field

from nnctl import initializers
from nnctl.initializers import InitRef
from nnctl.layers.base import LayerSpec, register_layer, vector_in


class _RBFModule(nn.Module):
    units: int
    center_init: Callable[..., Any]
    gamma: float

    @nn.compact
    def __call__(self, x):
        c = self.param("centers", self.center_init, (self.units, x.shape[-1]), jnp.float32)
        log_g = self.param("log_gamma", nn.initializers.constant(jnp.log(self.gamma)), (self.units,), jnp.float32)
        d2 = jnp.sum((x[:, None, :] - c[None]) ** 2, axis=-1)
        return jnp.exp(-jnp.exp(log_g)[None, :] * d2)


@register_layer
class RBF(LayerSpec):
    """phi_j(x) = exp(-gamma_j ||x - c_j||^2) for `units` learned centres c_j and widths gamma_j (kept positive
    as exp(log_gamma)): units * (features + 1) parameters."""

    type: Literal["rbf", "radial_basis"] = "rbf"
    units: int = Field(..., gt=0, description="number of centres")
    gamma: float = Field(1.0, gt=0, description="initial gamma of every unit (1 / (2 sigma^2))")
    center_init: InitRef = Field("uniform", description="initializer of the centres")

    has_params: ClassVar[bool] = True

    def out_shape(self, shapes):
        vector_in(self, shapes[0])
        return (self.units,)

    def apply(self, xs, train):
        init = initializers.build(self.center_init)
        return _RBFModule(self.units, init, self.gamma, name=self.name)(xs[0])
