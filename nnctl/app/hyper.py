"""Hyperparameters as inputs of the compiled programs, not constants in them.

The compiled training programs take one small pytree `hp` as their first argument: the spec's runtime
options (learning rate and schedule values, weight decay, momentum, eps: `nnctl.optim.RUNTIME`), the seed,
the step limit and the early-stopping settings. Inside the trace the objective is rebuilt from a copy of
the spec whose runtime options are the traced values, so the program's text does not depend on them and
the persistent compilation cache serves a run that changes only those values. Shapes, layer settings,
step counts and the options that decide the program's structure (a zero weight decay or momentum removes a
link) are still compiled in. The epoch count never reaches a program: the epoch limit of a fused call is an
argument and the record buffer has a fixed capacity (`nnctl.app.fitting.CAPACITY`).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
from pydantic import BaseModel

from nnctl.optim import OPTIMIZERS, RUNTIME, SCHEDULES, given


def _options(train: Any) -> list[tuple[str, Any]]:
    """(field, options model) of every optimizer of a train section (`optimizer`; a GAN's per-network ones)."""
    kinds = tuple(OPTIMIZERS.models.values())
    return [(name, v) for name in type(train).model_fields if isinstance(v := getattr(train, name), kinds)]


def _runtime_fields(opts: Any) -> list[str]:
    """The runtime options of an optimizer's or a schedule's options model that are set and non-zero."""
    is_opt = isinstance(opts, tuple(OPTIMIZERS.models.values()))
    names = RUNTIME.get((OPTIMIZERS if is_opt else SCHEDULES).canonical(opts.type), ())
    return [n for n in names if isinstance(getattr(opts, n), (int, float)) and given(getattr(opts, n))]


def runtime_values(spec: Any) -> dict[str, Any]:
    """{dotted spec path: float32 value} of the spec's runtime options (zeros and unset ones excluded)."""
    t = spec.train
    out: dict[str, Any] = {}
    if isinstance(t.weight_decay, (int, float)) and given(t.weight_decay):
        out["train.weight_decay"] = np.float32(t.weight_decay)
    for name, opts in _options(t):
        for f in _runtime_fields(opts):
            out[f"train.{name}.{f}"] = np.float32(getattr(opts, f))
        lr = opts.learning_rate
        if isinstance(lr, BaseModel):
            for f in _runtime_fields(lr):
                out[f"train.{name}.learning_rate.{f}"] = np.float32(getattr(lr, f))
    return out


def lift(spec: Any, values: dict[str, Any]) -> Any:
    """A copy of the spec with the options named in `values` (dotted paths) replaced by those values."""
    if not values:
        return spec

    def sub(model: BaseModel, prefix: str) -> BaseModel:
        update: dict[str, Any] = {}
        for name in type(model).model_fields:
            path = f"{prefix}{name}"
            if path in values:
                update[name] = values[path]
            elif isinstance(v := getattr(model, name), BaseModel) and any(k.startswith(f"{path}.") for k in values):
                update[name] = sub(v, f"{path}.")
        return model.model_copy(update=update) if update else model

    return sub(spec, "")


def hyperparams(spec: Any, es: Any, max_steps: int) -> dict[str, Any]:
    """The `hp` argument of a spec's compiled programs, as host values."""
    return {
        "spec": runtime_values(spec),
        "seed": jnp.asarray(np.int64(spec.seed)),  # what jax.random.key does with a Python int
        "max_steps": jnp.int32(max_steps),
        "es": es,
    }
