"""Hyperparameters as inputs of the compiled programs, not constants in them.

The compiled training programs take one small pytree `hp` as their first argument: the spec's runtime options
(learning rate and schedule values, weight decay, momentum, eps, betas, decays: `nnctl.optim.RUNTIME`; dropout
rates (attention's too), batch-norm momenta: `LayerSpec.runtime`), the seed, the step limit and the
early-stopping settings.
Fractions whose complement Optax or Flax computes (`1 - b1`, `1 - rate`) travel as `nnctl.rate.Rate`, so the
programs that read them compute the bits of the compiled-in constants. Inside the trace the objective (and the
network, for dropout rates) is rebuilt from a copy of the spec whose runtime options are the traced values, so
the program's text does not depend on them and the persistent compilation cache serves a run that changes only
those values. Shapes, other layer settings, step counts and the options that decide the program's structure (a
zero weight decay or momentum removes a link, a zero dropout rate the dropout) are still compiled in. The epoch
count never reaches a program: the epoch limit of a fused call is an argument and the record buffer has a fixed
capacity (`nnctl.app.fitting.CAPACITY`).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from pydantic import BaseModel

from nnctl.layers.base import LayerSpec
from nnctl.optim import OPTIMIZERS, PAIRED, RUNTIME, SCHEDULES, given
from nnctl.rate import Rate


def _options(train: Any) -> list[tuple[str, Any]]:
    """(field, options model) of every optimizer of a train section (`optimizer`; a GAN's per-network ones)."""
    kinds = tuple(OPTIMIZERS.models.values())
    return [(name, v) for name in type(train).model_fields if isinstance(v := getattr(train, name), kinds)]


def _runtime_fields(opts: Any) -> list[str]:
    """The runtime options of an optimizer's or a schedule's options model that are set and non-zero."""
    is_opt = isinstance(opts, tuple(OPTIMIZERS.models.values()))
    names = RUNTIME.get((OPTIMIZERS if is_opt else SCHEDULES).canonical(opts.type), ())
    return [n for n in names if isinstance(getattr(opts, n), (int, float)) and given(getattr(opts, n))]


def _nodes(node: Any, path: str):
    """(path, model) of every pydantic model in a tree of models and lists (`model.layers[1]`, as in --set)."""
    if isinstance(node, BaseModel):
        yield path, node
        for name in type(node).model_fields:
            yield from _nodes(getattr(node, name), f"{path}.{name}")
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _nodes(v, f"{path}[{i}]")


def _layer_values(model: Any) -> dict[str, Any]:
    """{path: Rate} of the runtime fractions of the model's layers (nested ones too), zeros excluded."""
    return {
        f"{path}.{f}": Rate.of(getattr(layer, f))
        for path, layer in _nodes(model, "model")
        if isinstance(layer, LayerSpec)
        for f in layer.runtime
        if given(getattr(layer, f))
    }


def runtime_values(spec: Any) -> dict[str, Any]:
    """{dotted spec path: float32 value or Rate} of the spec's runtime options (zeros and unset ones excluded)."""
    t = spec.train
    out: dict[str, Any] = {}
    if isinstance(t.weight_decay, (int, float)) and given(t.weight_decay):
        out["train.weight_decay"] = np.float32(t.weight_decay)
    for name, opts in _options(t):
        paired = PAIRED.get(OPTIMIZERS.canonical(opts.type), ())
        for f in _runtime_fields(opts):
            v = getattr(opts, f)
            out[f"train.{name}.{f}"] = Rate.of(v) if f in paired else np.float32(v)
        lr = opts.learning_rate
        if isinstance(lr, BaseModel):
            for f in _runtime_fields(lr):
                out[f"train.{name}.learning_rate.{f}"] = np.float32(getattr(lr, f))
    return {**out, **_layer_values(spec.model)}


def lift(spec: Any, values: dict[str, Any]) -> Any:
    """A copy of the spec with the options named in `values` (paths as in --set: `train.optimizer.b1`,
    `model.layers[1].rate`) replaced by those values."""

    def sub(node: Any, path: str) -> Any:
        if path in values:
            return values[path]
        if path and not any(k.startswith((f"{path}.", f"{path}[")) for k in values):
            return node
        if isinstance(node, BaseModel):
            update = {n: sub(getattr(node, n), f"{path}.{n}" if path else n) for n in type(node).model_fields}
            changed = {n: v for n, v in update.items() if v is not getattr(node, n)}
            return node.model_copy(update=changed) if changed else node
        if isinstance(node, (list, tuple)):
            return type(node)(sub(v, f"{path}[{i}]") for i, v in enumerate(node))
        return node

    return sub(spec, "") if values else spec


def lifts_model(values: dict[str, Any]) -> bool:
    """True when runtime values reach the network itself (dropout rates): it is rebuilt inside the trace."""
    return any(k.startswith("model.") for k in values)


def hyperparams(spec: Any, es: Any, max_steps: int) -> dict[str, Any]:
    """The `hp` argument of a spec's compiled programs, as host values."""
    return {
        "spec": runtime_values(spec),
        "seed": jax.device_put(np.int64(spec.seed)),  # what jax.random.key does with a Python int
        "max_steps": jax.device_put(np.int32(max_steps)),  # not jnp.int32: no eager XLA program
        "es": es,
    }
