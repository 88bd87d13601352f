"""Losses, by name. Each returns one value per example; the trainer averages them over the real
(unmasked) examples of a batch.

A loss receives the model's output *before* the last layer's activation (`logits`) and the head: when
the head is softmax/sigmoid, cross-entropies are computed from logits (stable); every other loss sees
the activated output, exactly as the notes define it. `mse` is the mean over outputs of the squared
error (Keras' definition): for two outputs it equals the notes' E_total = sum 1/2 (target - out)^2.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax

from nnctl.activations import ACTIVATIONS
from nnctl.activations import apply as apply_activation
from nnctl.registry import FnRegistry

LOSSES = FnRegistry("loss")
register = LOSSES.register

_EPS = 1e-7


@dataclass(frozen=True)
class Head:
    """The last layer's activation: its name and function."""

    name: str
    fn: Callable


def dense_target(out, y):
    """Targets shaped like the output: integer class labels become one-hot."""
    if jnp.issubdtype(y.dtype, jnp.integer) and y.ndim == out.ndim - 1:
        return jax.nn.one_hot(y, out.shape[-1], dtype=out.dtype)
    return y.astype(out.dtype).reshape(out.shape)


def _per_example(v):
    return v.reshape(v.shape[0], -1).mean(axis=1)


@register("mse", "mean_squared_error")
def mse(logits, y, head, /):
    """(1/K) sum_k (o_k - t_k)^2 per example, K outputs (Keras' mean squared error, no 1/2)."""
    out = head.fn(logits)
    return _per_example((out - dense_target(out, y)) ** 2)


@register("least_squares", "lsgan")
def least_squares(logits, y, head, /):
    """(1/K) sum_k (o_k - t_k)^2 per example (as mse); in a gan, the least-squares (LSGAN) objective on the
    discriminator's raw output."""
    return mse(logits, y, head)


@register("half_sum_squared_error", "half_sse", "sum_squared_error_half")
def half_sum_squared_error(logits, y, head, /):
    """sum_k 1/2 (t_k - o_k)^2 per example: the notes' E_total for any number of outputs K (its gradient is
    o - t); equals mse only when K = 2."""
    out = head.fn(logits)
    d = out - dense_target(out, y)
    return 0.5 * jnp.sum(d.reshape(d.shape[0], -1) ** 2, axis=1)


@register("perceptron")
def perceptron(logits, y, head, /):
    """sum_k -(t_k - o_k) z_k per example, o = step(z) (the head when it is step, else z >= 0), t in {0, 1}:
    the perceptron criterion (|z| on a mistake, 0 otherwise). Its gradient is -(t - o) x, so sgd with rate
    eta and batch_size 1 is Rosenblatt's rule w <- w + eta (t - o) x, b <- b + eta (t - o)."""
    o = head.fn(logits) if head.name == "step" else (logits >= 0).astype(logits.dtype)
    t = dense_target(logits, y)
    err = jax.lax.stop_gradient(t - o)
    return -jnp.sum((err * logits).reshape(logits.shape[0], -1), axis=1)


@register("mae", "mean_absolute_error", "l1")
def mae(logits, y, head, /):
    """(1/K) sum_k |o_k - t_k| per example (mean absolute error, L1)."""
    out = head.fn(logits)
    return _per_example(jnp.abs(out - dense_target(out, y)))


@register("huber")
def huber(logits, y, head, /, delta: float = 1.0):
    """(1/K) sum_k h(o_k - t_k), h(d) = d^2 / 2 if |d| <= delta else delta (|d| - delta / 2)."""
    out = head.fn(logits)
    return _per_example(optax.losses.huber_loss(out, dense_target(out, y), delta=delta))


@register("binary_crossentropy", "bce")
def binary_crossentropy(logits, y, head, /, label_smoothing: float = 0.0):
    """-(1/K) sum_k [t_k log p_k + (1 - t_k) log(1 - p_k)], p = sigmoid(z) computed from the logits z when the
    head is sigmoid (or the last layer has no activation), else the activated output clipped to [1e-7, 1 - 1e-7]."""
    t = dense_target(logits, y)
    if label_smoothing:
        t = t * (1 - label_smoothing) + 0.5 * label_smoothing
    if head.name == "sigmoid":
        return _per_example(optax.losses.sigmoid_binary_cross_entropy(logits, t))
    p = jnp.clip(head.fn(logits), _EPS, 1 - _EPS)
    return _per_example(-(t * jnp.log(p) + (1 - t) * jnp.log(1 - p)))


