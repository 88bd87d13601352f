"""VAE-GAN (Larsen et al. 2016): a vae (encoder -> q(z|x) = N(mean, exp(log_var)), reparameterised z, decoder)
whose decoder is also a GAN generator, and a discriminator D on examples that tells real examples from both
kinds of fake: reconstructions x~ = Dec(z), z ~ q(z|x), and decoded prior draws x_p = Dec(z_p), z_p ~ N(0, I).
With s the sigmoid and r, f, p D's logits on x, x~ and x_p, per example:

    encoder        beta * KL(q(z|x) || N(0, I)) + reconstruction
    decoder        reconstruction + adversarial_weight * g_loss,   g_loss = -log s(f) - log s(p)
    discriminator  d_loss = -log s(r) - log(1 - s(f)) - log(1 - s(p))

(the paper's L_GAN with both fakes, the generator's side non-saturating). `reconstruction` is the vae's:
train.loss summed over the input's values (pixel-wise; the paper's discriminator-feature loss is not
offered). The paper weighs the decoder's reconstruction by gamma; here the GAN term is weighed instead
(adversarial_weight = 1 / gamma), so the reconstruction keeps the vae's scale. One jitted step computes every
term in one forward pass and updates all three networks together from it (the paper's algorithm), each on
the gradient of its own loss: D with train.discriminator, encoder and decoder with train.optimizer (one
chain). Logged: reconstruction, kl, g_loss, d_loss, d_real (D's mean probability on real examples), d_fake
(on both fakes); loss = reconstruction + beta * kl + adversarial_weight * g_loss. Evaluation decodes the
mean (no sampling)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from nnctl.chain import Chain, clipped_flag
from nnctl.engine.loop import Proposal
from nnctl.engine.state import TrainState
from nnctl.engine.step import apply_update, forward, masked_mean
from nnctl.layers.graph import Network
from nnctl.losses import LOSSES
from nnctl.objectives import gan_losses as L
from nnctl.objectives.nets import VAENet
from nnctl.objectives.parts import ChainedParts

ENCODER = ("encoder", "z_mean", "z_log_var")
DECODER = ("decoder",)
AUTOENCODER = ENCODER + DECODER
KEYS = ("reconstruction", "kl", "g_loss", "d_loss", "d_real", "d_fake")


class VAEGANNet(VAENet):
    discriminator: Network

    def score(self, x, train: bool = False):
        """D's raw output (logit) per example, shape (batch,)."""
        out = self.discriminator(x, train, False)
        return out.reshape(out.shape[0], -1)[:, 0]

    def __call__(self, x, train: bool = False, head: bool = True, capture: tuple = ()):
        mu, _ = self.encode(x, train)
        self.score(x, train)  # creates the discriminator's parameters
        return self.decode(mu, train, head)


def vaegan_terms(recon, kl, real, fake, prior) -> dict:
    """The per-example terms from the reconstruction and KL and D's logits on x, x~ and x_p."""
    return {
        "reconstruction": recon,
        "kl": kl,
        "g_loss": L.g_loss("bce", fake) + L.g_loss("bce", prior),
        "d_loss": L.d_real("bce", real) + L.d_fake("bce", fake) + L.d_fake("bce", prior),
    }


