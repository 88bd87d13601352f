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
# (the gate gradients and dh_{t-1} = dz_t U^T); the kernel gradient is one (T*B)-long matmul after it.
#
# What the LSTM keeps between its passes is chosen for XLA:CPU, where every array a scan stacks is a
# zero-filled (T, ...) buffer plus a copy of each step's slice into it:
# * the forward pass writes the four gate factors dz_gate / dc_t (dz_o / dh_t for the output gate) over the
#   step's projected input xp_t, which that step has just read and nothing reads again: the same
#   (B, 4*units) slot, so no new buffer. Besides them it keeps only o * (1 - tanh(c_t)^2), f and h_t;
#   h_{t-1} for the kernel gradient is h shifted by one step;
# * the backward pass multiplies each step's factors by dc_t (dh_t) and writes dz_t over them, in place
#   again: that buffer is the gradient of xp. The matmul reads dz_t back from the buffer at an index XLA
#   cannot prove equal to the one written (t + a zero carried through the loop): otherwise XLA forwards
#   the product to both the matmul and the write, the two then read the slot unordered and XLA copies the
#   whole buffer on every step;
# * one direction runs on 2-D arrays (the direction axis squeezed out): with the size-1 axis XLA gives the
#   projection a layout of its own and copies it before the loop.
# Without `sequences` only the final state is returned, so no zero cotangent of the outputs is read per step.
# Same numbers as autodiff to float rounding (tests/test_layers.py checks values and gradients). Reverse mode
# only: callers that need forward mode (jacfwd) use jacrev instead.


def _mm(h, rk):
    """h U: (B, u) @ (u, G*u), or per direction over a leading direction axis."""
    if h.ndim == 2:
        return h @ rk
    if h.shape[0] == 1:  # one direction: a plain 2-D matmul is cheaper on XLA:CPU than a batched one
        return (h[0] @ rk[0])[None]
    return jnp.einsum("dbu,dug->dbg", h, rk)


def _mm_t(dz, rk):
    if dz.ndim == 2:
        return dz @ rk.T
    if dz.shape[0] == 1:
        return (dz[0] @ rk[0].T)[None]
    return jnp.einsum("dbg,dug->dbu", dz, rk)


def _kernel_grad(hs, dzs):
    """sum_t h_{t-1}^T dz_t per direction, as one matmul over all steps."""
    if hs.ndim == 3:
        t, b, u = hs.shape
        return hs.reshape(t * b, u).T @ dzs.reshape(t * b, -1)
    return jnp.einsum("tdbu,tdbg->dug", hs, dzs)


def _lstm_gates(z, c):
    i, f, g, o = jnp.split(z, 4, axis=-1)
    i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
    c2 = f * c + i * g
    tc = jnp.tanh(c2)
    return o * tc, c2, (i, f, g, o, tc)


def fast_recurrence(cell: str, rk, xp, carry0, sequences: bool = True):
    """(carry_T, outputs) of `cell` ("lstm" or "simple_rnn") over projected inputs xp (T, D, B, G*u);
    outputs (T, D, B, u), or None when `sequences` is false (only the final state is wanted)."""
    one = xp.shape[1] == 1
    if one:
        rk, xp, carry0 = rk[0], xp[:, 0], jax.tree.map(lambda c: c[0], carry0)
    out = _fast(cell, sequences, rk, xp, carry0)
    carry, ys = out if sequences else (out, None)
    if one:
        carry = jax.tree.map(lambda c: c[None], carry)
        ys = None if ys is None else ys[:, None]
    return carry, ys


@partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _fast(cell, sequences, rk, xp, carry0):
    if cell == "lstm":

        def step(carry, x):
            h2, c2, _ = _lstm_gates(x + _mm(carry[0], rk), carry[1])
            return (h2, c2), h2 if sequences else None

    else:

        def step(h, x):
            h2 = jnp.tanh(x + _mm(h, rk))
            return h2, h2 if sequences else None

    carry, ys = jax.lax.scan(step, carry0, xp)
    return (carry, ys) if sequences else carry


def _fast_fwd(cell, sequences, rk, xp, carry0):
    if cell == "lstm":

        def step(carry, t):
            h, c, buf = carry
            h2, c2, (i, f, g, o, tc) = _lstm_gates(jax.lax.dynamic_index_in_dim(buf, t, 0, False) + _mm(h, rk), c)
            factors = jnp.concatenate([g * i * (1.0 - i), c * f * (1.0 - f), i * (1.0 - g * g), tc * o * (1.0 - o)], -1)
            buf = jax.lax.dynamic_update_index_in_dim(buf, factors, t, 0)  # over xp_t, read above
            return (h2, c2, buf), (h2, o * (1.0 - tc * tc), f)

        (h, c, factors), (ys, dtanh, fs) = jax.lax.scan(step, (*carry0, xp), jnp.arange(xp.shape[0]))
        return (((h, c), ys) if sequences else (h, c)), (rk, carry0[0], ys, factors, dtanh, fs)

    def rnn_step(h, x):
        h2 = jnp.tanh(x + _mm(h, rk))
        return h2, h2

    h, ys = jax.lax.scan(rnn_step, carry0, xp)
    return ((h, ys) if sequences else h), (rk, carry0, ys)


def _lstm_bwd(rk, dcarry, dys, factors, dtanh, fs):
    """(d carry0, dz of every step), dz written over the factors (see above)."""

    def step(carry, inp):
        dh, dc, buf, zero = carry
        t, dy, a, f = inp
        dh = dh if dy is None else dh + dy
        dct = dc + dh * a
        dz = jax.lax.dynamic_index_in_dim(buf, t, 0, False) * jnp.concatenate([dct, dct, dct, dh], axis=-1)
        buf = jax.lax.dynamic_update_index_in_dim(buf, dz, t, 0)
        dz = jax.lax.dynamic_index_in_dim(buf, t + zero, 0, False)  # read back: see the note above
        return (_mm_t(dz, rk), dct * f, buf, zero), None

    zero = jnp.zeros((), jnp.int32)
    (dh, dc, dzs, _), _ = jax.lax.scan(
        step, (*dcarry, factors, zero), (jnp.arange(factors.shape[0]), dys, dtanh, fs), reverse=True
    )
    return (dh, dc), dzs


def _fast_bwd(cell, sequences, res, g):
    dcarry, dys = g if sequences else (g, None)
    if cell == "lstm":
        rk, h0, ys, factors, dtanh, fs = res
        dcarry0, dzs = _lstm_bwd(rk, dcarry, dys, factors, dtanh, fs)
    else:
        rk, h0, ys = res

        def step(dh, inp):
            dy, h = inp
            dh = dh if dy is None else dh + dy
            dz = dh * (1.0 - h * h)
            return _mm_t(dz, rk), dz

        dcarry0, dzs = jax.lax.scan(step, dcarry, (dys, ys), reverse=True)
    hs = jnp.concatenate([h0[None], ys[:-1]], axis=0)  # h_{t-1} of every step
    return _kernel_grad(hs, dzs).astype(rk.dtype), dzs, dcarry0


_fast.defvjp(_fast_fwd, _fast_bwd)


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
