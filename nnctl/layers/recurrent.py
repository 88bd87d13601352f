"""Recurrent layers over (steps, features): `simple_rnn`, `lstm`, `gru`.

Each layer keeps three parameters: `kernel` [features, G*units] (input weights), `recurrent_kernel`
[units, G*units] and `bias` [G*units], with G = 1 (simple RNN), 4 (LSTM: gates i, f, g, o) or 3 (GRU:
gates z, r, h). So an LSTM has exactly 4x and a GRU 3x the parameters of a simple RNN of the same sizes.
The GRU is the classic formulation (Cho et al. 2014; Keras `reset_after=False`):

    z = sigmoid(x Wz + h Uz + bz)      r = sigmoid(x Wr + h Ur + br)
    h~ = tanh(x Wh + (r * h) Uh + bh)  h' = z * h + (1 - z) * h~

`bidirectional: true` stacks a second set of weights along a leading axis of size 2 (forward, backward);
both directions run in the same compiled `lax.scan` over time, and their outputs are concatenated
(forward first). `return_sequences` gives every step's output (T, units) instead of the last one.
The input projection of all steps is one time-major matmul per direction before the scan (`project`).

`simple_rnn`'s `activation` is the recurrence's own f, h_t = f(x_t W + h_{t-1} U + b) (Keras' meaning),
default tanh. With an explicit f the layer returns the pre-activations (the usual "output before
`activation`" of every layer), and the model applies f to them, so f runs once per step and logits
(head=False) are pre-activations; the default tanh runs inside the hand-written recurrence.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar, Literal, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
from pydantic import Field

from nnctl import activations, initializers
from nnctl.activations import ActivationRef
from nnctl.initializers import InitRef
from nnctl.layers.base import KernelMixin, LayerSpec, ShapeError, register_layer
from nnctl.layers.conv import checked_init

GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}


def _stacked(init: Callable, directions: int | None) -> Callable:
    """Initialise each direction's matrix on its own (fan-in/out and orthogonality per direction)."""
    if directions is None:
        return init

    def f(key, shape, dtype=jnp.float32):
        return jnp.stack([init(k, shape[1:], dtype) for k in jax.random.split(key, shape[0])])

    return f


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


class RNNCore(nn.Module):
    cell: str
    units: int
    bidirectional: bool
    return_sequences: bool
    use_bias: bool
    kernel_init: Any
    recurrent_init: Any
    bias_init: Any
    unit_forget_bias: bool
    activation: Any = None  # simple_rnn only: the recurrence's f (None: tanh, with the hand-written backward)

    @nn.compact
    def __call__(self, x):
        u, g = self.units, GATES[self.cell]
        dirs = 2 if self.bidirectional else None
        lead = (2,) if self.bidirectional else ()
        d = 2 if self.bidirectional else 1
        w = self.param("kernel", _stacked(self.kernel_init, dirs), (*lead, x.shape[-1], g * u))
        rk = self.param("recurrent_kernel", _stacked(self.recurrent_init, dirs), (*lead, u, g * u))
        w, rk = w.reshape(d, x.shape[-1], g * u), rk.reshape(d, u, g * u)
        b = None
        if self.use_bias:
            bias_init = self.bias_init
            if self.cell == "lstm" and self.unit_forget_bias:
                base = bias_init

                def bias_init(key, shape, dtype=jnp.float32):
                    return base(key, shape, dtype).at[..., u : 2 * u].add(1.0)

            b = self.param("bias", _stacked(bias_init, dirs), (*lead, g * u)).reshape(d, g * u)
        xp = project(x, w, b)  # (T, D, B, G*u)
        h0 = jnp.zeros((d, x.shape[0], u), xp.dtype)
        carry = (h0, h0) if self.cell == "lstm" else h0
        if self.activation is not None:  # simple_rnn, f given: outputs are pre-activations, f applied after
            f = self.activation

            def act_step(h, p):
                a = p + _mm(h, rk)
                return f(a), a

            _, ys = jax.lax.scan(act_step, carry, xp)
            last = ys[-1]
        elif self.cell in ("lstm", "simple_rnn"):
            carry, ys = fast_recurrence(self.cell, rk, xp, carry)  # ys: (T, D, B, u)
            last = carry[0] if self.cell == "lstm" else carry
        else:
            step = step_fn(self.cell, u)
            carry, ys = jax.lax.scan(lambda c, p: step(rk, c, p), carry, xp)
            last = carry
        if not self.return_sequences:
            return jnp.concatenate(list(last), axis=-1)  # (B, D*u)
        if self.bidirectional:
            ys = jnp.stack([ys[:, 0], ys[::-1, 1]], axis=1)
        return jnp.concatenate([ys[:, i] for i in range(d)], axis=-1).transpose(1, 0, 2)  # (B, T, D*u)


