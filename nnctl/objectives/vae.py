"""Variational autoencoder: q(z|x) = N(mean, exp(log_var)) from the encoder, z = mean + exp(log_var/2) * eps
with eps from the run's RNG (reparameterisation), decoder p(x|z). Per example:

    loss = reconstruction + beta * KL(q(z|x) || N(0, I)),   KL = -1/2 sum(1 + log_var - mean^2 - exp(log_var))

`reconstruction` is train.loss summed over the input's values (mse: squared error, binary_crossentropy:
Bernoulli negative log-likelihood). Evaluation decodes the mean (no sampling).

Besides: kernel regularizers on encoder/decoder layers and activity regularizers on encoder layers (each
activity term logged separately) are added to the loss; `data.augment` augments the training input, which is
also the target; `data.corruption` makes a denoising VAE (the corrupted input is encoded, the clean one
reconstructed); `train.metrics` (regression metrics) compare the reconstruction with the target;
`precision: bf16` computes both networks in bfloat16 (nnctl.engine.step.forward)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from nnctl import metrics as M
from nnctl.augment import augment_batch, corrupt
from nnctl.chain import Chain, OptimizedByChain, clipped_flag
from nnctl.engine.loop import Proposal
from nnctl.engine.state import TrainState
from nnctl.engine.step import deferred_update, forward, masked_mean
from nnctl.losses import LOSSES
from nnctl.objectives.regularized import activity_penalties, jacobian_norm2
from nnctl.objectives.supervised import init_state, kernel_penalty


@struct.dataclass
class Pass:
    """One pass over a batch: per-example reconstruction and KL, the decoder's logits, the target they were
    compared with, the regularizers' extra loss (scalar), the activity terms and the new model state."""

    recon: jax.Array
    kl: jax.Array
    logits: jax.Array
    target: jax.Array
    extra: Any  # kernel + activity penalties, or None when the objective has none
    terms: dict
    model_state: dict