@dataclass(frozen=True, eq=False, kw_only=True)
class VAEGAN(ChainedParts):
    net: Any  # VAEGANNet
    head: Any  # the decoder's last activation
    loss_opts: Any
    chains: dict[str, Chain]  # "autoencoder": over encoder, z_mean, z_log_var, decoder; "discriminator"
    input_shape: tuple
    latent_dim: int
    beta: float = 1.0
    adversarial_weight: float = 1.0
    clip: Any = None
    compute_dtype: Any = None

    GROUPS: ClassVar[dict[str, tuple[str, ...]]] = {"autoencoder": AUTOENCODER, "discriminator": ("discriminator",)}
    LOGGED: ClassVar[str] = "autoencoder"

    def _fwd(self, p, ms, *args, method: str | None, train: bool, key=None, **kw):
        return forward(
            self.net, p, ms, *args, train=train, key=key, compute_dtype=self.compute_dtype, method=method, **kw
        )

    def fakes(self, p, ms, x, eps, prior, train, key=None):
        """(reconstruction per example, KL per example, x~, x_p, model state); eps None: z = mean."""
        (mu, log_var), ms = self._fwd(p, ms, x, method="encode", train=train, key=key)
        z = mu if eps is None else mu + jnp.exp(0.5 * log_var) * eps
        logits, ms = self._fwd(p, ms, z, method="decode", train=train, key=key, head=False)
        x_p, ms = self._fwd(p, ms, prior, method="decode", train=train, key=key)
        recon = LOSSES.build(self.loss_opts, logits, x, self.head) * math.prod(self.input_shape)
        kl = -0.5 * jnp.sum(1 + log_var - mu**2 - jnp.exp(log_var), axis=-1)
        return recon, kl, self.head.fn(logits), x_p, ms

    def terms(self, p, ms, x, eps, prior, train, key=None):
        """(the per-example terms, D's probabilities (real, fakes), model state)."""
        recon, kl, x_rec, x_p, ms = self.fakes(p, ms, x, eps, prior, train, key)
        logits = {}
        for name, v in (("real", x), ("fake", x_rec), ("prior", x_p)):
            logits[name], ms = self._fwd(p, ms, v, method="score", train=train, key=key)
        probs = {k: jax.nn.sigmoid(v) for k, v in logits.items()}
        return vaegan_terms(recon, kl, **logits), (probs["real"], (probs["fake"] + probs["prior"]) / 2), ms

    def _update(self, group: str, opt, params, loss, grads, names):
        c = self.chains[group]
        sub = {n: params[n] for n in names}
        return apply_update(c.tx, c.trainable, opt[group], sub, loss, {n: grads[n] for n in names})

    def propose(self, state: TrainState, x, y, mask, key) -> Proposal:
        P, ms, opt = state.params, state.model_state, state.opt_state
        k1, k2, k3 = jax.random.split(key, 3)
        prior = jax.random.normal(k1, (x.shape[0], self.latent_dim), x.dtype)
        eps = jax.random.normal(k2, (x.shape[0], self.latent_dim), x.dtype)

        def obj(params):
            t, probs, m = self.terms(params, ms, x, eps, prior, True, k3)
            r, kl, g, d = (masked_mean(t[k], mask) for k in ("reconstruction", "kl", "g_loss", "d_loss"))
            losses = (r + self.beta * kl, r + self.adversarial_weight * g, d)
            return losses, (r, kl, g, d, tuple(masked_mean(v, mask) for v in probs), m)

        # one forward pass, one backward pass per loss; each network takes the gradient of its own loss and all
        # three are updated together (the paper's algorithm)
        _, back, (recon, kl, g, dl, (d_real, d_fake), ms) = jax.vjp(obj, P, has_aux=True)
        one, zero = jnp.ones((), recon.dtype), jnp.zeros((), recon.dtype)
        g_enc, g_dec, gd = (back(c)[0] for c in ((one, zero, zero), (zero, one, zero), (zero, zero, one)))
        new_d, opt_d, gn_d, gd = self._update("discriminator", opt, P, dl, gd, ("discriminator",))
        ga = {**{n: g_enc[n] for n in ENCODER}, **{n: g_dec[n] for n in DECODER}}
        total = recon + self.beta * kl + self.adversarial_weight * g
        new_a, opt_a, gn_a, ga = self._update("autoencoder", opt, P, total, ga, AUTOENCODER)
        new = TrainState(
            params={**P, **new_d, **new_a},
            model_state=ms,
            opt_state={"autoencoder": opt_a, "discriminator": opt_d},
            step=state.step + 1,
        )
        clipped = jnp.maximum(clipped_flag(self.clip, gd), clipped_flag(self.clip, ga))
        values = {"reconstruction": recon, "kl": kl, "g_loss": g, "d_loss": dl, "d_real": d_real, "d_fake": d_fake}
        return Proposal(new, total, jnp.sqrt(gn_d**2 + gn_a**2), clipped, values)

    # --- sums -----------------------------------------------------------------------------------------------
    def zero_sums(self, out_shape, y_dtype) -> dict:
        return {"n": jnp.float32(0), "loss": jnp.float32(0), **{k: jnp.float32(0) for k in KEYS}}

    def add(self, sums, values, mask, weight) -> dict:
        c = mask.sum() * weight
        total = values["reconstruction"] + self.beta * values["kl"] + self.adversarial_weight * values["g_loss"]
        out = {**sums, "n": sums["n"] + c, "loss": sums["loss"] + total * c}
        out.update({k: sums[k] + values[k] * c for k in KEYS})
        return out

    def finalize(self, sums) -> dict:
        n = jnp.maximum(sums["n"], 1.0)
        return {"loss": sums["loss"] / n, **{k: sums[k] / n for k in KEYS}}

    def eval_step(self, state: TrainState, sums, x, y, mask):
        prior = jax.random.normal(jax.random.key(0), (x.shape[0], self.latent_dim), x.dtype)
        t, (d_real, d_fake), _ = self.terms(state.params, state.model_state, x, None, prior, False)
        values = {k: masked_mean(v, mask) for k, v in t.items()}
        values.update(d_real=masked_mean(d_real, mask), d_fake=masked_mean(d_fake, mask))
        return self.add(sums, values, mask, 1.0)

    # --- using a trained model ------------------------------------------------------------------------------
    def predict(self, params, model_state, x):
        """Reconstructions (decoded means)."""
        return self._fwd(params, model_state, x, method=None, train=False)[0]

    def reconstruction_error(self, params, model_state, x):
        """The reconstruction term per example, the mean decoded (the anomaly score of `nnctl predict`)."""
        z = jnp.zeros((x.shape[0], self.latent_dim), x.dtype)
        return self.fakes(params, model_state, x, None, z, False)[0]

    def decode(self, params, model_state, z, labels=None):
        """Decoded codes z, shape (batch, latent_dim) (`nnctl sample --codes`, `--interpolate`)."""
        return self._fwd(params, model_state, z, method="decode", train=False)[0]

    def sample(self, params, model_state, key, n: int, labels=None):
        """Decoded draws from the prior N(0, I)."""
        return self.decode(params, model_state, jax.random.normal(key, (n, self.latent_dim)))

    def encode(self, params, model_state, x, layer: str):
        """`z_mean` / `z_log_var` (`code`: the mean), or the output of a named encoder layer."""
        variables = {"params": params, **model_state}
        if layer in ("z_mean", "z_log_var", "code"):
            mu, log_var = self.net.apply(variables, x, train=False, method="encode")
            return log_var if layer == "z_log_var" else mu
        _, _, acts = self.net.apply(variables, x, train=False, capture=(layer,), method="encode")
        return acts[layer]