def project(x, w, b):
    """x W + b of every step, time-major: x (B, T, F), w (D, F, G*u), b (D, G*u) or None -> (T, D, B, G*u).

    The input is transposed to (T, B, F) first (F is small), so each direction's projection is one
    (T*B, F) @ (F, G*u) matmul whose result already has the scan's layout; projecting batch-major and
    transposing the (B, T, G*u) result costs a memory pass over the G-times-larger gates (measured ~12 %
    of an LSTM step). The backward direction reads the steps in reverse."""
    t, bsz, f = x.shape[1], x.shape[0], x.shape[2]
    xt = x.transpose(1, 0, 2)
    outs = []
    for i in range(w.shape[0]):
        xi = xt if i == 0 else xt[::-1]
        p = xi.reshape(t * bsz, f) @ w[i]
        outs.append((p if b is None else p + b[i][None]).reshape(t, bsz, -1))
    return outs[0][:, None] if len(outs) == 1 else jnp.stack(outs, axis=1)


class _Recurrent(KernelMixin, LayerSpec):
    units: int = Field(..., gt=0, description="size of the hidden state (per direction)")
    bidirectional: bool = Field(
        False,
        description="also run the sequence backwards; outputs are concatenated "
        "(forward, backward), so 2 x units features",
    )
    return_sequences: bool = Field(
        False,
        description="true: output at every step (steps, units) for "
        "many-to-many; false: the last step only (many-to-one)",
    )
    recurrent_init: InitRef = Field("orthogonal", description="initializer of the recurrent kernel")

    cell: ClassVar[str] = "simple_rnn"

    def cell_activation(self) -> Callable | None:
        return None

    def out_shape(self, shapes):
        shape = shapes[0]
        if len(shape) != 2:
            fix = (
                f"add {{type: reshape, shape: [{shape[0]}, 1]}} before it"
                if len(shape) == 1
                else "reshape it to (steps, features)"
            )
            raise ShapeError(f"({self.type}) expects a sequence (steps, features), got {tuple(shape)}: {fix}")
        g, lead = GATES[self.cell], ((2,) if self.bidirectional else ())
        checked_init(self.kernel_init, (*lead, shape[1], g * self.units), "kernel_init")
        checked_init(self.recurrent_init, (*lead, self.units, g * self.units), "recurrent_init")
        checked_init(self.bias_init, (*lead, g * self.units), "bias_init")
        units = self.units * (2 if self.bidirectional else 1)
        return (shape[0], units) if self.return_sequences else (units,)

    def apply(self, xs, train):
        return RNNCore(
            self.cell,
            self.units,
            self.bidirectional,
            self.return_sequences,
            self.use_bias,
            initializers.build(self.kernel_init),
            initializers.build(self.recurrent_init),
            initializers.build(self.bias_init),
            getattr(self, "unit_forget_bias", False),
            self.cell_activation(),
            name=self.name,
        )(xs[0])


@register_layer
class SimpleRNN(_Recurrent):
    """Elman RNN: h_t = f(x_t W + h_{t-1} U + b), f = `activation` (default tanh); units x (F + units + 1) params.

    `activation: relu` with `recurrent_init: identity` is the IRNN (Le et al. 2015)."""

    type: Literal["simple_rnn", "rnn", "simplernn"] = "simple_rnn"
    activation: Optional[ActivationRef] = Field(
        None,
        description="the recurrence's activation f in h_t = f(x_t W + h_{t-1} U + b), as in Keras "
        "(not applied a second time to the output); default tanh",
    )
    cell: ClassVar[str] = "simple_rnn"

    def cell_activation(self) -> Callable | None:
        opts = self.activation
        return None if opts is None else partial(activations.apply, opts)


@register_layer
class LSTM(_Recurrent):
    """Long short-term memory (gates i, f, g, o; Keras layout); 4x the parameters of a simple RNN."""

    type: Literal["lstm"] = "lstm"
    unit_forget_bias: bool = Field(True, description="add 1 to the forget gate's initial bias (Keras default)")
    cell: ClassVar[str] = "lstm"


@register_layer
class GRU(_Recurrent):
    """Gated recurrent unit, classic formulation (reset before the recurrent matmul, one bias per gate;
    Keras reset_after=False); exactly 3x the parameters of a simple RNN."""

    type: Literal["gru"] = "gru"
    cell: ClassVar[str] = "gru"
