"""Weight initializers, by name: `kernel_init: he_normal` or `{type: normal, stddev: 0.01}`.

Each entry returns a Flax-style initializer `init(key, shape, dtype)`. `values` gives explicit arrays
(worked examples); its shape is checked against the layer's parameter while shapes are threaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import jax.numpy as jnp
import numpy as np
from jax.nn import initializers as ji

from nnctl.registry import FnRegistry, ref_type

INITIALIZERS = FnRegistry("initializer")
register = INITIALIZERS.register


@register("zeros")
def zeros():
    """All zeros."""
    return ji.zeros


@register("ones")
def ones():
    """All ones."""
    return ji.ones


@register("constant")
def constant(value: float = 0.0):
    """Every entry equal to `value`."""
    return ji.constant(value)


@register("values")
def values(values: list):
    """Explicit values (nested lists), e.g. the weights of a worked example. Dense kernels are [inputs, units]."""
    try:
        arr = jnp.asarray(np.asarray(values, dtype=np.float32))
    except (ValueError, TypeError):
        raise ValueError("values must be a rectangular nested list of numbers (every row the same length)") from None

    def init(key, shape, dtype=jnp.float32):
        return jnp.asarray(arr, dtype).reshape(shape)

    # checked against the parameter shape by the layer; mypy does not model attributes set on functions
    init.values_shape = tuple(arr.shape)  # type: ignore[attr-defined]
    return init


@register("normal")
def normal(mean: float = 0.0, stddev: float = 0.05):
    """N(mean, stddev^2)."""
    base = ji.normal(stddev)
    return lambda key, shape, dtype=jnp.float32: base(key, shape, dtype) + mean


@register("uniform")
def uniform(minval: float = -0.05, maxval: float = 0.05):
    """U(minval, maxval)."""
    return lambda key, shape, dtype=jnp.float32: ji.uniform(maxval - minval)(key, shape, dtype) + minval


@register("truncated_normal")
def truncated_normal(stddev: float = 0.05):
    """Normal truncated at two standard deviations."""
    return ji.truncated_normal(stddev)


@register("glorot_uniform", "xavier_uniform")
def glorot_uniform():
    """U(-l, l), l = sqrt(6 / (fan_in + fan_out))."""
    return ji.glorot_uniform()


@register("glorot_normal", "xavier_normal")
def glorot_normal():
    """Truncated normal, variance 2 / (fan_in + fan_out)."""
    return ji.glorot_normal()


@register("he_uniform", "kaiming_uniform")
def he_uniform():
    """U(-l, l), l = sqrt(6 / fan_in)."""
    return ji.he_uniform()


@register("he_normal", "kaiming_normal")
def he_normal():
    """Truncated normal, variance 2 / fan_in (for ReLU)."""
    return ji.he_normal()


@register("lecun_normal")
def lecun_normal():
    """Truncated normal, variance 1 / fan_in (for SELU)."""
    return ji.lecun_normal()


@register("lecun_uniform")
def lecun_uniform():
    """U(-l, l), l = sqrt(3 / fan_in)."""
    return ji.lecun_uniform()


@register("orthogonal")
def orthogonal(scale: float = 1.0):
    """A random orthogonal matrix times `scale`."""
    return ji.orthogonal(scale)


@register("identity", "eye")
def identity(gain: float = 1.0):
    """`gain` x identity: `gain` on a matrix's diagonal (IRNN); conv kernel: identity at the centre; vector: `gain`.

    A matrix [n, m] gets `gain` on its main diagonal (e.g. the recurrent kernel of a ReLU simple RNN, the
    IRNN); a convolution kernel [*window, in, out] the identity map at the window's centre (PyTorch's
    dirac_); a vector all `gain` (the diagonal of a diagonal scale)."""

    def init(key, shape, dtype=jnp.float32):
        if len(shape) < 2:
            return jnp.full(shape, gain, dtype)
        eye = gain * jnp.eye(shape[-2], shape[-1], dtype=dtype)
        centre = tuple(n // 2 for n in shape[:-2])
        return jnp.zeros(shape, dtype).at[centre].set(eye)

    return init


def build(opts):
    return INITIALIZERS.build(opts)


if TYPE_CHECKING:  # see ref_type
    InitRef: TypeAlias = Any
else:
    InitRef = ref_type(INITIALIZERS)  # the spec type of a `*_init:` key
