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
    """Binary step (perceptron): 1 if x >= threshold else 0, so step(0) = 1 as the notes define it. Its
    gradient is zero almost everywhere: train a step unit with `loss: perceptron` (the perceptron rule)."""
    return (x >= threshold).astype(x.dtype)


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
def softplus(x, /, beta: float = 1.0):
    """(1/beta) log(1 + e^(beta x)); beta = 1 is log(1 + e^x)."""
    return jax.nn.softplus(beta * x) / beta


@register("softsign")
def softsign(x, /):
    """x / (1 + |x|)."""
    return jax.nn.soft_sign(x)


@register("mish")
def mish(x, /, beta: float = 1.0):
    """x tanh(softplus(x)), softplus with `beta` as in `softplus`."""
    return x * jnp.tanh(jax.nn.softplus(beta * x) / beta)


@register("hard_sigmoid")
def hard_sigmoid(x, /):
    """0 if x <= -3, 1 if x >= 3, else x/6 + 1/2 (the notes', PyTorch's and Keras 3's form)."""
    return jnp.clip(x / 6 + 0.5, 0.0, 1.0)


@register("hard_tanh")
def hard_tanh(x, /, min_val: float = -1.0, max_val: float = 1.0):
    """x clipped to [min_val, max_val]."""
    return jnp.clip(x, min_val, max_val)


@register("hard_swish", "hard_silu")
def hard_swish(x, /):
    """x * hard_sigmoid(x): 0 if x <= -3, x if x >= 3, else x (x + 3) / 6."""
    return x * jnp.clip(x / 6 + 0.5, 0.0, 1.0)


@register("log_sigmoid")
def log_sigmoid(x, /):
    """log(1 / (1 + e^-x)) = -softplus(-x), computed stably."""
    return jax.nn.log_sigmoid(x)


@register("tanhshrink")
def tanhshrink(x, /):
    """x - tanh(x)."""
    return x - jnp.tanh(x)


@register("softshrink")
def softshrink(x, /, lambd: float = 0.5):
    """x - lambd if x > lambd, x + lambd if x < -lambd, else 0."""
    return jnp.where(x > lambd, x - lambd, jnp.where(x < -lambd, x + lambd, jnp.zeros_like(x)))


@register("hardshrink")
def hardshrink(x, /, lambd: float = 0.5):
    """x if |x| > lambd else 0."""
    return jnp.where(jnp.abs(x) > lambd, x, jnp.zeros_like(x))


@register("sinc")
def sinc(x, /):
    """sin(x) / x, and 1 at x = 0 (the unnormalised sinc of the notes' activation table)."""
    return jnp.sinc(x / jnp.pi)


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
