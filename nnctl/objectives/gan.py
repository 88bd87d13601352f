"""Generative adversarial network: a generator G (noise -> example) and a discriminator D (example -> logit),
each with its own Optax optimizer (train.generator, train.discriminator). One training step, jitted as a
whole, updates D on a real and a generated batch, then G against the updated D:

    bce (non-saturating):  L_D = -log s(D(x)) - log(1 - s(D(G(z)))),   L_G = -log s(D(G(z)))
    least_squares (LSGAN): L_D = 1/2 (D(x) - 1)^2 + 1/2 D(G(z))^2,      L_G = 1/2 (D(G(z)) - 1)^2

Conditional (model.conditional): the one-hot label is appended to G's noise and to D's input; generated
examples take the labels of the real batch. Logged per epoch: d_loss, g_loss, d_real and d_fake (D's mean
probability on real and generated examples); `loss` is d_loss + g_loss."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from nnctl.objectives.common import apply_update, commit, masked_mean, train_sums
from nnctl.objectives.vae import run

KEYS = ("d_loss", "g_loss", "d_real", "d_fake")


@dataclass(frozen=True, eq=False)
class GAN:
    net: Any  # nets.GANNet
    kind: str  # bce | least_squares
    tx_g: Any
    tx_d: Any
    latent_dim: int
    conditional: bool = False
    clip: Any = None
    lr: Any = 0.0

    @property
    def tx(self):
        return self.tx_g

    @property
    def trainable(self):  # train.freeze is not supported for gan models (a spec error)
        return None

    def init(self, key, input_shape) -> dict:
        x = jnp.zeros((1, *input_shape), jnp.float32)
        variables = self.net.init({"params": key, "dropout": key}, x, train=False)
        p = variables["params"]
        return {"params": p, "model_state": {k: v for k, v in variables.items() if k != "params"},
                "opt_state": {"generator": self.tx_g.init(p["generator"]),
                              "discriminator": self.tx_d.init(p["discriminator"])},
                "step": jnp.int32(0)}

    # --- losses ---------------------------------------------------------------------------------------------
    def d_loss(self, real, fake):
        if self.kind == "bce":
            return jax.nn.softplus(-real) + jax.nn.softplus(fake)
        return 0.5 * (real - 1.0) ** 2 + 0.5 * fake**2

    def g_loss(self, fake):
        if self.kind == "bce":
            return jax.nn.softplus(-fake)
        return 0.5 * (fake - 1.0) ** 2

    def _prob(self, logit):
        return jax.nn.sigmoid(logit) if self.kind == "bce" else logit

    def _labels(self, y):
        return y.reshape(y.shape[0], -1)[:, 0].astype(jnp.int32) if self.conditional else None

    # --- accumulators -----------------------------------------------------------------------------------------
    def zero_sums(self, out_shape, y_dtype, train: bool) -> dict:
        sums = {"n": jnp.float32(0), "loss": jnp.float32(0), **{k: jnp.float32(0) for k in KEYS}}
        return {**sums, **train_sums()} if train else sums

    def _add(self, sums, values, mask, w):
        c = mask.sum() * w
        sums = dict(sums)
        sums["n"] = sums["n"] + c
        sums["loss"] = sums["loss"] + (values["d_loss"] + values["g_loss"]) * c
        for k in KEYS:
            sums[k] = sums[k] + values[k] * c
        return sums

    def finalize(self, sums) -> dict:
        n = jnp.maximum(sums["n"], 1.0)
        return {"loss": sums["loss"] / n, **{k: sums[k] / n for k in KEYS}}

    # --- steps --------------------------------------------------------------------------------------------------
    def train_step(self, state, sums, x, y, mask, key, max_steps, halt_on_nonfinite: bool):
        P, ms, opt = state["params"], state["model_state"], state["opt_state"]
        labels = self._labels(y)
        k = jax.random.split(key, 6)
        z1 = jax.random.normal(k[0], (x.shape[0], self.latent_dim), x.dtype)
        z2 = jax.random.normal(k[1], (x.shape[0], self.latent_dim), x.dtype)

        def d_objective(dp):
            p = {**P, "discriminator": dp}
            fake, m = run(self.net, p, ms, z1, labels, train=True, key=k[2], method="generate")
            real_logit, m = run(self.net, p, m, x, labels, train=True, key=k[3], method="discriminate")
            fake_logit, m = run(self.net, p, m, jax.lax.stop_gradient(fake), labels, train=True, key=k[4],
                                method="discriminate")
            return masked_mean(self.d_loss(real_logit, fake_logit), mask), (
                m, masked_mean(self._prob(real_logit), mask), masked_mean(self._prob(fake_logit), mask))

        (dl, (ms_d, d_real, d_fake)), gd = jax.value_and_grad(d_objective, has_aux=True)(P["discriminator"])
        new_d, opt_d, gn_d, _ = apply_update(self.tx_d, None, state, opt["discriminator"], P["discriminator"], dl, gd)
        P2 = {**P, "discriminator": new_d}

        def g_objective(gp):
            p = {**P2, "generator": gp}
            fake, m = run(self.net, p, ms_d, z2, labels, train=True, key=k[5], method="generate")
            logit, m = run(self.net, p, m, fake, labels, train=True, key=k[5], method="discriminate")
            return masked_mean(self.g_loss(logit), mask), m

        (gl, ms_g), gg = jax.value_and_grad(g_objective, has_aux=True)(P["generator"])
        new_g, opt_g, gn_g, _ = apply_update(self.tx_g, None, state, opt["generator"], P["generator"], gl, gg)

        new_state = {"params": {**P, "generator": new_g, "discriminator": new_d}, "model_state": ms_g,
                     "opt_state": {"generator": opt_g, "discriminator": opt_d}, "step": state["step"] + 1}
        gnorm = jnp.sqrt(gn_d**2 + gn_g**2)
        from nnctl.optim import clipped_flag
        clipped = jnp.maximum(clipped_flag(self.clip, gd), clipped_flag(self.clip, gg))  # either network clipped
        state, sums, ok = commit(state, new_state, sums, dl + gl, gnorm, max_steps, halt_on_nonfinite, clipped)
        values = {"d_loss": dl, "g_loss": gl, "d_real": d_real, "d_fake": d_fake}
        return state, self._add(sums, values, mask, ok.astype(jnp.float32))

    def eval_step(self, state, sums, x, y, mask):
        P, ms = state["params"], state["model_state"]
        labels = self._labels(y)
        variables = {"params": P, **ms}
        z = jax.random.normal(jax.random.key(0), (x.shape[0], self.latent_dim), x.dtype)
        fake = self.net.apply(variables, z, labels, method="generate")
        real_logit = self.net.apply(variables, x, labels, method="discriminate")
        fake_logit = self.net.apply(variables, fake, labels, method="discriminate")
        values = {"d_loss": masked_mean(self.d_loss(real_logit, fake_logit), mask),
                  "g_loss": masked_mean(self.g_loss(fake_logit), mask),
                  "d_real": masked_mean(self._prob(real_logit), mask),
                  "d_fake": masked_mean(self._prob(fake_logit), mask)}
        return self._add(sums, values, mask, 1.0)

    # --- using a trained model -----------------------------------------------------------------------------------
    def predict(self, params, model_state, x):
        """The discriminator's probability (bce) or score (least_squares) that each example is real."""
        labels = jnp.zeros((x.shape[0],), jnp.int32) if self.conditional else None  # (as if class 0)
        logit = self.net.apply({"params": params, **model_state}, x, labels, method="discriminate")
        return self._prob(logit)[:, None]

    def sample(self, params, model_state, key, n: int, labels=None):
        z = jax.random.normal(key, (n, self.latent_dim))
        if self.conditional and labels is None:
            labels = jnp.arange(n) % self.net.num_classes
        return self.net.apply({"params": params, **model_state}, z, labels, method="generate")
