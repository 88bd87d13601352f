"""Activation functions, by name. `activation: relu` or `activation: {type: leaky_relu, negative_slope: 0.1}`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import jax
import jax.numpy as jnp

from nnctl.registry import FnRegistry, ref_type

ACTIVATIONS = FnRegistry("activation")
register = ACTIVATIONS.register


@register("linear", "identity")
def linear(x, /):
    """f(x) = x."""
    return x


@register("step", "binary_step")
def step(x, /, threshold: float = 0.0):
    """Binary step (perceptron): 1 if x > threshold else 0. Its gradient is zero almost everywhere."""
    return (x > threshold).astype(x.dtype)


@register("sigmoid", "logistic")
def sigmoid(x, /):
    """1 / (1 + e^-x)."""
    return jax.nn.sigmoid(x)


@register("tanh")
def tanh(x, /):
    """Hyperbolic tangent."""
    return jnp.tanh(x)


@register("relu")
def relu(x, /):
    """max(0, x)."""
    return jax.nn.relu(x)


@register("leaky_relu")
def leaky_relu(x, /, negative_slope: float = 0.01):
    """x if x > 0 else negative_slope * x."""
    return jax.nn.leaky_relu(x, negative_slope)


@register("elu")
def elu(x, /, alpha: float = 1.0):
    """x if x > 0 else alpha * (e^x - 1)."""
    return jax.nn.elu(x, alpha)


@register("selu")
def selu(x, /):
    """Scaled ELU (self-normalising)."""
    return jax.nn.selu(x)


@register("gelu")
def gelu(x, /, approximate: bool = False):
    """Gaussian error linear unit."""
    return jax.nn.gelu(x, approximate=approximate)


@register("swish", "silu")
def swish(x, /, beta: float = 1.0):
    """x * sigmoid(beta * x)."""
    return x * jax.nn.sigmoid(beta * x)


@register("softplus")
def softplus(x, /):
    """log(1 + e^x)."""
    return jax.nn.softplus(x)


@register("softmax")
def softmax(x, /):
    """e^x_i / sum_j e^x_j over the last axis."""
    return jax.nn.softmax(x, axis=-1)


def apply(opts, x):
    """Apply a validated activation option object (or None for linear)."""
    return x if opts is None else ACTIVATIONS.build(opts, x)


if TYPE_CHECKING:  # see ref_type
    ActivationRef: TypeAlias = Any
else:
    ActivationRef = ref_type(ACTIVATIONS)  # the spec type of an `activation:` key
