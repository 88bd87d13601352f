"""Flax modules that hold two networks: a VAE (encoder, decoder) and a GAN (generator, discriminator).

Their parameters are {"encoder": .., "z_mean": .., "z_log_var": .., "decoder": ..} and
{"generator": .., "discriminator": ..}: paths such as `encoder/dense_0/kernel` are what `inspect params`,
`train.freeze` and `model.init_from` see. `__call__` exists so that `init` creates every variable.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from nnctl.layers.graph import Network


class VAENet(nn.Module):
    encoder: Network
    decoder: Network
    latent_dim: int

    def setup(self):
        self.z_mean = nn.Dense(self.latent_dim)
        self.z_log_var = nn.Dense(self.latent_dim)

    def encode(self, x, train: bool = False, capture: tuple = ()):
        """(mean, log-variance) of q(z | x); with `capture`, also the named encoder layers' outputs."""
        if capture:
            h, acts = self.encoder(x, train, True, capture)
        else:
            h, acts = self.encoder(x, train), {}
        h = h.reshape(h.shape[0], -1)
        mu, log_var = self.z_mean(h), self.z_log_var(h)
        return (mu, log_var, acts) if capture else (mu, log_var)

    def decode(self, z, train: bool = False, head: bool = True):
        return self.decoder(z, train, head)

    def __call__(self, x, train: bool = False, head: bool = True, capture: tuple = ()):
        mu, _ = self.encode(x, train)
        return self.decode(mu, train, head)


class GANNet(nn.Module):
    generator: Network
    discriminator: Network
    latent_dim: int
    num_classes: int = 0  # > 0: the one-hot label is appended to the generator's noise (and D's input, below)
    label_to_discriminator: bool = True  # False for ACGAN: D predicts the class instead of reading it
    code_dim: int = 0  # InfoGAN: the latent codes' width, appended to the noise by the objective

    def _with_label(self, v, labels):
        if not self.num_classes:
            return v
        onehot = jax.nn.one_hot(labels.reshape(-1), self.num_classes, dtype=v.dtype)
        return jnp.concatenate([v.reshape(v.shape[0], -1), onehot], -1)

    def generate(self, z, labels=None, train: bool = False):
        """Examples from noise z (the generator's last activation applied)."""
        return self.generator(self._with_label(z, labels), train)

    def discriminate_all(self, x, labels=None, train: bool = False):
        """The discriminator's raw outputs per example, shape (batch, outputs): the real/fake logit first, then
        ACGAN's class logits or InfoGAN's code predictions."""
        v = self._with_label(x, labels) if self.label_to_discriminator else x
        out = self.discriminator(v, train, False)
        return out.reshape(out.shape[0], -1)

    def discriminate(self, x, labels=None, train: bool = False):
        """The discriminator's raw output (logit) per example, shape (batch,)."""
        return self.discriminate_all(x, labels, train)[:, 0]

    def __call__(self, x, train: bool = False, head: bool = True, capture: tuple = ()):
        labels = jnp.zeros((x.shape[0],), jnp.int32)
        fake = self.generate(jnp.zeros((x.shape[0], self.latent_dim + self.code_dim), x.dtype), labels, train)
        del fake  # generated only so that init creates the generator's parameters
        logits = self.discriminate(x, labels, train)
        return jax.nn.sigmoid(logits) if head else logits
