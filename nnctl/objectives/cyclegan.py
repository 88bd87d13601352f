"""CycleGAN: unpaired translation between two domains A and B (class 0 and class 1 of the data). Two
generators of the spec's `generator` architecture, G: A -> B (`generator_ab`) and F: B -> A (`generator_ba`),
and two discriminators of the `discriminator` architecture, D_A (real A vs F(b)) and D_B (real B vs G(a)).
One jitted step updates both discriminators (one optimizer, train.discriminator), then both generators (one
optimizer, train.generator) on

    L_G = adv(D_B(G(a))) + adv(D_A(F(b))) + cycle_weight * (|F(G(a)) - a|_1 + |G(F(b)) - b|_1)
          + identity_weight * (|G(b) - b|_1 + |F(a) - a|_1)

with adv the generator loss of train.loss (nnctl.objectives.gan_losses; least_squares is the paper's) and
|.|_1 the mean absolute error over an example's values. A batch mixes both domains; each term averages over
the examples of its domain (the batch's labels say which), so A and B examples are never paired.
Logged: d_loss (D_A + D_B), g_loss (the two adversarial terms), cycle (the two L1 cycle errors), identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from nnctl.chain import Chain, clipped_flag
from nnctl.engine.loop import Proposal
from nnctl.engine.state import TrainState
from nnctl.engine.step import apply_update, forward
from nnctl.layers.graph import Network
from nnctl.objectives import gan_losses as L
from nnctl.objectives.parts import ChainedParts

NETS = ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b")
GROUPS: dict[str, tuple[str, ...]] = {
    "generator": ("generator_ab", "generator_ba"),
    "discriminator": ("discriminator_a", "discriminator_b"),
}
KEYS = ("d_loss", "g_loss", "cycle", "identity")


class CycleGANNet(nn.Module):
    generator: tuple  # the layer specs of both generators
    discriminator: tuple  # ... and of both discriminators

    def setup(self):
        self.generator_ab, self.generator_ba = Network(self.generator), Network(self.generator)
        self.discriminator_a, self.discriminator_b = Network(self.discriminator), Network(self.discriminator)

    def translate(self, x, to_b: bool = True, train: bool = False):
        """G(x) (A -> B) or F(x) (B -> A), the generator's last activation applied."""
        return (self.generator_ab if to_b else self.generator_ba)(x, train)

    def score(self, x, domain_b: bool = True, train: bool = False):
        """D_B(x) or D_A(x): the raw output (logit) per example, shape (batch,)."""
        out = (self.discriminator_b if domain_b else self.discriminator_a)(x, train, False)
        return out.reshape(out.shape[0], -1)[:, 0]

    def __call__(self, x, train: bool = False, head: bool = True, capture: tuple = ()):
        self.translate(self.translate(x, True, train), False, train)  # creates both generators' parameters
        logits = jnp.stack([self.score(x, False, train), self.score(x, True, train)], -1)
        return jax.nn.sigmoid(logits) if head else logits


def _mean(v, w):
    """The mean of per-example values `v` over the examples weighted by `w` (one domain's rows)."""
    return jnp.sum(v * w) / jnp.maximum(jnp.sum(w), 1.0)


def _l1(a, b):
    return jnp.abs(a - b).reshape(a.shape[0], -1).mean(axis=1)


