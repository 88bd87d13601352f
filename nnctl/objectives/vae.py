"""Variational autoencoder: q(z|x) = N(mean, exp(log_var)) from the encoder, z = mean + exp(log_var/2) * eps
with eps from the run's RNG (reparameterisation), decoder p(x|z). Per example:

    loss = reconstruction + beta * KL(q(z|x) || N(0, I)),   KL = -1/2 sum(1 + log_var - mean^2 - exp(log_var))

`reconstruction` is train.loss summed over the input's values (mse: squared error, binary_crossentropy:
Bernoulli negative log-likelihood). Evaluation decodes the mean (no sampling)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from nnctl.losses import LOSSES
from nnctl.objectives.common import apply_update, commit, masked_mean, train_sums


def run(net, params, ms, *args, train: bool, key=None, method=None, **kw):
    """net.apply with dropout RNG and mutable state (batch statistics) when training."""
    variables = {"params": params, **ms}
    rngs = {"dropout": key} if (train and key is not None) else {}
    if train and ms:
        out, new = net.apply(variables, *args, train=True, rngs=rngs, mutable=list(ms), method=method, **kw)
        return out, {**ms, **new}
    return net.apply(variables, *args, train=train, rngs=rngs, method=method, **kw), ms


@dataclass(frozen=True, eq=False)
class VAE:
    net: Any  # nets.VAENet
    head: Any  # the decoder's last activation
    loss_opts: Any
    tx: Any
    trainable: Any
    input_shape: tuple
    latent_dim: int
    beta: float = 1.0
    clip: Any = None
    lr: Any = 0.0

    def init(self, key, input_shape) -> dict:
        x = jnp.zeros((1, *input_shape), jnp.float32)
        variables = self.net.init({"params": key, "dropout": key}, x, train=False)
        params = variables["params"]
        return {"params": params, "model_state": {k: v for k, v in variables.items() if k != "params"},
                "opt_state": self.tx.init(params), "step": jnp.int32(0)}

    def losses(self, params, ms, x, train: bool, key=None):
        """(reconstruction, kl) per example and the new model state; key None: z = mean."""
        k_drop = None if key is None else jax.random.fold_in(key, 1)
        (mu, log_var), ms = run(self.net, params, ms, x, train=train, key=k_drop, method="encode")
        if key is None:
            z = mu
        else:
            z = mu + jnp.exp(0.5 * log_var) * jax.random.normal(jax.random.fold_in(key, 2), mu.shape, mu.dtype)
        logits, ms = run(self.net, params, ms, z, train=train, key=k_drop, method="decode", head=False)
        recon = LOSSES.build(self.loss_opts, logits, x, self.head) * math.prod(self.input_shape)
        kl = -0.5 * jnp.sum(1 + log_var - mu**2 - jnp.exp(log_var), axis=-1)
        return recon, kl, ms

    def zero_sums(self, out_shape, y_dtype, train: bool) -> dict:
        sums = {"n": jnp.float32(0), "loss": jnp.float32(0), "reconstruction": jnp.float32(0), "kl": jnp.float32(0)}
        return {**sums, **train_sums()} if train else sums

    def _add(self, sums, recon, kl, mask, w):
        m = mask * w
        sums = dict(sums)
        sums["n"] = sums["n"] + m.sum()
        sums["reconstruction"] = sums["reconstruction"] + (recon * m).sum()
        sums["kl"] = sums["kl"] + (kl * m).sum()
        sums["loss"] = sums["loss"] + ((recon + self.beta * kl) * m).sum()
        return sums

    def train_step(self, state, sums, x, y, mask, key, max_steps, halt_on_nonfinite: bool):
        params, ms = state["params"], state["model_state"]

        def objective(p):
            recon, kl, new_ms = self.losses(p, ms, x, True, key)
            return masked_mean(recon + self.beta * kl, mask), (new_ms, recon, kl)

        (loss, (new_ms, recon, kl)), grads = jax.value_and_grad(objective, has_aux=True)(params)
        new_params, new_opt, gnorm, grads = apply_update(self.tx, self.trainable, state, state["opt_state"], params,
                                                         loss, grads)
        new_state = {"params": new_params, "model_state": new_ms, "opt_state": new_opt, "step": state["step"] + 1}
        from nnctl.optim import clipped_flag
        state, sums, ok = commit(state, new_state, sums, loss, gnorm, max_steps, halt_on_nonfinite,
                                 clipped_flag(self.clip, grads))
        return state, self._add(sums, recon, kl, mask, ok.astype(jnp.float32))

    def eval_step(self, state, sums, x, y, mask):
        recon, kl, _ = self.losses(state["params"], state["model_state"], x, False)
        return self._add(sums, recon, kl, mask, 1.0)

    def finalize(self, sums) -> dict:
        n = jnp.maximum(sums["n"], 1.0)
        return {"loss": sums["loss"] / n, "reconstruction": sums["reconstruction"] / n, "kl": sums["kl"] / n}

    # --- using a trained model ------------------------------------------------------------------------------
    def predict(self, params, model_state, x):
        """Reconstructions (decoded means)."""
        return self.net.apply({"params": params, **model_state}, x, train=False)

    def sample(self, params, model_state, key, n: int, labels=None):
        """Decoded draws from the prior N(0, I)."""
        z = jax.random.normal(key, (n, self.latent_dim))
        return self.net.apply({"params": params, **model_state}, z, train=False, method="decode")

    def encode(self, params, model_state, x, layer: str):
        """`z_mean` / `z_log_var`, or the output of a named encoder layer."""
        variables = {"params": params, **model_state}
        if layer in ("z_mean", "z_log_var", "code"):
            mu, log_var = self.net.apply(variables, x, train=False, method="encode")
            return log_var if layer == "z_log_var" else mu
        _, _, acts = self.net.apply(variables, x, train=False, capture=(layer,), method="encode")
        return acts[layer]
