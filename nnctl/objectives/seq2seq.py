"""A sequence-to-sequence encoder-decoder (`model.type: seq2seq`) and its objective.

The encoder reads the source sequence; its last layer is a recurrent layer whose final state (h, or (h, c)
for an LSTM) is the starting state of the decoder's first recurrent layer. The decoder reads target tokens
(ids as float, like every nnctl input; an `embedding` turns them into vectors) and outputs one distribution
over the target classes per step. Token id `num_classes` is the start token, so the decoder's embedding
has num_classes + 1 ids.

Training uses teacher forcing: the decoder input at step t is the true target token t-1 (the start token at
t = 0), `shifted`. Evaluation reports that teacher-forced loss and accuracy, and decodes free-running:
greedy, the decoder's own argmax at step t-1 fed back as its input at step t, for the target's length.
Because the decoder is causal (checked by the kind: step t sees inputs <= t only), greedy decoding runs the
decoder over a buffer of its own previous outputs once per step (`greedy`); `predict` returns the free-running
distributions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from nnctl import activations
from nnctl.chain import Chain, OptimizedByChain, clipped_flag
from nnctl.engine.loop import Proposal
from nnctl.engine.state import TrainState
from nnctl.engine.step import deferred_update, forward
from nnctl.losses import LOSSES, Head
from nnctl.objectives.supervised import init_state


def shifted(y: jax.Array, start: int) -> jax.Array:
    """The teacher-forced decoder input: (B, T) targets -> start token, then targets 0 .. T-2."""
    first = jnp.full((y.shape[0], 1), start, y.dtype)
    return jnp.concatenate([first, y[:, :-1]], axis=1)


class _Part(nn.Module):
    """A chain of layers; the layer at `state_at` (recurrent) starts from `initial` (when given) and returns its
    final state as well."""

    layers: tuple
    state_at: int

    @nn.compact
    def __call__(self, x, train: bool = False, head: bool = True, initial=None):
        h, carry, last = x, None, len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i == self.state_at:
                z, carry = layer.core(with_carry=True)(h, None, initial)
            else:
                z = layer.apply([h], train)
            h = z if (i == last and not head) else activations.apply(layer.activation, z)
        return h, carry


class Seq2SeqNet(nn.Module):
    """Parameters {"encoder": .., "decoder": ..}: paths such as `decoder/lstm_1/kernel`."""

    encoder: tuple
    decoder: tuple
    encoder_state: int  # index of the encoder's last recurrent layer (its final state is handed over)
    decoder_state: int  # index of the decoder's first recurrent layer (it starts from that state)

    def setup(self):
        self.enc = _Part(self.encoder, self.encoder_state, name="encoder")
        self.dec = _Part(self.decoder, self.decoder_state, name="decoder")

    def encode(self, x, train: bool = False):
        """The encoder's final state."""
        return self.enc(x, train)[1]

    def decode(self, state, tokens, train: bool = False, head: bool = True):
        """(B, T, classes) for decoder input tokens (B, T) starting from `state`."""
        return self.dec(tokens.astype(jnp.float32), train, head, state)[0]

    def teacher_forced(self, x, y, start: int, train: bool = False, head: bool = False):
        return self.decode(self.encode(x, train), shifted(y, start), train, head)

    def __call__(self, x, train: bool = False, head: bool = True, capture: tuple = ()):
        # creates every variable (the decoder input's length does not size any of them)
        return self.decode(self.encode(x, train), jnp.zeros(x.shape[:2]), train, head)


