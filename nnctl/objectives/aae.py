"""Adversarial autoencoder (Makhzani et al.): an encoder E (example -> code of latent_dim values), a decoder
(code -> example) and a discriminator D on codes (code -> logit) that tells draws of the prior N(0, I) from
codes of real examples. One jitted step updates D (train.discriminator), then the encoder and decoder
together (train.optimizer) on

    loss = reconstruction + adversarial_weight * (-log s(D(E(x))))

so the codes come to look like the prior and decoding N(0, I) draws gives examples (`nnctl sample`).
`reconstruction` is train.loss per example (as a plain autoencoder's: mse is the mean over the values); D's
loss is the bce game of nnctl.objectives.gan_losses, the prior's draws its real examples. Logged:
reconstruction, g_loss (the encoder's adversarial term, before the weight), d_loss, d_real and d_fake (D's mean
probability on prior draws and on codes); `loss` = reconstruction + adversarial_weight * g_loss."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from nnctl.chain import Chain, clipped_flag
from nnctl.engine.loop import Proposal
from nnctl.engine.state import TrainState
from nnctl.engine.step import apply_update, forward, masked_mean
from nnctl.layers.graph import Network
from nnctl.losses import LOSSES
from nnctl.objectives import gan_losses as L
from nnctl.objectives.parts import ChainedParts

AUTOENCODER = ("encoder", "decoder")
KEYS = ("reconstruction", "g_loss", "d_loss", "d_real", "d_fake")


class AAENet(nn.Module):
    encoder: Network
    decoder: Network
    discriminator: Network

    def encode(self, x, train: bool = False, capture: tuple = ()):
        """The code (the encoder's output, flat); with `capture`, also the named encoder layers' outputs."""
        if capture:
            h, acts = self.encoder(x, train, True, capture)
            return h.reshape(h.shape[0], -1), acts
        h = self.encoder(x, train)
        return h.reshape(h.shape[0], -1)

    def decode(self, z, train: bool = False, head: bool = True):
        return self.decoder(z, train, head)

    def score(self, z, train: bool = False):
        """D's raw output (logit) per code, shape (batch,)."""
        out = self.discriminator(z, train, False)
        return out.reshape(out.shape[0], -1)[:, 0]

    def __call__(self, x, train: bool = False, head: bool = True, capture: tuple = ()):
        z = self.encode(x, train)
        self.score(z, train)  # creates the discriminator's parameters
        return self.decode(z, train, head)


@dataclass(frozen=True, eq=False, kw_only=True)
class AAE(ChainedParts):
    net: Any  # AAENet
    head: Any  # the decoder's last activation
    loss_opts: Any
    chains: dict[str, Chain]  # "autoencoder": over {encoder, decoder}; "discriminator": over {discriminator}
    latent_dim: int
    adversarial_weight: float = 1.0
    clip: Any = None
    compute_dtype: Any = None

    GROUPS: ClassVar[dict[str, tuple[str, ...]]] = {"autoencoder": AUTOENCODER, "discriminator": ("discriminator",)}
    LOGGED: ClassVar[str] = "autoencoder"

    def _fwd(self, p, ms, *args, method: str, train: bool, key=None, **kw):
        return forward(
            self.net, p, ms, *args, train=train, key=key, compute_dtype=self.compute_dtype, method=method, **kw
        )

    def d_terms(self, p, ms, x, prior, mask, train, key=None):
        """(D's loss, (d_real, d_fake), model state): prior draws are D's real examples, codes its fakes."""
        z, ms = self._fwd(p, ms, x, method="encode", train=train, key=key)
        real, ms = self._fwd(p, ms, prior, method="score", train=train, key=key)
        fake, ms = self._fwd(p, ms, jax.lax.stop_gradient(z), method="score", train=train, key=key)
        loss = masked_mean(L.d_loss("bce", real, fake), mask)
        probs = (masked_mean(jax.nn.sigmoid(real), mask), masked_mean(jax.nn.sigmoid(fake), mask))
        return loss, (probs, ms)

    def g_terms(self, p, ms, x, mask, train, key=None):
        """(reconstruction per example, the encoder's adversarial loss per example, model state)."""
        z, ms = self._fwd(p, ms, x, method="encode", train=train, key=key)
        logits, ms = self._fwd(p, ms, z, method="decode", train=train, key=key, head=False)
        s, ms = self._fwd(p, ms, z, method="score", train=train, key=key)
        return LOSSES.build(self.loss_opts, logits, x, self.head), L.g_loss("bce", s), ms

    def _update(self, group: str, opt, params, loss, grads, names):
        c = self.chains[group]
        sub = {n: params[n] for n in names}
        return apply_update(c.tx, c.trainable, opt[group], sub, loss, {n: grads[n] for n in names})

    def propose(self, state: TrainState, x, y, mask, key) -> Proposal:
        P, ms, opt = state.params, state.model_state, state.opt_state
        k1, k2, k3 = jax.random.split(key, 3)
        prior = jax.random.normal(k1, (x.shape[0], self.latent_dim), x.dtype)

        def d_obj(dp):
            return self.d_terms({**P, **dp}, ms, x, prior, mask, True, k2)

        (dl, ((d_real, d_fake), ms)), gd = jax.value_and_grad(d_obj, has_aux=True)(
            {"discriminator": P["discriminator"]}
        )
        new_d, opt_d, gn_d, gd = self._update("discriminator", opt, P, dl, gd, ("discriminator",))
        P2 = {**P, **new_d}

        def ae_obj(ap):
            recon, adv, m = self.g_terms({**P2, **ap}, ms, x, mask, True, k3)
            r, a = masked_mean(recon, mask), masked_mean(adv, mask)
            return r + self.adversarial_weight * a, (r, a, m)

        (total, (recon, adv, ms)), ga = jax.value_and_grad(ae_obj, has_aux=True)({n: P[n] for n in AUTOENCODER})
        new_a, opt_a, gn_a, ga = self._update("autoencoder", opt, P, total, ga, AUTOENCODER)
        new = TrainState(
            params={**P2, **new_a},
            model_state=ms,
            opt_state={"autoencoder": opt_a, "discriminator": opt_d},
            step=state.step + 1,
        )
        clipped = jnp.maximum(clipped_flag(self.clip, gd), clipped_flag(self.clip, ga))
        values = {"reconstruction": recon, "g_loss": adv, "d_loss": dl, "d_real": d_real, "d_fake": d_fake}
        return Proposal(new, total, jnp.sqrt(gn_d**2 + gn_a**2), clipped, values)

    # --- sums -----------------------------------------------------------------------------------------------
    def zero_sums(self, out_shape, y_dtype) -> dict:
        return {"n": jnp.float32(0), "loss": jnp.float32(0), **{k: jnp.float32(0) for k in KEYS}}

    def add(self, sums, values, mask, weight) -> dict:
        c = mask.sum() * weight
        total = values["reconstruction"] + self.adversarial_weight * values["g_loss"]
        out = {**sums, "n": sums["n"] + c, "loss": sums["loss"] + total * c}
        out.update({k: sums[k] + values[k] * c for k in KEYS})
        return out

    def finalize(self, sums) -> dict:
        n = jnp.maximum(sums["n"], 1.0)
        return {"loss": sums["loss"] / n, **{k: sums[k] / n for k in KEYS}}

    def eval_step(self, state: TrainState, sums, x, y, mask):
        P, ms = state.params, state.model_state
        prior = jax.random.normal(jax.random.key(0), (x.shape[0], self.latent_dim), x.dtype)
        dl, ((d_real, d_fake), _) = self.d_terms(P, ms, x, prior, mask, False)
        recon, adv, _ = self.g_terms(P, ms, x, mask, False)
        values = {
            "reconstruction": masked_mean(recon, mask),
            "g_loss": masked_mean(adv, mask),
            "d_loss": dl,
            "d_real": d_real,
            "d_fake": d_fake,
        }
        return self.add(sums, values, mask, 1.0)

    # --- using a trained model ------------------------------------------------------------------------------
    def predict(self, params, model_state, x):
        """Reconstructions."""
        return self.net.apply({"params": params, **model_state}, x)

    def reconstruction_error(self, params, model_state, x):
        """train.loss per example between the reconstruction and x (the anomaly score of `nnctl predict`)."""
        return self.g_terms(params, model_state, x, jnp.ones(x.shape[0]), False)[0]

    def decode(self, params, model_state, z, labels=None):
        return self.net.apply({"params": params, **model_state}, z, method="decode")

    def sample(self, params, model_state, key, n: int, labels=None):
        """Decoded draws from the prior N(0, I)."""
        return self.decode(params, model_state, jax.random.normal(key, (n, self.latent_dim)))

    def encode(self, params, model_state, x, layer: str):
        """`code` (the encoder's output) or the output of a named encoder layer."""
        variables = {"params": params, **model_state}
        if layer == "code":
            return self.net.apply(variables, x, method="encode")
        return self.net.apply(variables, x, capture=(layer,), method="encode")[1][layer]
