"""From a checked spec and its prepared data to everything the fit needs: the model kind's objective, the
compiled loop's static facts, early stopping, the loop shape and where the data lives."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from nnctl.app.diagnose import probe_for
from nnctl.app.hyper import hyperparams, lift, lifts_model
from nnctl.data.prepare import Dataset
from nnctl.data.shards import materialized
from nnctl.data.stream import choose_placement, data_bytes, window_size
from nnctl.early_stopping import EarlyStopping
from nnctl.engine.loop import Loop
from nnctl.errors import SpecError
from nnctl.jaxcfg import configure
from nnctl.kinds import MODEL_KINDS, BuildContext
from nnctl.kinds.base import abstract_variables
from nnctl.layers.base import needs_step_loop
from nnctl.metrics import METRICS, TASK_NEEDS
from nnctl.parallel import placement
from nnctl.spec import Loaded
from nnctl.spec.check import monitor_key


@dataclass(frozen=True, kw_only=True)
class Built:
    """A spec ready to fit: its objective and loop, and how the host drives them."""

    loaded: Loaded
    data: Dataset
    obj: Any  # the model kind's objective (nnctl.engine.loop.Objective)
    loop: Loop
    epochs: int
    fuse: str  # epochs: several epochs per compiled call; steps: one step per call
    param_count: int
    chain_desc: str
    placement: str = "device"  # or "stream": data stays on the host, windows of batches go to the device
    window: int = 1  # batches per compiled call when streaming
    prefetch: int = 2
    hp: Any = None  # the compiled programs' runtime inputs (nnctl.app.hyper.hyperparams)
    variables: Any = None  # shapes and dtypes of every variable of the network (kinds.base.abstract_variables)
    loop_for: Callable[[Any], Loop] | None = None  # hp (traced) -> the loop whose options read them

    def lifted(self) -> Callable[[Any], Loop]:
        """hp -> Loop: the loop rebuilt inside a trace from the runtime inputs (the static loop without them)."""
        return self.loop_for or (lambda hp: self.loop)


def build(loaded: Loaded, data: Dataset) -> Built:
    """Build a checked spec (`nnctl.spec.load_spec`) and its prepared data (`nnctl.data.prepare.prepare`) into
    the objective, the loop, the host-side settings of the fit and its runtime inputs (`nnctl.app.hyper`).

    Raises:
        SpecError: problems only the data reveals (metrics for the task, class weights).
    """
    configure()  # the persistent compilation cache, before anything is compiled (train, eval, predict...)
    spec, t = loaded.spec, loaded.spec.train
    check_metrics(loaded, data.task)
    kind = MODEL_KINDS.get(spec.model.type)
    net = kind.network(spec.model, data.num_classes)
    n_train = len(data.x_train)
    bs = n_train if t.batch_size == "full" else min(int(t.batch_size), n_train)
    nb = math.ceil(n_train / bs)
    epochs = t.epochs if t.steps is None else math.ceil(t.steps / nb)
    assert epochs is not None  # validation sets epochs (default 10) when steps is not given
    variables = abstract_variables(net, data.input_shape)  # no "params" for a model without weights
    ctx = BuildContext(
        spec=spec,
        data=data,
        net=net,
        params_shape=variables.get("params", {}),
        total_steps=epochs * nb if t.steps is None else t.steps,
        steps_per_epoch=nb,
        class_weight=class_weights(loaded, data),
    )
    obj = kind.objective(ctx)
    monitor, es, restore = early_stopping(spec, data)
    auto = "steps" if jax.default_backend() == "cpu" and needs_step_loop(kind.layers(spec.model)) else "epochs"
    fuse = auto if t.fuse == "auto" else t.fuse
    assert loaded.analysis is not None  # the spec was loaded with check=True
    loop = Loop(
        obj=obj,
        n_train=n_train,
        batch_size=bs,
        n_val=0 if data.x_val is None else len(data.x_val),
        eval_batch=max(bs, 256),
        shuffle=spec.data.shuffle,
        max_steps=2**31 - 1 if t.steps is None else t.steps,
        monitor=monitor,
        es=es,
        restore_best=restore,
        halt_on_nonfinite=t.on_nonfinite == "stop",
        out_shape=tuple(loaded.analysis.output_shape),
        y_dtype=jax.device_put(np.asarray(data.y_train[:1])).dtype,  # jnp.asarray: an XLA program
        seed=spec.seed,
        placement=placement(t.devices, bs),
        plateau_scale=obj.chain.plateau_scale,
        probe=probe_for(spec, data.x_train, data.y_train) if t.diagnostics else None,
    )
    where = choose_placement(t.data_placement, data_bytes(data.x_train, data.y_train, data.x_val, data.y_val))
    if where != "stream":
        data = _in_memory(data)
    return Built(
        loaded=loaded,
        data=data,
        obj=obj,
        loop=loop,
        epochs=epochs,
        fuse=fuse,
        param_count=sum(math.prod(x.shape) for x in jax.tree.leaves(ctx.params_shape)),
        chain_desc=obj.describe(),
        placement=where,
        window=window_size(t.stream.window, fuse, bs * (data.x_train[:1].nbytes + data.y_train[:1].nbytes), nb),
        prefetch=t.stream.prefetch,
        hp=hyperparams(spec, es, loop.max_steps),
        variables=variables,  # the runtime inputs and the loop that reads them
        loop_for=_loop_for(kind, ctx, loop),
    )


def _in_memory(data: Dataset) -> Dataset:
    """Rows on disk (data.source: shards) that are to live on the device, read now (y: an autoencoder's targets)."""
    lazy = ("x_train", "x_val", "x_test", "y_train", "y_val", "y_test")
    return dataclasses.replace(data, **{k: materialized(getattr(data, k)) for k in lazy})


def _loop_for(kind: Any, ctx: BuildContext, loop: Loop) -> Callable[[Any], Loop]:
    """hp -> the loop with the objective rebuilt from the spec with hp's runtime options (nnctl.app.hyper);
    the network too when they reach it (dropout rates)."""

    def make(hp: Any) -> Loop:
        spec = lift(ctx.spec, hp["spec"])
        net = kind.network(spec.model, ctx.data.num_classes) if lifts_model(hp["spec"]) else ctx.net
        o = kind.objective(dataclasses.replace(ctx, spec=spec, net=net))
        return dataclasses.replace(
            loop, obj=o, seed=hp["seed"], max_steps=hp["max_steps"], es=hp["es"], plateau_scale=o.chain.plateau_scale
        )

    return make


def early_stopping(spec: Any, data: Dataset) -> tuple[tuple[str, str], EarlyStopping, bool]:
    """(monitor (split, metric), the initial early-stopping value, restore_best). Without early stopping the
    monitor is val/loss (train/loss without validation data), only to record a best epoch."""
    es_spec = spec.train.early_stopping
    if es_spec is None:
        monitor = ("val", "loss") if data.x_val is not None else ("train", "loss")
        return monitor, EarlyStopping.create("min", enabled=False), False
    monitor = monitor_key(es_spec.monitor)
    mode = es_spec.mode if es_spec.mode != "auto" else metric_mode(monitor[1])
    es = EarlyStopping.create(
        mode,
        es_spec.patience,
        es_spec.min_delta,
        es_spec.baseline,
        es_spec.start_from_epoch,
        es_spec.stopping_threshold,
        es_spec.divergence_threshold,
    )
    return monitor, es, es_spec.restore_best


def metric_mode(name: str) -> str:
    """'max' when higher is better for a metric (from the metric registry), else 'min' (losses)."""
    return METRICS.get(name).mode if name in METRICS else "min"


def check_metrics(loaded: Loaded, task: str) -> None:
    """Classification metrics on a regression task are spec errors (found once the task is known)."""
    allowed = TASK_NEEDS.get(task)
    if allowed is None:
        return
    why = "data.task" if loaded.spec.data.task else "inferred from the data; set data.task to change it"
    ok = ", ".join(n for n in METRICS.names(aliases=False) if METRICS.get(n).needs in allowed)
    problems = [
        loaded.problem(("train", "metrics", i), f"'{m}' does not apply to a {task} task ({why}). Choices: {ok}")
        for i, m in enumerate(loaded.spec.train.metrics)
        if METRICS.get(m).needs not in allowed
    ]
    if problems:
        raise SpecError(problems)


def class_weights(loaded: Loaded, data: Dataset) -> tuple | None:
    """`train.class_weight` as one factor per class (balanced: n / (classes * count) over the training split)."""
    cw = loaded.spec.train.class_weight
    if cw is None:
        return None
    key = ("train", "class_weight")
    y = data.y_train
    one_label = (data.task == "classification" and y.ndim == 1) or (
        data.task == "binary" and y.reshape(len(y), -1).shape[1] == 1
    )
    if not one_label:
        what = {"classification": "per-step labels", "binary": "multi-label targets"}.get(
            data.task, f"a {data.task} task"
        )
        raise SpecError([loaded.problem(key, f"class_weight applies to one class label per example, not to {what}")])
    k = data.num_classes
    assert k is not None  # set for the classification and binary tasks, the only ones left here
    labels = y.reshape(-1).astype(np.int64)
    counts = np.bincount(labels, minlength=k)[:k]
    if cw == "balanced":
        return tuple(float(len(labels) / (k * c)) if c else 1.0 for c in counts)
    names = data.class_names or []
    w = [1.0] * k
    problems = []
    for c, v in cw.items():
        idx = (
            names.index(c)
            if isinstance(c, str) and c in names
            else (int(c) if isinstance(c, int) or (isinstance(c, str) and c.isdigit()) else None)
        )
        if idx is None or not 0 <= idx < k:
            known = f"labels {', '.join(names)} or " if names else ""
            problems.append(loaded.problem((*key, c), f"unknown class {c!r}: use {known}indices 0..{k - 1}"))
        elif not v > 0:
            problems.append(loaded.problem((*key, c), f"weight must be > 0, got {v}"))
        else:
            w[idx] = float(v)
    if problems:
        raise SpecError(problems)
    return tuple(w)