@register("categorical_crossentropy", "cross_entropy", "sparse_categorical_crossentropy")
def categorical_crossentropy(logits, y, head, /, label_smoothing: float = 0.0):
    """-sum_c t_c log p_c, p = softmax(z) from the logits (softmax head or no activation), else the activated
    output; t one-hot (integer labels) or a distribution; label_smoothing: t (1 - s) + s / C."""
    t = dense_target(logits, y)
    if label_smoothing:
        t = t * (1 - label_smoothing) + label_smoothing / t.shape[-1]
    if head.name == "softmax":
        ce = optax.losses.softmax_cross_entropy(logits, t)
    else:
        ce = -jnp.sum(t * jnp.log(jnp.clip(head.fn(logits), _EPS, 1.0)), axis=-1)
    return _per_example(ce)


@register("kl_divergence", "kld")
def kl_divergence(logits, y, head, /):
    """sum_c t_c log(t_c / p_c) over the classes with t_c > 0; targets are distributions."""
    t = dense_target(logits, y)
    logp = jax.nn.log_softmax(logits) if head.name == "softmax" else jnp.log(jnp.clip(head.fn(logits), _EPS, 1))
    return _per_example(jnp.sum(jnp.where(t > 0, t * (jnp.log(jnp.clip(t, _EPS, 1)) - logp), 0.0), axis=-1))


@register("hinge")
def hinge(logits, y, head, /):
    """(1/K) sum_k max(0, 1 - t_k o_k) with targets in {-1, +1} (0/1 labels are mapped to -1/+1)."""
    out = head.fn(logits)
    t = dense_target(out, y)
    t = jnp.where(t > 0, 1.0, -1.0)
    return _per_example(jnp.maximum(0.0, 1.0 - t * out))


@register("wasserstein", "wgan")
def wasserstein(logits, y, head, /):
    """-(1/K) sum_k (2 t_k - 1) o_k per example, t in {0, 1}: a linear score raised for t = 1 and lowered for
    t = 0 (Keras' Wasserstein loss y_true * y_pred with y = -1/+1); in a gan, the WGAN critic and generator
    losses on the critic's raw output."""
    out = head.fn(logits)
    t = dense_target(out, y)
    return _per_example(-(2.0 * t - 1.0) * out)


@dataclass(frozen=True)
class LossInfo:
    """What the checks and heads need to know about a loss."""

    folds: str | None = None  # the head it reads logits of, when the last layer has no activation
    per_class: bool = False  # needs one output unit per class (class-index targets become one-hot)


LOSS_INFO = {
    "categorical_crossentropy": LossInfo(folds="softmax", per_class=True),
    "binary_crossentropy": LossInfo(folds="sigmoid"),
    "kl_divergence": LossInfo(per_class=True),
}


def loss_info(name: str | None) -> LossInfo:
    """The properties of a registered loss (by name or alias)."""
    return LOSS_INFO.get(LOSSES.canonical(name), LossInfo()) if name else LossInfo()


def head_activation(activation: Any, loss: str | None = None) -> Head:
    """The last layer's activation spec as a Head (softmax/sigmoid heads let losses use logits).

    A last layer without activation under a cross-entropy loss is read as logits (like PyTorch's
    CrossEntropyLoss or Keras' from_logits=True): softmax (sigmoid for binary_crossentropy) is the head.
    """
    if activation is None or ACTIVATIONS.canonical(activation.type) == "linear":
        folds = loss_info(loss).folds
        if folds == "softmax":
            return Head("softmax", lambda z: jax.nn.softmax(z, -1))
        if folds == "sigmoid":
            return Head("sigmoid", jax.nn.sigmoid)
        return Head("linear", lambda z: z)
    return Head(ACTIVATIONS.canonical(activation.type), lambda z: apply_activation(activation, z))
