"""Generative adversarial network: a generator G (noise -> example) and a discriminator D (example -> logit),
each with its own Optax optimizer (train.generator, train.discriminator). One training step, jitted as a
whole, updates D on a real and a generated batch (`model.adversarial.n_critic` times, fresh noise each time,
the same real batch, as Keras' WGAN-GP example), then G against the updated D. The losses (bce with the
non-saturating or the notes' minimax generator loss, least_squares, wasserstein with weight clipping or a
gradient penalty) are written out in nnctl.objectives.gan_losses.

Conditional (model.conditional): the one-hot label is appended to G's noise and to D's input; generated
examples take the labels of the real batch. ACGAN (adversarial.auxiliary_classifier): the label goes to G
only and D's extra outputs classify real and generated examples. InfoGAN (adversarial.info_codes): codes are
appended to the noise and D's extra outputs (the Q head) predict them from generated examples; both
networks minimise weight * L_I. Logged per epoch: d_loss, g_loss, d_real and d_fake (D's mean probability
on real and generated examples; the mean raw score for least_squares and wasserstein), plus
gradient_penalty, class_loss (D's on real examples), class_accuracy or info_loss when used; `loss` is
d_loss + g_loss.

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
from nnctl.objectives import gan_losses as L
from nnctl.objectives.specs import Adversarial
from nnctl.objectives.supervised import kernel_penalty

KEYS = ("d_loss", "g_loss", "d_real", "d_fake")
PARTS = ("generator", "discriminator")


@dataclass(frozen=True)
class Codes:
    """A batch of generator inputs: the noise with InfoGAN's codes appended, and those codes."""

    z: jax.Array
    cat: jax.Array | None = None
    cont: jax.Array | None = None


