"""The recurrences behind `nnctl.layers.recurrent`: one time step of each cell (`step_fn`), the LSTM and
simple RNN with a hand-written backward pass (`fast_recurrence`), and the masked recurrence of padded
sequences (`masked_recurrence`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp


def step_fn(cell: str, u: int) -> Callable:
    """One time step on direction-batched arrays: (carry, projected input) -> (carry, output).

    carry is h (D, B, u) or (h, c) for the LSTM; `xp` = x W + b for this step, (D, B, G*u)."""

    def mm(h, rk):
        if h.shape[0] == 1:  # one direction: a plain 2-D matmul is cheaper on XLA:CPU than a batched one
            return (h[0] @ rk[0])[None]
        return jnp.einsum("dbu,dug->dbg", h, rk)

    if cell == "simple_rnn":

        def step(rk, h, xp):
            h = jnp.tanh(xp + mm(h, rk))
            return h, h
    elif cell == "lstm":

        def step(rk, carry, xp):
            h, c = carry
            i, f, g, o = jnp.split(xp + mm(h, rk), 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h
    else:

        def step(rk, h, xp):
            xz, xr, xh = jnp.split(xp, 3, axis=-1)
            rz, rr, rh = jnp.split(rk, 3, axis=-1)
            z = jax.nn.sigmoid(xz + mm(h, rz))
            r = jax.nn.sigmoid(xr + mm(h, rr))
            hh = jnp.tanh(xh + mm(r * h, rh))
            h = z * h + (1.0 - z) * hh
            return h, h

    return step


# ---- LSTM and simple RNN with a hand-written backward pass --------------------------------------------
#
# Autodiff of `lax.scan` accumulates the recurrent kernel's gradient inside the backward loop: a small
# (units x batch) @ (batch x G*units) matmul per step. Here the backward loop does only what is sequential
# (the gate gradients and dh_{t-1} = dz_t U^T); the kernel gradient is one (T*B)-long matmul after it, and
# the gate activations are saved by the forward pass instead of being recomputed. Same numbers as autodiff
# to float rounding (tests/test_layers.py checks values and gradients). Reverse mode only: callers that
# need forward mode (jacfwd) use jacrev instead.


def _mm(h, rk):
    if h.shape[0] == 1:  # one direction: a plain 2-D matmul is cheaper on XLA:CPU than a batched one
        return (h[0] @ rk[0])[None]
    return jnp.einsum("dbu,dug->dbg", h, rk)


def _mm_t(dz, rk):
    if dz.shape[0] == 1:
        return (dz[0] @ rk[0].T)[None]
    return jnp.einsum("dbg,dug->dbu", dz, rk)


def _kernel_grad(hs, dzs):
    """sum_t h_{t-1}^T dz_t per direction, as one matmul over all steps."""
    t, d, b, u = hs.shape
    if d == 1:
        return (hs[:, 0].reshape(t * b, u).T @ dzs[:, 0].reshape(t * b, -1))[None]
    return jnp.einsum("tdbu,tdbg->dug", hs, dzs)


def _lstm_gates(z, c):
    i, f, g, o = jnp.split(z, 4, axis=-1)
    i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
    c = f * c + i * g
    tc = jnp.tanh(c)
    return o * tc, c, (i, f, g, o, tc)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def fast_recurrence(cell: str, rk, xp, carry0):
    """(carry_T, outputs) of `cell` ("lstm" or "simple_rnn") over projected inputs xp (T, D, B, G*u)."""
    return _fast_fwd(cell, rk, xp, carry0)[0]


def _fast_fwd(cell, rk, xp, carry0):
    if cell == "lstm":

        def step(carry, x):
            h, c = carry
            h2, c2, acts = _lstm_gates(x + _mm(h, rk), c)
            return (h2, c2), (h2, h, c, acts)

        carry, (ys, hs, cs, acts) = jax.lax.scan(step, carry0, xp)
        return (carry, ys), (rk, hs, cs, acts)

    def rnn_step(h, x):
        h2 = jnp.tanh(x + _mm(h, rk))
        return h2, (h2, h)

    h, (ys, hs) = jax.lax.scan(rnn_step, carry0, xp)
    return (h, ys), (rk, hs, ys)


def _fast_bwd(cell, res, g):
    dcarry, dys = g
    if cell == "lstm":
        rk, hs, cs, acts = res

        def step(carry, inp):
            dh, dc = carry
            dy, c_prev, (i, f, gg, o, tc) = inp
            dh = dh + dy
            dct = dc + dh * o * (1.0 - tc * tc)
            dz = jnp.concatenate(
                [
                    dct * gg * i * (1.0 - i),
                    dct * c_prev * f * (1.0 - f),
                    dct * i * (1.0 - gg * gg),
                    dh * tc * o * (1.0 - o),
                ],
                axis=-1,
            )
            return (_mm_t(dz, rk), dct * f), dz

        dcarry0, dzs = jax.lax.scan(step, dcarry, (dys, cs, acts), reverse=True)
    else:
        rk, hs, ys = res

        def step(dh, inp):
            dy, h = inp
            dz = (dh + dy) * (1.0 - h * h)
            return _mm_t(dz, rk), dz

        dcarry0, dzs = jax.lax.scan(step, dcarry, (dys, ys), reverse=True)
    return _kernel_grad(hs, dzs).astype(rk.dtype), dzs, dcarry0


fast_recurrence.defvjp(_fast_fwd, _fast_bwd)


def masked_recurrence(step: Callable, carry0, xp, mask, tbptt: int | None = None):
    """(carry_T, outputs) of `step` (carry, xp_t) -> (carry, y_t) over xp (T, D, B, G*u), by plain autodiff
    of `lax.scan`. `mask` (T, D, B) 0/1 or None: at a masked step the state is carried over unchanged and
    the output is zero (Keras' semantics). `tbptt` k: truncated backpropagation through time, the state
    entering every k-th step (k, 2k, ...) is a constant for the gradient (its value is carried on), so a
    loss at step t reaches the steps of its own chunk only: at most k steps back."""

    def body(carry, inp):
        p, m, t = inp
        if tbptt is not None:
            cut = t % tbptt == 0
            carry = jax.tree.map(lambda c: jnp.where(cut, jax.lax.stop_gradient(c), c), carry)
        new, y = step(carry, p)
        if m is None:
            return new, y
        keep = m[..., None] > 0
        new = jax.tree.map(lambda n, o: jnp.where(keep, n, o), new, carry)
        return new, jnp.where(keep, y, jnp.zeros_like(y))

    return jax.lax.scan(body, carry0, (xp, mask, jnp.arange(xp.shape[0])))
