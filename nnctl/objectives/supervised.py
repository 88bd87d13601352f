"""The objective of plain supervised (and autoencoder) training: a network's output against targets (class
indices, 0/1 labels, values or the input), plus kernel regularizers; metrics summed on the device."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from nnctl import metrics as M
from nnctl.chain import Chain, OptimizedByChain, clipped_flag
from nnctl.engine.loop import Proposal
from nnctl.engine.state import TrainState
from nnctl.engine.step import deferred_update, forward
from nnctl.layers.graph import OUTPUT_MASK
from nnctl.losses import LOSSES, Head


class Masked(NamedTuple):
    """A sequence output (B, T, ...) with its 0/1 mask of real steps (B, T): what `Supervised.forward`
    returns in place of the bare output when the model's output carries a mask (`masking` layer)."""

    out: jax.Array
    mask: jax.Array


def bare(logits: Any) -> jax.Array:
    """The output array, with or without a mask."""
    return logits.out if isinstance(logits, Masked) else logits


def init_state(net: Any, key: jax.Array, input_shape: tuple, opt_init: Any) -> TrainState:
    """Fresh variables of `net` for inputs of `input_shape`, and `opt_init(params)`."""
    x = jnp.zeros((1, *input_shape), jnp.float32)
    variables = net.init({"params": key, "dropout": key}, x, train=False)
    params = variables.get("params", {})  # {}: a model without weights (e.g. a softmax alone)
    model_state = {k: v for k, v in variables.items() if k != "params"}
    return TrainState(params=params, model_state=model_state, opt_state=opt_init(params), step=jnp.int32(0))


def kernel_penalty(params: Any, regularizers: tuple) -> jax.Array:
    """Sum of l1 * |W| + l2 * W^2 over the kernels of the layers at the given paths."""
    total = jnp.float32(0)
    for path, l1, l2 in regularizers:
        node = params
        for k in path.split("/"):
            node = node[k]
        w = node["kernel"]
        total = total + l1 * jnp.abs(w).sum() + l2 * (w * w).sum()
    return total