@dataclass(frozen=True, eq=False, kw_only=True)
class Seq2Seq(OptimizedByChain):
    """Teacher-forced training; teacher-forced loss and accuracy plus free-running accuracies in evaluation."""

    net: Any
    head: Head
    loss_opts: Any
    chain: Chain
    num_classes: int  # the target classes; the start token is id num_classes
    steps: int  # the target's length: how many steps free-running decoding produces
    clip: Any = None

    def init(self, key: jax.Array, input_shape: tuple) -> TrainState:
        return init_state(self.net, key, input_shape, self.tx.init)

    def teacher_forced(self, params, model_state, x, y, train: bool, key=None) -> tuple[jax.Array, dict]:
        """(logits (B, T, classes), new model state) with the true previous target token as decoder input."""
        y = y.astype(jnp.int32)
        return forward(
            self.net, params, model_state, x, y, self.num_classes, train=train, key=key, method="teacher_forced"
        )

    def greedy(self, params, model_state, x) -> tuple[jax.Array, jax.Array]:
        """Free-running decoding: (logits (B, T, classes), decoder inputs (B, T)). Step t's input is the argmax
        of step t-1 (the start token at t = 0), so the logits at t are those the decoder gives after reading
        its own previous outputs."""
        v = {"params": params, **model_state}
        state = self.net.apply(v, x, method="encode")
        buf = jnp.full((x.shape[0], self.steps), self.num_classes, jnp.int32)

        def step(t, buf):
            logits = self.net.apply(v, state, buf, head=False, method="decode")
            return buf.at[:, t + 1].set(jnp.argmax(logits[:, t], axis=-1).astype(jnp.int32))

        buf = jax.lax.fori_loop(0, self.steps - 1, step, buf)
        return self.net.apply(v, state, buf, head=False, method="decode"), buf

    def predict(self, params: Any, model_state: dict, x: jax.Array) -> jax.Array:
        return self.head.fn(self.greedy(params, model_state, x)[0])

    def per_example(self, logits: jax.Array, y: jax.Array) -> jax.Array:
        """The loss of each sequence: the mean over its steps."""
        b, t = y.shape
        flat = LOSSES.build(self.loss_opts, logits.reshape(b * t, -1), y.reshape(b * t).astype(jnp.int32), self.head)
        return flat.reshape(b, t).mean(axis=1)

    # --- sums ---------------------------------------------------------------------------------------------------
    def zero_sums(self, out_shape: tuple, y_dtype: Any) -> dict:
        keys = ("n", "loss", "teacher_forced", "free_running", "free_running_sequences")
        return {k: jnp.float32(0) for k in keys}

    def add(self, sums: dict, values: Any, mask: jax.Array, weight: Any) -> dict:
        tf_logits, free_logits, y, loss_sum = values
        y = y.astype(jnp.int32)
        m = mask * weight
        tf_hit = (jnp.argmax(tf_logits, -1) == y).astype(jnp.float32)
        free_hit = (jnp.argmax(free_logits, -1) == y).astype(jnp.float32)
        return {
            "n": sums["n"] + m.sum(),
            "loss": sums["loss"] + loss_sum * weight,
            "teacher_forced": sums["teacher_forced"] + (tf_hit.mean(1) * m).sum(),
            "free_running": sums["free_running"] + (free_hit.mean(1) * m).sum(),
            "free_running_sequences": sums["free_running_sequences"] + (free_hit.min(1) * m).sum(),
        }

    def finalize(self, sums: dict) -> dict:
        n = jnp.maximum(sums["n"], 1.0)
        return {
            "loss": sums["loss"] / n,
            "teacher_forced_accuracy": sums["teacher_forced"] / n,
            "free_running_accuracy": sums["free_running"] / n,
            "free_running_sequence_accuracy": sums["free_running_sequences"] / n,
        }

    # --- steps --------------------------------------------------------------------------------------------------
    def propose(self, state: TrainState, x: jax.Array, y: jax.Array, mask: jax.Array, key: jax.Array) -> Proposal:
        n = jnp.maximum(mask.sum(), 1.0)

        def objective(p):
            logits, new_ms = self.teacher_forced(p, state.model_state, x, y, True, key)
            return (self.per_example(logits, y) * mask).sum() / n, (new_ms, logits)

        (loss, (new_ms, logits)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        new, grads, gnorm = deferred_update(self.tx, self.trainable, state, loss, grads, new_ms)
        free, _ = self.greedy(state.params, state.model_state, x)
        return Proposal(new, loss, gnorm, clipped_flag(self.clip, grads), (logits, free, y, loss * mask.sum()))

    def eval_step(self, state: TrainState, sums: dict, x: jax.Array, y: jax.Array, mask: jax.Array) -> dict:
        logits, _ = self.teacher_forced(state.params, state.model_state, x, y, False)
        free, _ = self.greedy(state.params, state.model_state, x)
        loss_sum = (self.per_example(logits, y) * mask).sum()
        return self.add(sums, (logits, free, y, loss_sum), mask, 1.0)
