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
With a mask of padded steps (`masking`, `embedding`'s `mask_zero`) the layer skips them: the state is carried
over a padded step unchanged and the output there is zero (Keras' semantics; `_rnn_cells.masked_recurrence`).

`simple_rnn`'s `activation` is the recurrence's own f, h_t = f(x_t W + h_{t-1} U + b) (Keras' meaning),
default tanh. With an explicit f the layer returns the pre-activations (the usual "output before
`activation`" of every layer), and the model applies f to them, so f runs once per step and logits
(head=False) are pre-activations; the default tanh runs inside the hand-written recurrence.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar, Literal, Optional, get_args

import flax.linen as nn
import jax
import jax.numpy as jnp
from pydantic import Field

from nnctl import activations, initializers
from nnctl.activations import ActivationRef
from nnctl.initializers import InitRef
from nnctl.layers._rnn_cells import _mm, fast_recurrence, masked_recurrence, step_fn
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
    tbptt: Optional[int] = None  # truncated BPTT: gradients flow through at most this many steps
    with_carry: bool = False  # also return the final state (h, or (h, c) for the LSTM), each (D, B, units)

    @nn.compact
    def __call__(self, x, mask=None, initial=None):
        """The layer's output; `initial`: the starting state in place of zeros (a seq2seq decoder starts
        from its encoder's final state), shaped like the carry `with_carry` returns."""
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
        if initial is not None:
            carry = jax.tree.map(lambda c: c.astype(xp.dtype), initial)
        if mask is not None or self.tbptt is not None:
            ys, last, carry = self._masked(rk, carry, xp, mask)
        elif self.activation is not None:  # simple_rnn, f given: outputs are pre-activations, f applied after
            f = self.activation

            def act_step(h, p):
                a = p + _mm(h, rk)
                return f(a), a

            carry, ys = jax.lax.scan(act_step, carry, xp)
            last = ys[-1]
        elif self.cell in ("lstm", "simple_rnn"):
            carry, ys = fast_recurrence(self.cell, rk, xp, carry, self.return_sequences)  # ys: (T, D, B, u)
            last = carry[0] if self.cell == "lstm" else carry
        else:
            step = step_fn(self.cell, u)
            carry, ys = jax.lax.scan(lambda c, p: step(rk, c, p), carry, xp)
            last = carry
        out = self._output(ys, last, d)
        return (out, carry) if self.with_carry else out

    def _masked(self, rk, carry, xp, mask):
        """(outputs, last output) with padded steps skipped: mask (B, T), 1 for real steps. The backward
        direction reads the mask reversed, like its inputs, so it starts at each sequence's last real step."""
        mt = None
        if mask is not None:
            m = mask.astype(xp.dtype).T  # (T, B)
            mt = m[:, None] if xp.shape[1] == 1 else jnp.stack([m, m[::-1]], axis=1)  # (T, D, B)
        if self.activation is not None:  # carry the last real pre-activation too (the layer's output)
            f = self.activation

            def act_step(c, p):
                a = p + _mm(c[0], rk)
                return (f(a), a), a

            (h, last), ys = masked_recurrence(act_step, (carry, jnp.zeros_like(carry)), xp, mt, self.tbptt)
            return ys, last, h
        step = step_fn(self.cell, self.units)
        carry, ys = masked_recurrence(lambda c, p: step(rk, c, p), carry, xp, mt, self.tbptt)
        return ys, (carry[0] if self.cell == "lstm" else carry), carry

    def _output(self, ys, last, d):
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
    tbptt: Optional[int] = Field(
        None,
        gt=0,
        description="truncated backpropagation through time: gradients flow through at most this many steps "
        "(the state is carried on); train.tbptt sets it on every recurrent layer",
    )

    cell: ClassVar[str] = "simple_rnn"
    takes_mask: ClassVar[bool] = True

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

    def passes_mask(self) -> bool:
        return self.return_sequences

    def apply_masked(self, xs, train, mask):
        return self.core()(xs[0], mask)

    def apply(self, xs, train):
        return self.core()(xs[0])

    def core(self, with_carry: bool = False) -> RNNCore:
        """The Flax module; `with_carry`: it also returns its final state (see `RNNCore`)."""
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
            self.tbptt,
            with_carry,
            name=self.name,
        )


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
    takes_mask: ClassVar[bool] = True

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


RECURRENT_TYPES = frozenset(n for cls in (SimpleRNN, LSTM, GRU) for n in get_args(cls.model_fields["type"].annotation))