@dataclass(frozen=True, eq=False, kw_only=True)
class Supervised(OptimizedByChain):
    """Loss of a network's output against targets, with device-side metric sums."""

    net: Any
    head: Head
    loss_opts: Any
    metric_names: tuple
    num_classes: int
    chain: Chain  # the optimizer: transformation, frozen mask, learning rate, description
    regularizers: tuple = ()  # kernel regularizers: ((layer path, l1, l2), ...)
    clip: Any = None
    compute_dtype: Any = None  # e.g. jnp.bfloat16: forward/backward in it; weights and optimizer stay float32
    target_scale: Any = None  # regression with normalize_target: metrics are reported in the data's units
    class_weight: tuple | None = None  # train.class_weight: one factor per class on the training loss
    masked: bool = False  # the output is a sequence with a mask of padded steps: losses and metrics skip them

    def init(self, key: jax.Array, input_shape: tuple) -> TrainState:
        return init_state(self.net, key, input_shape, self.tx.init)

    def forward(
        self,
        params: Any,
        model_state: dict,
        x: jax.Array,
        train: bool,
        key: jax.Array | None = None,
        capture: tuple = (),
    ) -> tuple[Any, dict]:
        if self.masked:
            return self._forward_masked(params, model_state, x, train, key, capture)
        kw: dict[str, Any] = {"capture": capture} if capture else {}
        return forward(
            self.net, params, model_state, x, train=train, key=key, compute_dtype=self.compute_dtype, head=False, **kw
        )

    def _forward_masked(self, params, model_state, x, train, key, capture):
        """`forward` with the output as `Masked(output, mask of real steps)`."""
        (out, acts), ms = forward(
            self.net,
            params,
            model_state,
            x,
            train=train,
            key=key,
            compute_dtype=self.compute_dtype,
            head=False,
            capture=(*capture, OUTPUT_MASK),
        )
        acts = dict(acts)
        res = Masked(out, acts.pop(OUTPUT_MASK).astype(jnp.float32))
        return ((res, acts) if capture else res), ms

    def predict(self, params: Any, model_state: dict, x: jax.Array) -> jax.Array:
        out, _ = self.forward(params, model_state, x, False)
        return self.head.fn(bare(out))

    def encode(self, params: Any, model_state: dict, x: jax.Array, layer: str) -> jax.Array:
        """The named layer's output (the code of an autoencoder)."""
        _, acts = self.net.apply({"params": params, **model_state}, x, train=False, head=False, capture=(layer,))
        return acts[layer]

    # --- losses -----------------------------------------------------------------------------------------------
    def penalty(self, params: Any) -> jax.Array:
        return kernel_penalty(params, self.regularizers)

    def per_example(self, logits: Any, y: jax.Array) -> jax.Array:
        if isinstance(logits, Masked):
            return self.per_sequence(logits, y)
        return LOSSES.build(self.loss_opts, logits, y, self.head)

    def per_sequence(self, logits: Masked, y: jax.Array) -> jax.Array:
        """A masked sequence's loss: the loss of each real step, averaged over the real steps (each sequence
        counts once, whatever its length; padded steps count nowhere)."""
        out, m = logits
        b, t = m.shape
        flat = LOSSES.build(
            self.loss_opts, out.reshape(b * t, *out.shape[2:]), y.reshape(b * t, *y.shape[2:]), self.head
        )
        return (flat.reshape(b, t) * m).sum(1) / jnp.maximum(m.sum(1), 1.0)

    def train_per_example(self, logits: jax.Array, y: jax.Array) -> jax.Array:
        """The training loss per example: `per_example` times its class's weight (like Keras' `class_weight`
        the objective stays a mean over the batch; evaluation losses are unweighted)."""
        per = self.per_example(logits, y)
        if self.class_weight is None:
            return per
        w = jnp.asarray(self.class_weight, jnp.float32)
        if jnp.issubdtype(y.dtype, jnp.integer):
            return per * w[y.reshape(per.shape[0])]
        t = y.reshape(per.shape[0]).astype(jnp.float32)  # binary 0/1 labels, one output
        return per * (t * w[1] + (1.0 - t) * w[0])

    # --- sums ---------------------------------------------------------------------------------------------------
    def zero_sums(self, out_shape: tuple, y_dtype: Any) -> dict:
        out = jax.ShapeDtypeStruct((1, *out_shape), jnp.float32)
        y = jax.ShapeDtypeStruct((1,) if jnp.issubdtype(y_dtype, jnp.integer) else (1, *out_shape), y_dtype)
        shapes = jax.eval_shape(
            lambda o, t: M.batch_sums(M.needs_of(self.metric_names), o, t, jnp.ones(1), self.num_classes), out, y
        )
        return {
            "n": jnp.float32(0),
            "loss": jnp.float32(0),
            **jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes),
        }

    def _argmax_only(self, needs: set, z: jax.Array, y: jax.Array) -> bool:
        """Whether the metrics read only the argmax of a softmax over classes (a confusion matrix of integer
        labels): softmax keeps the order of the logits, so their argmax is taken and the softmax skipped (a
        few small kernels per step). It can differ only where two probabilities round to the same float32
        while their logits differ, and there it is the larger logit's class."""
        return (
            needs == {"confusion"}
            and self.head.name == "softmax"
            and z.shape[-1] > 1
            and jnp.issubdtype(y.dtype, jnp.integer)
        )

    def add_batch(
        self, sums: dict, logits: jax.Array, y: jax.Array, mask: jax.Array, loss_sum: jax.Array, weight: Any
    ) -> dict:
        m = mask * weight
        steps = m[:, None] * logits.mask if isinstance(logits, Masked) else m  # metrics count real steps only
        needs, z = M.needs_of(self.metric_names), bare(logits)
        batch = M.batch_sums(
            needs, z if self._argmax_only(needs, z, y) else self.head.fn(z), y, steps, self.num_classes
        )
        new = dict(sums)
        for k, v in batch.items():
            new[k] = sums[k] + v
        new["n"] = sums["n"] + m.sum()
        new["loss"] = sums["loss"] + loss_sum * weight
        return new

    def add(self, sums: dict, values: Any, mask: jax.Array, weight: jax.Array) -> dict:
        logits, y, loss = values
        return self.add_batch(sums, logits, y, mask, loss * mask.sum(), weight)

    def finalize(self, sums: dict) -> dict:
        out = {"loss": sums["loss"] / jnp.maximum(sums["n"], 1.0)}
        if self.target_scale is not None and "sse" in sums:
            # targets were scaled by 1/scale (and shifted) for training: error sums back in the data's units;
            # R^2 is unchanged, the loss stays the training objective
            k = jnp.asarray(self.target_scale, jnp.float32).reshape(sums["sse"].shape)
            sums = {
                **sums,
                "sse": sums["sse"] * k * k,
                "sae": sums["sae"] * k,
                "sy": sums["sy"] * k,
                "syy": sums["syy"] * k * k,
            }
        out.update(M.compute(self.metric_names, sums))
        return out

    # --- steps --------------------------------------------------------------------------------------------------
    def update(
        self, state: TrainState, loss: jax.Array, grads: Any, model_state: dict
    ) -> tuple[Callable[[], TrainState], Any, jax.Array]:
        """(proposed state as a function, gradients as applied, gradient norm) of one optimizer step."""
        return deferred_update(self.tx, self.trainable, state, loss, grads, model_state)

    def propose(self, state: TrainState, x: jax.Array, y: jax.Array, mask: jax.Array, key: jax.Array) -> Proposal:
        n = jnp.maximum(mask.sum(), 1.0)

        def objective(p):
            logits, new_ms = self.forward(p, state.model_state, x, True, key)
            data_loss = (self.train_per_example(logits, y) * mask).sum() / n
            return data_loss + self.penalty(p), (new_ms, logits)

        (loss, (new_ms, logits)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        new, grads, gnorm = self.update(state, loss, grads, new_ms)
        return Proposal(new, loss, gnorm, clipped_flag(self.clip, grads), (logits, y, loss))

    def eval_step(self, state: TrainState, sums: dict, x: jax.Array, y: jax.Array, mask: jax.Array) -> dict:
        logits, _ = self.forward(state.params, state.model_state, x, False)
        per = self.per_example(logits, y)
        loss_sum = (per * mask).sum() + self.penalty(state.params) * mask.sum()
        return self.add_batch(sums, logits, y, mask, loss_sum, 1.0)
