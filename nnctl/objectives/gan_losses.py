"""The adversarial losses, one value per example, on the discriminator's raw output (logit or critic score)
r = D(x) of real and f = D(G(z)) of generated examples; s is the sigmoid, so D's probability is s(r).

    bce            L_D = -log s(r) - log(1 - s(f))          the notes' -V(D, G) for one pair
                   L_G = -log s(f)                            non_saturating (default)
                   L_G =  log(1 - s(f))                       minimax: the notes' min_G max_D V(D, G)
    least_squares  L_D = 1/2 (r - 1)^2 + 1/2 f^2,  L_G = 1/2 (f - 1)^2          (LSGAN)
    wasserstein    L_D = f - r,  L_G = -f                     (WGAN; the batch mean of r - f estimates W)

WGAN-GP adds lambda * (||grad_x D(x_hat)||_2 - 1)^2 to L_D, x_hat = e x + (1 - e) G(z), e ~ U[0, 1] per
example; WGAN clips the critic's weights to [-c, c] after each of its steps. ACGAN adds the class
cross-entropy of D's class logits; InfoGAN adds L_I, the cross-entropy of the categorical code plus 1/2 the
squared error of the continuous codes (the Gaussian log-likelihood with unit variance, up to a constant)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax


def d_real(kind: str, real: jax.Array) -> jax.Array:
    """The discriminator's loss on a real example's output: -log s(r), 1/2 (r - 1)^2 or -r."""
    if kind == "bce":
        return jax.nn.softplus(-real)
    if kind == "wasserstein":
        return -real
    return 0.5 * (real - 1.0) ** 2


def d_fake(kind: str, fake: jax.Array) -> jax.Array:
    """The discriminator's loss on a generated example's output: -log(1 - s(f)), 1/2 f^2 or f."""
    if kind == "bce":
        return jax.nn.softplus(fake)
    if kind == "wasserstein":
        return fake
    return 0.5 * fake**2


def d_loss(kind: str, real: jax.Array, fake: jax.Array) -> jax.Array:
    """The discriminator's (critic's) loss per example pair."""
    return d_real(kind, real) + d_fake(kind, fake)


def g_loss(kind: str, fake: jax.Array, minimax: bool = False) -> jax.Array:
    """The generator's loss per generated example."""
    if kind == "bce":
        return -jax.nn.softplus(fake) if minimax else jax.nn.softplus(-fake)
    if kind == "wasserstein":
        return -fake
    return 0.5 * (fake - 1.0) ** 2


def gradient_penalty(critic: Callable[[jax.Array], jax.Array], real, fake, key) -> jax.Array:
    """(||grad D(x_hat)||_2 - 1)^2 per example; `critic` maps a batch to one score per example (examples are
    independent, so the gradient of the summed scores is each example's own gradient)."""
    e = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
    x_hat = e * real + (1.0 - e) * fake
    g = jax.grad(lambda v: critic(v).sum())(x_hat)
    norm = jnp.sqrt(jnp.sum(g.reshape(g.shape[0], -1) ** 2, axis=1) + 1e-12)
    return (norm - 1.0) ** 2


def clip_weights(params: Any, c: float, trainable: Any) -> Any:
    """Every trainable weight clipped to [-c, c] (WGAN's Lipschitz constraint); frozen ones untouched."""
    return jax.tree.map(lambda p, t: jnp.clip(p, -c, c) if t else p, params, trainable)


def class_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Cross-entropy of class logits against integer labels, per example (ACGAN's auxiliary term)."""
    return optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels)


def info_loss(q: jax.Array, cat: jax.Array | None, cont: jax.Array | None, cont_weight: float = 1.0) -> jax.Array:
    """L_I per example from the Q head's outputs `q` (the categorical code's logits first, then the continuous
    codes' means): cross-entropy of `cat` + cont_weight * 1/2 ||q_cont - cont||^2."""
    out = jnp.zeros(q.shape[0], q.dtype)
    k = 0
    if cat is not None:
        k = q.shape[1] - (cont.shape[1] if cont is not None else 0)
        out = out + class_loss(q[:, :k], cat)
    if cont is not None:
        out = out + cont_weight * 0.5 * jnp.sum((q[:, k:] - cont) ** 2, axis=1)
    return out
