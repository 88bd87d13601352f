"""Several outputs (`model.outputs`, GoogLeNet's auxiliary classifiers): every output is trained against the
same targets with the same loss, and the loss is the weighted sum of the outputs' losses
(`train.loss_weights`). The model's output is the last layer: predictions and the plain metric records come
from it; each output adds its own loss record (`<name>_loss`) and each other output its metric records
(`<name>_<metric>`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from nnctl import metrics as M
from nnctl.engine.step import forward
from nnctl.losses import LOSSES
from nnctl.objectives.regularized import Regularized
from nnctl.objectives.supervised import Supervised


@dataclass(frozen=True, eq=False, kw_only=True)
class MultiOutput(Supervised):
    """`Supervised` over a tuple of outputs; `head` is the main output's."""

    outputs: tuple = ()  # layer names, as in model.outputs
    heads: tuple = ()  # the Head of each output
    loss_weights: tuple = ()  # one weight per output
    main: int = 0  # the index in `outputs` of the model's output (its last layer)

    def forward(self, params, model_state, x, train, key=None, capture=()):
        kw: dict[str, Any] = {"capture": capture} if capture else {}
        return forward(
            self.net,
            params,
            model_state,
            x,
            train=train,
            key=key,
            compute_dtype=self.compute_dtype,
            head=False,
            outputs=self.outputs,
            **kw,
        )

    def predict(self, params, model_state, x):
        out, _ = self.forward(params, model_state, x, False)
        return self.head.fn(out[self.main])

    def head_losses(self, logits: tuple, y: jax.Array) -> list:
        """Each output's loss per example (unweighted)."""
        return [LOSSES.build(self.loss_opts, z, y, h) for z, h in zip(logits, self.heads)]

    def per_example(self, logits, y):
        per = self.head_losses(logits, y)
        return sum((w * p for w, p in zip(self.loss_weights, per)), jnp.zeros_like(per[0]))

    def _aux(self):
        return [(i, name) for i, name in enumerate(self.outputs) if i != self.main]

    def zero_sums(self, out_shape, y_dtype):
        sums = super().zero_sums(out_shape, y_dtype)
        metric_keys = set(Supervised.zero_sums(self, out_shape, y_dtype)) - {"n", "loss"}  # not a subclass's extras
        extra = {f"{name}/loss": jnp.float32(0) for name in self.outputs}
        for _, name in self._aux():
            extra.update({f"{name}/{k}": jnp.zeros_like(sums[k]) for k in metric_keys})
        return {**sums, **extra}

    def add_batch(self, sums, logits, y, mask, loss_sum, weight):
        new = super().add_batch(sums, logits[self.main], y, mask, loss_sum, weight)
        m = mask * weight
        for name, per in zip(self.outputs, self.head_losses(logits, y)):
            new[f"{name}/loss"] = sums[f"{name}/loss"] + (per * m).sum()
        needs = M.needs_of(self.metric_names)
        for i, name in self._aux():
            batch = M.batch_sums(needs, self.heads[i].fn(logits[i]), y, m, self.num_classes)
            for k, v in batch.items():
                new[f"{name}/{k}"] = sums[f"{name}/{k}"] + v
        return new

    def finalize(self, sums):
        out = super().finalize(sums)
        n = jnp.maximum(sums["n"], 1.0)
        for name in self.outputs:
            out[f"{name}_loss"] = sums[f"{name}/loss"] / n
        for _, name in self._aux():
            own = {k[len(name) + 1 :]: v for k, v in sums.items() if k.startswith(f"{name}/")}
            head_sums = {**{k: v for k, v in sums.items() if "/" not in k}, **own}
            out.update({f"{name}_{k}": v for k, v in Supervised.finalize(self, head_sums).items() if k != "loss"})
        return out


@dataclass(frozen=True, eq=False, kw_only=True)
class MultiOutputRegularized(MultiOutput, Regularized):
    """Several outputs with activity regularizers, corruption or augmentation."""
