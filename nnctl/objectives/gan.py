"""Generative adversarial network: a generator G (noise -> example) and a discriminator D (example -> logit),
each with its own Optax optimizer (train.generator, train.discriminator). One training step, jitted as a
whole, updates D on a real and a generated batch, then G against the updated D:

    bce (non-saturating):  L_D = -log s(D(x)) - log(1 - s(D(G(z)))),   L_G = -log s(D(G(z)))
    least_squares (LSGAN): L_D = 1/2 (D(x) - 1)^2 + 1/2 D(G(z))^2,      L_G = 1/2 (D(G(z)) - 1)^2

Conditional (model.conditional): the one-hot label is appended to G's noise and to D's input; generated
examples take the labels of the real batch. Logged per epoch: d_loss, g_loss, d_real and d_fake (D's mean
probability on real and generated examples); `loss` is d_loss + g_loss.

Each network's kernel regularizers are added to its own loss (and so to the logged d_loss / g_loss);
`data.augment` augments the real examples the discriminator sees in training; `train.freeze`, `trainable:
false` layers and `train.param_groups` act through each network's chain; `precision: bf16` computes both
networks in bfloat16 (nnctl.engine.step.forward)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from nnctl.augment import augment_batch
from nnctl.chain import Chain, clipped_flag
from nnctl.engine.loop import Proposal
from nnctl.engine.state import TrainState
from nnctl.engine.step import apply_update, forward, masked_mean
from nnctl.objectives.supervised import kernel_penalty

KEYS = ("d_loss", "g_loss", "d_real", "d_fake")
PARTS = ("generator", "discriminator")


@dataclass(frozen=True, eq=False, kw_only=True)
class GAN:
    net: Any  # nets.GANNet
    kind: str  # bce | least_squares
    # one optimizer per network: {"generator": .., "discriminator": ..}, each built on {part: its parameters}
    # so that freeze globs, trainable: false layers and param_groups see paths such as generator/dense_0/kernel
    chains: dict[str, Chain]
    latent_dim: int
    conditional: bool = False
    clip: Any = None
    regularizers: tuple = ()  # kernel regularizers ((generator/<layer> or discriminator/<layer>, l1, l2), ...)
    augment: tuple = ()  # data.augment: the real examples the discriminator sees in training
    compute_dtype: Any = None  # e.g. jnp.bfloat16: forward/backward in it; weights and optimizer stay float32

    @property
    def tx_g(self) -> Any:
        return self.chains["generator"].tx

    @property
    def tx_d(self) -> Any:
        return self.chains["discriminator"].tx

    @property
    def chain(self) -> Chain:
        """The chain whose learning rate is logged: the generator's."""
        return self.chains["generator"]

    @property
    def lr(self) -> Any:
        return self.chain.lr

    def describe(self) -> str:
        return "; ".join(f"{part}: {c.description}" for part, c in self.chains.items())

    def init(self, key, input_shape) -> TrainState:
        x = jnp.zeros((1, *input_shape), jnp.float32)
        variables = self.net.init({"params": key, "dropout": key}, x, train=False)
        p = variables["params"]
        return TrainState(
            params=p,
            model_state={k: v for k, v in variables.items() if k != "params"},
            opt_state={part: self.chains[part].tx.init({part: p[part]}) for part in PARTS},
            step=jnp.int32(0),
        )

    def _fwd(self, params, ms, *args, train: bool = False, key=None, method: str):
        return forward(
            self.net, params, ms, *args, train=train, key=key, compute_dtype=self.compute_dtype, method=method
        )

    def _update(self, part: str, opt: Any, params: Any, loss: jax.Array, grads: Any):
        """`apply_update` of one network's chain: (new params, optimizer state, gradient norm, gradients)."""
        c = self.chains[part]
        new, o, gnorm, g = apply_update(c.tx, c.trainable, opt[part], {part: params}, loss, {part: grads})
        return new[part], o, gnorm, g[part]

    # --- losses ---------------------------------------------------------------------------------------------
    def d_loss(self, real, fake):
        if self.kind == "bce":
            return jax.nn.softplus(-real) + jax.nn.softplus(fake)
        return 0.5 * (real - 1.0) ** 2 + 0.5 * fake**2

    def g_loss(self, fake):
        if self.kind == "bce":
            return jax.nn.softplus(-fake)
        return 0.5 * (fake - 1.0) ** 2

    def penalised(self, loss, params, part: str):
        """`loss` plus the kernel regularizers of the layers of `part` (the network that owns them)."""
        regs = tuple(r for r in self.regularizers if r[0].startswith(f"{part}/"))
        return loss + kernel_penalty(params, regs) if regs else loss

    def _prob(self, logit):
        return jax.nn.sigmoid(logit) if self.kind == "bce" else logit

    def _labels(self, y):
        return y.reshape(y.shape[0], -1)[:, 0].astype(jnp.int32) if self.conditional else None

    # --- accumulators -----------------------------------------------------------------------------------------
    def zero_sums(self, out_shape, y_dtype) -> dict:
        return {"n": jnp.float32(0), "loss": jnp.float32(0), **{k: jnp.float32(0) for k in KEYS}}

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
    def _d_objective(self, P, ms, real, z, labels, mask, keys):
        """The discriminator's objective as a function of its parameters: real vs generated (G fixed)."""

        def objective(dp):
            p = {**P, "discriminator": dp}
            fake, m = self._fwd(p, ms, z, labels, train=True, key=keys[0], method="generate")
            real_logit, m = self._fwd(p, m, real, labels, train=True, key=keys[1], method="discriminate")
            fake_logit, m = self._fwd(
                p, m, jax.lax.stop_gradient(fake), labels, train=True, key=keys[2], method="discriminate"
            )
            loss = self.penalised(masked_mean(self.d_loss(real_logit, fake_logit), mask), p, "discriminator")
            return loss, (m, masked_mean(self._prob(real_logit), mask), masked_mean(self._prob(fake_logit), mask))

        return objective

    def _g_objective(self, P, ms, z, labels, mask, key):
        """The generator's objective against the (updated) discriminator."""

        def objective(gp):
            p = {**P, "generator": gp}
            fake, m = self._fwd(p, ms, z, labels, train=True, key=key, method="generate")
            logit, m = self._fwd(p, m, fake, labels, train=True, key=key, method="discriminate")
            return self.penalised(masked_mean(self.g_loss(logit), mask), p, "generator"), m

        return objective

    def propose(self, state: TrainState, x, y, mask, key) -> Proposal:
        P, ms, opt = state.params, state.model_state, state.opt_state
        labels = self._labels(y)
        k = jax.random.split(key, 6)
        z1 = jax.random.normal(k[0], (x.shape[0], self.latent_dim), x.dtype)
        z2 = jax.random.normal(k[1], (x.shape[0], self.latent_dim), x.dtype)
        real = augment_batch(self.augment, x, jax.random.fold_in(key, 101)) if self.augment else x

        d_obj = self._d_objective(P, ms, real, z1, labels, mask, k[2:5])
        (dl, (ms_d, d_real, d_fake)), gd = jax.value_and_grad(d_obj, has_aux=True)(P["discriminator"])
        new_d, opt_d, gn_d, gd = self._update("discriminator", opt, P["discriminator"], dl, gd)

        g_obj = self._g_objective({**P, "discriminator": new_d}, ms_d, z2, labels, mask, k[5])
        (gl, ms_g), gg = jax.value_and_grad(g_obj, has_aux=True)(P["generator"])
        new_g, opt_g, gn_g, gg = self._update("generator", opt, P["generator"], gl, gg)

        new = TrainState(
            params={**P, "generator": new_g, "discriminator": new_d},
            model_state=ms_g,
            opt_state={"generator": opt_g, "discriminator": opt_d},
            step=state.step + 1,
        )
        gnorm = jnp.sqrt(gn_d**2 + gn_g**2)
        clipped = jnp.maximum(clipped_flag(self.clip, gd), clipped_flag(self.clip, gg))  # either network clipped
        values = {"d_loss": dl, "g_loss": gl, "d_real": d_real, "d_fake": d_fake}
        return Proposal(new, dl + gl, gnorm, clipped, values)

    def add(self, sums, values, mask, weight) -> dict:
        return self._add(sums, values, mask, weight)

    def eval_step(self, state: TrainState, sums, x, y, mask):
        P, ms = state.params, state.model_state
        labels = self._labels(y)
        z = jax.random.normal(jax.random.key(0), (x.shape[0], self.latent_dim), x.dtype)
        fake = self._fwd(P, ms, z, labels, method="generate")[0]
        real_logit = self._fwd(P, ms, x, labels, method="discriminate")[0]
        fake_logit = self._fwd(P, ms, fake, labels, method="discriminate")[0]
        values = {
            "d_loss": self.penalised(masked_mean(self.d_loss(real_logit, fake_logit), mask), P, "discriminator"),
            "g_loss": self.penalised(masked_mean(self.g_loss(fake_logit), mask), P, "generator"),
            "d_real": masked_mean(self._prob(real_logit), mask),
            "d_fake": masked_mean(self._prob(fake_logit), mask),
        }
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