@dataclass(frozen=True, eq=False, kw_only=True)
class GAN:
    net: Any  # nets.GANNet
    kind: str  # bce | least_squares | wasserstein
    # one optimizer per network: {"generator": .., "discriminator": ..}, each built on {part: its parameters}
    # so that freeze globs, trainable: false layers and param_groups see paths such as generator/dense_0/kernel
    chains: dict[str, Chain]
    latent_dim: int
    conditional: bool = False
    clip: Any = None
    regularizers: tuple = ()  # kernel regularizers ((generator/<layer> or discriminator/<layer>, l1, l2), ...)
    augment: tuple = ()  # data.augment: the real examples the discriminator sees in training
    compute_dtype: Any = None  # e.g. jnp.bfloat16: forward/backward in it; weights and optimizer stay float32
    adversarial: Any = None  # nnctl.objectives.specs.Adversarial (None: the defaults)

    @property
    def adv(self) -> Adversarial:
        return self.adversarial or Adversarial()

    @property
    def auxiliary(self) -> int:
        """ACGAN's class count (0: no auxiliary classifier)."""
        return self.net.num_classes if self.adv.auxiliary_classifier else 0

    @property
    def keys(self) -> tuple[str, ...]:
        a, extra = self.adv, tuple[str, ...]()
        if a.gradient_penalty is not None:
            extra += ("gradient_penalty",)
        if a.auxiliary_classifier:
            extra += ("class_loss", "class_accuracy")
        if a.info_codes is not None:
            extra += ("info_loss",)
        return KEYS + extra

    @property
    def label_count(self) -> int:
        """How many labels `sample --label` chooses from: the classes of a conditional gan or ACGAN, the
        categories of InfoGAN's categorical code; 0: none."""
        if self.net.num_classes:
            return self.net.num_classes
        return self.adv.info_codes.categorical if self.adv.info_codes is not None else 0

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
        return L.d_loss(self.kind, real, fake)

    def g_loss(self, fake):
        return L.g_loss(self.kind, fake, self.adv.generator_loss == "minimax")

    def penalised(self, loss, params, part: str):
        """`loss` plus the kernel regularizers of the layers of `part` (the network that owns them)."""
        regs = tuple(r for r in self.regularizers if r[0].startswith(f"{part}/"))
        return loss + kernel_penalty(params, regs) if regs else loss

    def _prob(self, logit):
        return jax.nn.sigmoid(logit) if self.kind == "bce" else logit

    def _labels(self, y):
        return y.reshape(y.shape[0], -1)[:, 0].astype(jnp.int32) if self.net.num_classes else None

    def noise(self, key, n: int, dtype=jnp.float32, cat=None) -> Codes:
        """Noise N(0, I) with InfoGAN's codes appended (categorical: `cat` or uniform draws; continuous:
        uniform on [-1, 1])."""
        z = jax.random.normal(key, (n, self.latent_dim), dtype)
        info = self.adv.info_codes
        if info is None:
            return Codes(z)
        parts, cont = [z], None
        if info.categorical:
            if cat is None:
                cat = jax.random.randint(jax.random.fold_in(key, 1), (n,), 0, info.categorical)
            parts.append(jax.nn.one_hot(cat, info.categorical, dtype=dtype))
        if info.continuous:
            cont = jax.random.uniform(jax.random.fold_in(key, 2), (n, info.continuous), dtype, -1.0, 1.0)
            parts.append(cont)
        return Codes(jnp.concatenate(parts, -1), cat if info.categorical else None, cont)

    def extra_terms(self, real_out, fake_out, labels, codes: Codes, mask, for_d: bool) -> tuple[jax.Array, dict]:
        """ACGAN's class cross-entropy and InfoGAN's L_I (weighted, batch means) and what they log."""
        a, total, logs = self.adv, jnp.float32(0), {}
        if a.auxiliary_classifier:
            fake_ce = masked_mean(L.class_loss(fake_out[:, 1:], labels), mask)
            if for_d:
                real_ce = masked_mean(L.class_loss(real_out[:, 1:], labels), mask)
                hit = (jnp.argmax(real_out[:, 1:], -1) == labels).astype(jnp.float32)
                logs = {"class_loss": real_ce, "class_accuracy": masked_mean(hit, mask)}
                total = total + a.auxiliary_weight * (real_ce + fake_ce)
            else:
                total = total + a.auxiliary_weight * fake_ce
        if a.info_codes is not None:
            li = masked_mean(L.info_loss(fake_out[:, 1:], codes.cat, codes.cont, a.info_codes.continuous_weight), mask)
            total = total + a.info_codes.weight * li
            if for_d:
                logs["info_loss"] = li
        return total, logs

    # --- accumulators -----------------------------------------------------------------------------------------
    def zero_sums(self, out_shape, y_dtype) -> dict:
        return {"n": jnp.float32(0), "loss": jnp.float32(0), **{k: jnp.float32(0) for k in self.keys}}

    def _add(self, sums, values, mask, w):
        c = mask.sum() * w
        sums = dict(sums)
        sums["n"] = sums["n"] + c
        sums["loss"] = sums["loss"] + (values["d_loss"] + values["g_loss"]) * c
        for k in self.keys:
            sums[k] = sums[k] + values[k] * c
        return sums

    def finalize(self, sums) -> dict:
        n = jnp.maximum(sums["n"], 1.0)
        return {"loss": sums["loss"] / n, **{k: sums[k] / n for k in self.keys}}

    # --- steps --------------------------------------------------------------------------------------------------
    def _d_objective(self, P, ms, real, codes: Codes, labels, mask, keys, train: bool = True):
        """The discriminator's objective as a function of its parameters: real vs generated (G fixed)."""

        def objective(dp):
            p = {**P, "discriminator": dp}
            fake, m = self._fwd(p, ms, codes.z, labels, train=train, key=keys[0], method="generate")
            fake = jax.lax.stop_gradient(fake)
            r, m = self._fwd(p, m, real, labels, train=train, key=keys[1], method="discriminate_all")
            f, m = self._fwd(p, m, fake, labels, train=train, key=keys[2], method="discriminate_all")
            loss = masked_mean(self.d_loss(r[:, 0], f[:, 0]), mask)
            extra, logs = self.extra_terms(r, f, labels, codes, mask, True)
            loss = loss + extra if logs else loss
            gp = self.adv.gradient_penalty
            if gp is not None:

                def critic(v):
                    return self._fwd(p, m, v, labels, train=train, key=keys[2], method="discriminate")[0]

                pen = masked_mean(L.gradient_penalty(critic, real, fake, jax.random.fold_in(keys[0], 7)), mask)
                loss, logs = loss + gp * pen, {**logs, "gradient_penalty": pen}
            loss = self.penalised(loss, p, "discriminator")
            probs = {"d_real": masked_mean(self._prob(r[:, 0]), mask), "d_fake": masked_mean(self._prob(f[:, 0]), mask)}
            return loss, (m, {**probs, **logs})

        return objective

    def _g_objective(self, P, ms, codes: Codes, labels, mask, key, train: bool = True):
        """The generator's objective against the (updated) discriminator."""

        def objective(gp):
            p = {**P, "generator": gp}
            fake, m = self._fwd(p, ms, codes.z, labels, train=train, key=key, method="generate")
            out, m = self._fwd(p, m, fake, labels, train=train, key=key, method="discriminate_all")
            extra, _ = self.extra_terms(None, out, labels, codes, mask, False)
            loss = masked_mean(self.g_loss(out[:, 0]), mask)
            loss = loss + extra if (self.adv.auxiliary_classifier or self.adv.info_codes) else loss
            return self.penalised(loss, p, "generator"), m

        return objective

    def _critic_step(self, P, dp, opt_d, ms, real, labels, mask, k_z, keys):
        """One discriminator update: (params, optimizer state, model state, loss, logs, gradient norm, grads)."""
        codes = self.noise(k_z, real.shape[0], real.dtype)
        d_obj = self._d_objective({**P, "discriminator": dp}, ms, real, codes, labels, mask, keys)
        (dl, (ms_d, logs)), gd = jax.value_and_grad(d_obj, has_aux=True)(dp)
        new_d, o, gn, gd = self._update("discriminator", {"discriminator": opt_d}, dp, dl, gd)
        if self.adv.clip_value is not None:
            trainable = self.chains["discriminator"].trainable["discriminator"]
            new_d = L.clip_weights(new_d, self.adv.clip_value, trainable)
        return new_d, o, ms_d, dl, logs, gn, gd

    def _critic(self, P, ms, opt, real, labels, mask, k):
        """`n_critic` discriminator updates (the last one's loss, logs, gradient norm and clip flag)."""
        if self.adv.n_critic == 1:
            new_d, o, ms, dl, logs, gn, gd = self._critic_step(
                P, P["discriminator"], opt["discriminator"], ms, real, labels, mask, k[0], k[2:5]
            )
            return new_d, o, ms, dl, logs, gn, clipped_flag(self.clip, gd)

        def body(carry, i):
            dp, o, m = carry
            ks = jax.random.split(jax.random.fold_in(k[0], i), 4)
            dp, o, m, dl, logs, gn, gd = self._critic_step(P, dp, o, m, real, labels, mask, ks[0], ks[1:])
            return (dp, o, m), (dl, logs, gn, clipped_flag(self.clip, gd))

        (new_d, o, ms), (dl, logs, gn, cl) = jax.lax.scan(
            body, (P["discriminator"], opt["discriminator"], ms), jnp.arange(self.adv.n_critic)
        )
        return new_d, o, ms, dl[-1], jax.tree.map(lambda v: v[-1], logs), gn[-1], cl.max()

    def propose(self, state: TrainState, x, y, mask, key) -> Proposal:
        P, ms, opt = state.params, state.model_state, state.opt_state
        labels = self._labels(y)
        k = jax.random.split(key, 6)
        real = augment_batch(self.augment, x, jax.random.fold_in(key, 101)) if self.augment else x
        new_d, opt_d, ms_d, dl, logs, gn_d, clipped_d = self._critic(P, ms, opt, real, labels, mask, k)

        codes = self.noise(k[1], x.shape[0], x.dtype)
        g_obj = self._g_objective({**P, "discriminator": new_d}, ms_d, codes, labels, mask, k[5])
        (gl, ms_g), gg = jax.value_and_grad(g_obj, has_aux=True)(P["generator"])
        new_g, opt_g, gn_g, gg = self._update("generator", opt, P["generator"], gl, gg)

        new = TrainState(
            params={**P, "generator": new_g, "discriminator": new_d},
            model_state=ms_g,
            opt_state={"generator": opt_g, "discriminator": opt_d},
            step=state.step + 1,
        )
        gnorm = jnp.sqrt(gn_d**2 + gn_g**2)
        clipped = jnp.maximum(clipped_d, clipped_flag(self.clip, gg))  # either network clipped
        return Proposal(new, dl + gl, gnorm, clipped, {"d_loss": dl, "g_loss": gl, **logs})

    def add(self, sums, values, mask, weight) -> dict:
        return self._add(sums, values, mask, weight)

    def eval_step(self, state: TrainState, sums, x, y, mask):
        P, ms = state.params, state.model_state
        labels = self._labels(y)
        codes = self.noise(jax.random.key(0), x.shape[0], x.dtype)
        keys = (jax.random.key(1), None, None)
        dl, (_, logs) = self._d_objective(P, ms, x, codes, labels, mask, keys, False)(P["discriminator"])
        gl, _ = self._g_objective(P, ms, codes, labels, mask, None, False)(P["generator"])
        return self._add(sums, {"d_loss": dl, "g_loss": gl, **logs}, mask, 1.0)

    # --- using a trained model -----------------------------------------------------------------------------------
    def predict(self, params, model_state, x):
        """The discriminator's probability (bce) or score (least_squares, wasserstein) that each example is real."""
        labels = jnp.zeros((x.shape[0],), jnp.int32) if self.net.num_classes else None  # (as if class 0)
        logit = self.net.apply({"params": params, **model_state}, x, labels, method="discriminate")
        return self._prob(logit)[:, None]

    def decode(self, params, model_state, z, labels=None):
        """Generated examples from given generator inputs z: the noise with InfoGAN's codes appended
        (`nnctl sample --codes`); a conditional gan or ACGAN takes `labels` (default: the classes in turn)."""
        if self.net.num_classes and labels is None:
            labels = jnp.arange(z.shape[0]) % self.net.num_classes
        cond = labels if self.net.num_classes else None
        return self.net.apply({"params": params, **model_state}, z, cond, method="generate")

    def sample(self, params, model_state, key, n: int, labels=None):
        """`n` generated examples; `labels` choose the class (conditional, ACGAN) or InfoGAN's category."""
        if self.label_count and labels is None:
            labels = jnp.arange(n) % self.label_count
        info = self.adv.info_codes is not None and self.adv.info_codes.categorical
        codes = self.noise(key, n, cat=labels if info else None)
        return self.decode(params, model_state, codes.z, labels)
