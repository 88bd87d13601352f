"""Supervised and autoencoder training with what plain `Supervised` lacks: activity regularizers on named
layers (sparse: activity_l1, activity_kl; contractive), input corruption (denoising autoencoder) and
on-device augmentation. Each regularizer's value is summed separately and logged (train/activity_l1, ...);
for autoencoders `reconstruction` is the data loss alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from nnctl.augment import augment_batch, corrupt
from nnctl.chain import clipped_flag
from nnctl.engine.loop import Proposal
from nnctl.engine.state import TrainState
from nnctl.objectives.supervised import Supervised

_EPS = 1e-6


def jacobian_norm2(h: Any, x: jax.Array) -> jax.Array:
    """||dh/dx||_F^2 per example of `h` (one example -> flat vector), by autodiff."""
    n_in = x[0].size
    n_out = jax.eval_shape(h, x[0]).shape[0]
    jac = jax.jacrev(h)
    if n_out >= n_in:  # forward mode is cheaper, unless a layer has a reverse-only custom gradient
        try:
            jax.eval_shape(jax.jacfwd(h), x[0])
            jac = jax.jacfwd(h)
        except TypeError:  # e.g. the recurrent layers' hand-written backward pass
            pass
    j = jax.vmap(jac)(x)
    return (j.reshape(x.shape[0], -1) ** 2).sum(1)


def activity_penalties(activity: tuple, acts: dict, mask: jax.Array, jacobian: Any) -> dict:
    """{key: weighted penalty} of each activity regularizer ((key, spec), ...) over the real examples:
    activity_l1 / activity_kl from the captured layer outputs `acts`, contractive from `jacobian(layer)`
    (||dh/dx||_F^2 per example). Shared by `Regularized` and the VAE."""
    n = jnp.maximum(mask.sum(), 1.0)
    out = {}
    for key, r in activity:
        if r.type == "activity_l1":
            h = acts[r.layer].reshape(mask.shape[0], -1)
            out[key] = r.weight * (jnp.abs(h).sum(1) * mask).sum() / n
        elif r.type == "activity_kl":
            h = jnp.clip(acts[r.layer].reshape(mask.shape[0], -1), _EPS, 1 - _EPS)
            rho_hat = jnp.clip((h * mask[:, None]).sum(0) / n, _EPS, 1 - _EPS)
            rho = r.target
            kl = rho * jnp.log(rho / rho_hat) + (1 - rho) * jnp.log((1 - rho) / (1 - rho_hat))
            out[key] = r.weight * kl.sum()
        else:  # contractive
            out[key] = r.weight * (jacobian(r.layer) * mask).sum() / n
    return out


@dataclass(frozen=True, eq=False, kw_only=True)
class Regularized(Supervised):
    activity: tuple = ()  # ((key, regularizer spec), ...)
    corruption: Any = None  # data.corruption spec: training inputs only
    augment: tuple = ()  # data.augment specs: training inputs only
    autoencoder: bool = False

    # --- the regularizers -----------------------------------------------------------------------------
    def _capture_names(self):
        return tuple(dict.fromkeys(r.layer for _, r in self.activity if r.type != "contractive"))

    def forward_acts(self, params, ms, x, train, key):
        """(logits, new model state, {layer: output}) with the captured layers' outputs."""
        names = self._capture_names()
        res, ms = self.forward(params, ms, x, train, key, capture=names)
        out, acts = res if names else (res, {})
        return out, ms, acts

    def _jacobian_norm2(self, params, ms, x, layer):
        """||dh/dx||_F^2 per example, by autodiff through the same network."""
        variables = {"params": params, **ms}

        def h(xi):
            _, acts = self.net.apply(variables, xi[None], train=False, head=False, capture=(layer,))
            return acts[layer].reshape(-1)

        return jacobian_norm2(h, x)

    def activity_terms(self, params, ms, x, acts, mask) -> dict:
        return activity_penalties(self.activity, acts, mask, lambda layer: self._jacobian_norm2(params, ms, x, layer))

    def perturb(self, x, key, with_clean: bool = False):
        """Training inputs: augmented, then corrupted. with_clean: also the augmented, uncorrupted ones
        (an autoencoder's target)."""
        x = augment_batch(self.augment, x, jax.random.fold_in(key, 101)) if self.augment else x
        noisy = corrupt(self.corruption, x, jax.random.fold_in(key, 102)) if self.corruption is not None else x
        return (noisy, x) if with_clean else noisy

    # --- accumulators -----------------------------------------------------------------------------------
    def _extra_keys(self):
        return (("reconstruction",) if self.autoencoder else ()) + tuple(k for k, _ in self.activity)

    def zero_sums(self, out_shape, y_dtype) -> dict:
        sums = super().zero_sums(out_shape, y_dtype)
        sums.update({k: jnp.float32(0) for k in self._extra_keys()})
        return sums

    def _add_extra(self, sums, data_loss, terms, count):
        sums = dict(sums)
        if self.autoencoder:
            sums["reconstruction"] = sums["reconstruction"] + data_loss * count
        for k, v in terms.items():
            sums[k] = sums[k] + v * count
        return sums

    def finalize(self, sums) -> dict:
        out = super().finalize(sums)
        n = jnp.maximum(sums["n"], 1.0)
        out.update({k: sums[k] / n for k in self._extra_keys()})
        return out

    # --- steps ------------------------------------------------------------------------------------------
    def propose(self, state: TrainState, x, y, mask, key) -> Proposal:
        ms = state.model_state
        n = jnp.maximum(mask.sum(), 1.0)
        x_in, x_clean = self.perturb(x, key, with_clean=True)
        if self.autoencoder and self.augment:
            y = x_clean.reshape(y.shape)  # the target is the (augmented) input, never the corrupted one

        def objective(p):
            logits, new_ms, acts = self.forward_acts(p, ms, x_in, True, key)
            data_loss = (self.train_per_example(logits, y) * mask).sum() / n
            terms = self.activity_terms(p, ms, x_in, acts, mask)
            total = data_loss + self.penalty(p) + sum(terms.values(), jnp.float32(0))
            return total, (new_ms, logits, data_loss, terms)

        (loss, (new_ms, logits, data_loss, terms)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        new, grads, gnorm = self.update(state, loss, grads, new_ms)
        return Proposal(new, loss, gnorm, clipped_flag(self.clip, grads), (logits, y, loss, data_loss, terms))

    def add(self, sums, values, mask, weight) -> dict:
        logits, y, loss, data_loss, terms = values
        sums = self.add_batch(sums, logits, y, mask, loss * mask.sum(), weight)
        return self._add_extra(sums, data_loss, terms, mask.sum() * weight)

    def eval_step(self, state: TrainState, sums, x, y, mask):
        params, ms = state.params, state.model_state
        logits, _, acts = self.forward_acts(params, ms, x, False, None)
        n = jnp.maximum(mask.sum(), 1.0)
        data_loss = (self.per_example(logits, y) * mask).sum() / n
        terms = self.activity_terms(params, ms, x, acts, mask)
        loss = data_loss + self.penalty(params) + sum(terms.values(), jnp.float32(0))
        sums = self.add_batch(sums, logits, y, mask, loss * mask.sum(), 1.0)
        return self._add_extra(sums, data_loss, terms, mask.sum())