@dataclass(frozen=True, eq=False, kw_only=True)
class CycleGAN(ChainedParts):
    net: Any  # CycleGANNet
    kind: str  # bce | least_squares | wasserstein (nnctl.objectives.gan_losses)
    chains: dict[str, Chain]  # "generator": over {generator_ab, generator_ba}; "discriminator": over D_A, D_B
    cycle_weight: float = 10.0
    identity_weight: float = 0.0
    clip: Any = None
    compute_dtype: Any = None

    GROUPS: ClassVar[dict[str, tuple[str, ...]]] = GROUPS
    LOGGED: ClassVar[str] = "generator"

    def _fwd(self, p, ms, *args, method: str, train: bool, key=None):
        return forward(self.net, p, ms, *args, train=train, key=key, compute_dtype=self.compute_dtype, method=method)

    @staticmethod
    def _domains(y, mask):
        b = (y.reshape(y.shape[0], -1)[:, 0] == 1).astype(jnp.float32)
        return mask * (1.0 - b), mask * b  # (weights of the A rows, of the B rows)

    def d_terms(self, p, ms, x, wa, wb, train, key=None):
        """(D_A + D_B loss, new model state): real rows of each domain against the other domain translated."""
        fake_b, ms = self._fwd(p, ms, x, True, method="translate", train=train, key=key)
        fake_a, ms = self._fwd(p, ms, x, False, method="translate", train=train, key=key)
        fake_a, fake_b = jax.lax.stop_gradient(fake_a), jax.lax.stop_gradient(fake_b)
        real_a, ms = self._fwd(p, ms, x, False, method="score", train=train, key=key)
        real_b, ms = self._fwd(p, ms, x, True, method="score", train=train, key=key)
        on_fa, ms = self._fwd(p, ms, fake_a, False, method="score", train=train, key=key)
        on_fb, ms = self._fwd(p, ms, fake_b, True, method="score", train=train, key=key)
        # each domain's real rows, and the other domain's rows translated into it, averaged separately
        d_a = _mean(L.d_real(self.kind, real_a), wa) + _mean(L.d_fake(self.kind, on_fa), wb)
        d_b = _mean(L.d_real(self.kind, real_b), wb) + _mean(L.d_fake(self.kind, on_fb), wa)
        return d_a + d_b, ms

    def g_terms(self, p, ms, x, wa, wb, train, key=None):
        """(total generator loss, (adversarial, cycle, identity), new model state)."""
        fake_b, ms = self._fwd(p, ms, x, True, method="translate", train=train, key=key)  # G(a) for the A rows
        fake_a, ms = self._fwd(p, ms, x, False, method="translate", train=train, key=key)  # F(b) for the B rows
        back_a, ms = self._fwd(p, ms, fake_b, False, method="translate", train=train, key=key)  # F(G(a))
        back_b, ms = self._fwd(p, ms, fake_a, True, method="translate", train=train, key=key)  # G(F(b))
        s_b, ms = self._fwd(p, ms, fake_b, True, method="score", train=train, key=key)
        s_a, ms = self._fwd(p, ms, fake_a, False, method="score", train=train, key=key)
        adv = _mean(L.g_loss(self.kind, s_b), wa) + _mean(L.g_loss(self.kind, s_a), wb)
        cycle = _mean(_l1(back_a, x), wa) + _mean(_l1(back_b, x), wb)
        # identity: G leaves B examples as they are, F leaves A examples (G(b) is fake_b on the B rows)
        identity = _mean(_l1(fake_b, x), wb) + _mean(_l1(fake_a, x), wa)
        total = adv + self.cycle_weight * cycle + self.identity_weight * identity
        return total, (adv, cycle, identity), ms

    def _update(self, group: str, opt, params, loss, grads):
        c = self.chains[group]
        sub = {n: params[n] for n in GROUPS[group]}
        new, o, gnorm, g = apply_update(c.tx, c.trainable, opt[group], sub, loss, {n: grads[n] for n in sub})
        return new, o, gnorm, g

    def propose(self, state: TrainState, x, y, mask, key) -> Proposal:
        P, ms, opt = state.params, state.model_state, state.opt_state
        wa, wb = self._domains(y, mask)
        k1, k2 = jax.random.split(key)

        def d_obj(dp):
            return self.d_terms({**P, **dp}, ms, x, wa, wb, True, k1)

        dp0 = {n: P[n] for n in GROUPS["discriminator"]}
        (dl, ms), gd = jax.value_and_grad(d_obj, has_aux=True)(dp0)
        new_d, opt_d, gn_d, gd = self._update("discriminator", opt, P, dl, gd)
        P2 = {**P, **new_d}

        def g_obj(gp):
            total, parts, m = self.g_terms({**P2, **gp}, ms, x, wa, wb, True, k2)
            return total, (parts, m)

        (gl, ((adv, cycle, ident), ms)), gg = jax.value_and_grad(g_obj, has_aux=True)(
            {n: P[n] for n in GROUPS["generator"]}
        )
        new_g, opt_g, gn_g, gg = self._update("generator", opt, P, gl, gg)
        new = TrainState(
            params={**P2, **new_g},
            model_state=ms,
            opt_state={"generator": opt_g, "discriminator": opt_d},
            step=state.step + 1,
        )
        clipped = jnp.maximum(clipped_flag(self.clip, gd), clipped_flag(self.clip, gg))
        values = {"d_loss": dl, "g_loss": adv, "cycle": cycle, "identity": ident}
        return Proposal(new, dl + gl, jnp.sqrt(gn_d**2 + gn_g**2), clipped, values)

    # --- sums -----------------------------------------------------------------------------------------------
    def zero_sums(self, out_shape, y_dtype) -> dict:
        return {"n": jnp.float32(0), "loss": jnp.float32(0), **{k: jnp.float32(0) for k in KEYS}}

    def add(self, sums, values, mask, weight) -> dict:
        c = mask.sum() * weight
        total = values["d_loss"] + values["g_loss"]
        total = total + self.cycle_weight * values["cycle"] + self.identity_weight * values["identity"]
        out = {**sums, "n": sums["n"] + c, "loss": sums["loss"] + total * c}
        out.update({k: sums[k] + values[k] * c for k in KEYS})
        return out

    def finalize(self, sums) -> dict:
        n = jnp.maximum(sums["n"], 1.0)
        return {"loss": sums["loss"] / n, **{k: sums[k] / n for k in KEYS}}

    def eval_step(self, state: TrainState, sums, x, y, mask):
        P, ms = state.params, state.model_state
        wa, wb = self._domains(y, mask)
        dl, _ = self.d_terms(P, ms, x, wa, wb, False)
        _, (adv, cycle, ident), _ = self.g_terms(P, ms, x, wa, wb, False)
        return self.add(sums, {"d_loss": dl, "g_loss": adv, "cycle": cycle, "identity": ident}, mask, 1.0)

    # --- using a trained model ------------------------------------------------------------------------------
    def predict(self, params, model_state, x):
        """(D_A, D_B) probabilities (bce; raw scores otherwise) that each example is a real A, a real B."""
        logits = self.net.apply({"params": params, **model_state}, x, head=False)
        return jax.nn.sigmoid(logits) if self.kind == "bce" else logits

    def encode(self, params, model_state, x, layer: str):
        """`generator_ab`: G(x), A translated to B; `generator_ba`: F(x), B translated to A."""
        return self.net.apply({"params": params, **model_state}, x, layer == "generator_ab", method="translate")
