"""Dense, dropout, flatten, reshape, activation: the layers of a plain MLP."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
from pydantic import Field

from nnctl import initializers
from nnctl.layers.base import KernelMixin, LayerSpec, Shape, ShapeError, register_layer, vector_in


def kernel_init(layer: KernelMixin, shape: Shape):
    """The layer's kernel initializer; explicit `values` must match the kernel's shape."""
    init = initializers.build(layer.kernel_init)
    got = getattr(init, "values_shape", None)
    if got is not None and math.prod(got) != math.prod(shape):
        raise ShapeError(
            f"kernel_init values have shape {list(got)} but the kernel is {list(shape)} "
            f"(dense kernels are [inputs, units])"
        )
    return init


def bias_init(layer: KernelMixin, shape: Shape):
    init = initializers.build(layer.bias_init)
    got = getattr(init, "values_shape", None)
    if got is not None and math.prod(got) != math.prod(shape):
        raise ShapeError(f"bias_init values have shape {list(got)} but the bias is {list(shape)}")
    return init


@register_layer
class Dense(KernelMixin, LayerSpec):
    """Fully connected: y = x W + b, W of shape [inputs, units]. On a sequence (steps, features) it is applied
    to every step with the same weights (Keras' behaviour); images must be flattened first."""

    type: Literal["dense", "linear"] = "dense"
    units: int = Field(..., gt=0, description="number of neurons")
    keeps_mask: ClassVar[bool] = True  # per step: a sequence's mask of padded steps holds for the output

    def out_shape(self, shapes):
        shape = shapes[0]
        if len(shape) == 2:  # a sequence: per step
            n = shape[-1]
        else:
            n = vector_in(self, shape, "a vector (or a sequence of vectors)")
        kernel_init(self, (n, self.units))
        bias_init(self, (self.units,))
        return (*shape[:-1], self.units)

    def apply(self, xs, train):
        x = xs[0]
        n = x.shape[-1]
        return nn.Dense(
            self.units,
            use_bias=self.use_bias,
            kernel_init=kernel_init(self, (n, self.units)),
            bias_init=bias_init(self, (self.units,)),
            name=self.name,
        )(x)


class _Dropout(nn.Module):
    """Flax's `nn.Dropout` (its arithmetic, bit for bit) with the rate a float or a runtime input
    (`nnctl.rate.Rate`: the rate with its complement, the keep probability, computed on the host)."""

    rate: Any

    @nn.compact
    def __call__(self, x, train):
        if not train or (isinstance(self.rate, (int, float)) and self.rate == 0):
            return x
        keep = 1.0 - self.rate
        mask = jax.random.bernoulli(self.make_rng("dropout"), p=keep, shape=x.shape)
        if isinstance(keep, float):
            scaled = x / keep
        elif x.dtype == jnp.float32:  # XLA turns a float32 division by a constant into a product with its reciprocal
            scaled = x * (1 / keep)
        else:  # (not a bfloat16 one)
            scaled = x / keep.astype(x.dtype)
        return jax.lax.select(mask, scaled, jnp.zeros_like(x))


@register_layer
class Dropout(LayerSpec):
    """Zeroes each input with probability `rate` during training (scaled by 1/(1-rate)); identity otherwise."""

    type: Literal["dropout"] = "dropout"
    rate: float = Field(..., ge=0.0, lt=1.0)
    keeps_mask: ClassVar[bool] = True  # per step: a sequence's mask of padded steps holds for the output
    runtime: ClassVar[tuple[str, ...]] = ("rate",)  # an input of the compiled programs (nnctl.app.hyper)

    def out_shape(self, shapes):
        return shapes[0]

    def apply(self, xs, train):
        return _Dropout(self.rate, name=self.name)(xs[0], train)


@register_layer
class Flatten(LayerSpec):
    """Reshapes each example to a vector."""

    type: Literal["flatten"] = "flatten"

    def out_shape(self, shapes):
        return (math.prod(shapes[0]),)

    def apply(self, xs, train):
        return xs[0].reshape(xs[0].shape[0], -1)


@register_layer
class Reshape(LayerSpec):
    """Reshapes each example; one entry may be -1."""

    type: Literal["reshape"] = "reshape"
    shape: list[int] = Field(..., min_length=1)

    def out_shape(self, shapes):
        n = math.prod(shapes[0])
        known = math.prod(d for d in self.shape if d != -1)
        if self.shape.count(-1) > 1 or any(d == 0 or d < -1 for d in self.shape):
            raise ShapeError(f"(reshape) shape {self.shape} must be positive sizes with at most one -1")
        if -1 in self.shape:
            if n % known:
                raise ShapeError(f"(reshape) cannot reshape {shapes[0]} ({n} values) to {self.shape}")
            return tuple(n // known if d == -1 else d for d in self.shape)
        if known != n:
            raise ShapeError(f"(reshape) cannot reshape {shapes[0]} ({n} values) to {self.shape} ({known} values)")
        return tuple(self.shape)

    def apply(self, xs, train):
        return xs[0].reshape((xs[0].shape[0], *self.shape))


@register_layer
class Activation(LayerSpec):
    """Applies `activation` alone (e.g. `{type: activation, activation: softmax}`)."""

    type: Literal["activation"] = "activation"
    keeps_mask: ClassVar[bool] = True  # per step: a sequence's mask of padded steps holds for the output

    def out_shape(self, shapes):
        return shapes[0]

    def apply(self, xs, train):
        return xs[0]