@dataclass(frozen=True, eq=False, kw_only=True)
class VAE(OptimizedByChain):
    net: Any  # nets.VAENet
    head: Any  # the decoder's last activation
    loss_opts: Any
    chain: Chain  # the optimizer: transformation, frozen mask, learning rate, description
    input_shape: tuple
    latent_dim: int
    beta: float = 1.0
    clip: Any = None
    regularizers: tuple = ()  # kernel regularizers: ((encoder/<layer> or decoder/<layer>, l1, l2), ...)
    activity: tuple = ()  # ((key, activity regularizer spec), ...) on encoder layers
    augment: tuple = ()  # data.augment: training inputs (and so targets) only
    corruption: Any = None  # data.corruption: the encoded training input only (denoising)
    metric_names: tuple = ()  # regression metrics of the reconstruction against the target
    compute_dtype: Any = None  # e.g. jnp.bfloat16: forward/backward in it; weights and optimizer stay float32

    def init(self, key, input_shape) -> TrainState:
        return init_state(self.net, key, input_shape, self.tx.init)

    def _fwd(self, params, ms, *args, train: bool, key=None, **kw):
        return forward(self.net, params, ms, *args, train=train, key=key, compute_dtype=self.compute_dtype, **kw)

    # --- the losses -------------------------------------------------------------------------------------------
    def _capture(self) -> tuple:
        return tuple(dict.fromkeys(r.layer for _, r in self.activity if r.type != "contractive"))

    def _jacobian(self, params, ms, x, layer):
        """||dh/dx||_F^2 per example of an encoder layer's output h (contractive)."""
        variables = {"params": params, **ms}

        def h(xi):
            _, _, acts = self.net.apply(variables, xi[None], train=False, capture=(layer,), method="encode")
            return acts[layer].reshape(-1)

        return jacobian_norm2(h, x)

    def run(self, params, ms, x, mask, train: bool, key=None, target=None) -> Pass:
        """Encode `x`, sample z (key None: z = mean), decode, compare with `target` (default: `x`)."""
        k_drop = None if key is None else jax.random.fold_in(key, 1)
        names, ms0 = self._capture(), ms
        enc, ms = self._fwd(
            params, ms, x, train=train, key=k_drop, method="encode", **({"capture": names} if names else {})
        )
        mu, log_var, acts = enc if names else (*enc, {})
        if key is None:
            z = mu
        else:
            z = mu + jnp.exp(0.5 * log_var) * jax.random.normal(jax.random.fold_in(key, 2), mu.shape, mu.dtype)
        logits, ms = self._fwd(params, ms, z, train=train, key=k_drop, method="decode", head=False)
        target = x if target is None else target
        recon = LOSSES.build(self.loss_opts, logits, target, self.head) * math.prod(self.input_shape)
        kl = -0.5 * jnp.sum(1 + log_var - mu**2 - jnp.exp(log_var), axis=-1)
        terms = activity_penalties(self.activity, acts, mask, lambda layer: self._jacobian(params, ms0, x, layer))
        extra = None
        if self.regularizers or terms:
            extra = kernel_penalty(params, self.regularizers) + sum(terms.values(), jnp.float32(0))
        return Pass(recon, kl, logits, target, extra, terms, ms)

    def perturb(self, x, key):
        """(encoded input, target) of a training batch: augmented (both), then corrupted (the input only)."""
        x = augment_batch(self.augment, x, jax.random.fold_in(key, 101)) if self.augment else x
        noisy = corrupt(self.corruption, x, jax.random.fold_in(key, 102)) if self.corruption is not None else x
        return noisy, x

    # --- sums -----------------------------------------------------------------------------------------------
    def zero_sums(self, out_shape, y_dtype) -> dict:
        sums = {"n": jnp.float32(0), "loss": jnp.float32(0), "reconstruction": jnp.float32(0), "kl": jnp.float32(0)}
        sums.update({k: jnp.float32(0) for k, _ in self.activity})
        if self.metric_names:
            v = jax.ShapeDtypeStruct((1, *self.input_shape), jnp.float32)
            shapes = jax.eval_shape(
                lambda o, t: M.batch_sums(M.needs_of(self.metric_names), o, t, jnp.ones(1), 2), v, v
            )
            sums.update(jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes))
        return sums

    def _add(self, sums, p: Pass, mask, w):
        m = mask * w
        sums = dict(sums)
        if self.metric_names:
            batch = M.batch_sums(M.needs_of(self.metric_names), self.head.fn(p.logits), p.target, m, 2)
            sums.update({k: sums[k] + v for k, v in batch.items() if k != "n"})
        sums["n"] = sums["n"] + m.sum()
        sums["reconstruction"] = sums["reconstruction"] + (p.recon * m).sum()
        sums["kl"] = sums["kl"] + (p.kl * m).sum()
        sums["loss"] = sums["loss"] + ((p.recon + self.beta * p.kl) * m).sum()
        if p.extra is not None:
            sums["loss"] = sums["loss"] + p.extra * m.sum()
        for k, v in p.terms.items():
            sums[k] = sums[k] + v * m.sum()
        return sums

    def finalize(self, sums) -> dict:
        n = jnp.maximum(sums["n"], 1.0)
        out = {"loss": sums["loss"] / n, "reconstruction": sums["reconstruction"] / n, "kl": sums["kl"] / n}
        out.update({k: sums[k] / n for k, _ in self.activity})
        out.update(M.compute(self.metric_names, sums))
        return out

    # --- steps ----------------------------------------------------------------------------------------------
    def propose(self, state: TrainState, x, y, mask, key) -> Proposal:
        x_in, target = self.perturb(x, key)

        def objective(params):
            p = self.run(params, state.model_state, x_in, mask, True, key, target)
            loss = masked_mean(p.recon + self.beta * p.kl, mask)
            return (loss if p.extra is None else loss + p.extra), p

        (loss, p), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        new, grads, gnorm = deferred_update(self.tx, self.trainable, state, loss, grads, p.model_state)
        return Proposal(new, loss, gnorm, clipped_flag(self.clip, grads), p)

    def add(self, sums, values, mask, weight) -> dict:
        return self._add(sums, values, mask, weight)

    def eval_step(self, state: TrainState, sums, x, y, mask):
        return self._add(sums, self.run(state.params, state.model_state, x, mask, False), mask, 1.0)

    # --- using a trained model ------------------------------------------------------------------------------
    def predict(self, params, model_state, x):
        """Reconstructions (decoded means)."""
        return self._fwd(params, model_state, x, train=False)[0]

    def sample(self, params, model_state, key, n: int, labels=None):
        """Decoded draws from the prior N(0, I)."""
        z = jax.random.normal(key, (n, self.latent_dim))
        return self._fwd(params, model_state, z, train=False, method="decode")[0]

    def reconstruction_error(self, params, model_state, x):
        """The reconstruction term per example, the mean decoded (the anomaly score of `nnctl predict`)."""
        return self.run(params, model_state, x, jnp.ones(x.shape[0], x.dtype), False).recon

    def decode(self, params, model_state, z, labels=None):
        """Decoded codes z, shape (batch, latent_dim) (`nnctl sample --codes`, `--interpolate`)."""
        return self._fwd(params, model_state, z, train=False, method="decode")[0]

    def encode(self, params, model_state, x, layer: str):
        """`z_mean` / `z_log_var`, or the output of a named encoder layer."""
        variables = {"params": params, **model_state}
        if layer in ("z_mean", "z_log_var", "code"):
            mu, log_var = self.net.apply(variables, x, train=False, method="encode")
            return log_var if layer == "z_log_var" else mu
        _, _, acts = self.net.apply(variables, x, train=False, capture=(layer,), method="encode")
        return acts[layer]
