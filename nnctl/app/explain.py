"""`nnctl explain`: training steps written out layer by layer in the notes' notation, for students.

For each step: the weighted sums z and activations a of every layer, the loss, the error terms
delta = dE/dz, the gradients dE/dW and dE/db, and the weights after the update. Everything comes from the
code that trains: the spec's own network and loss (`Supervised.forward` / `per_example` / `penalty`), with
flax method interception recording each layer's z and adding a zero perturbation to it, so that one
`jax.grad` gives both dE/dW and delta = dE/dz; the update is the objective's own `train_step` (the same
Optax chain, freezing included). It runs in float64 so the numbers can be compared with hand calculations.

Names follow the notes' worked example: inputs x1.., hidden weighted sums H1.. (H<layer>_<unit> with
several hidden layers) and their activations H1_final.., outputs y1.. and y1_final.., weights w1.. numbered
layer by layer, unit by unit, input by input, biases b<layer>_<unit>, targets T1.., loss E_total. Layers
too large to list are summarised (shape, norm, first entries).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from nnctl.app.builder import build
from nnctl.app.explain_bptt import bptt_records
from nnctl.app.explain_optim import entries, optimizer_rows
from nnctl.app.explain_text import Names, render, to_json
from nnctl.app.explain_windows import windows_of
from nnctl.data.prepare import prepare
from nnctl.engine.state import Counters, TrainState
from nnctl.engine.step import commit
from nnctl.errors import NnctlError
from nnctl.layers.graph import Network
from nnctl.objectives.supervised import Supervised
from nnctl.spec import load_spec
from nnctl.trees import flat


def widen(a):
    """float32 -> float64 through the shortest decimal that reads back as the same float32, so that a
    spec's 0.05 is 0.05 again (not 0.0500000007); other dtypes unchanged."""
    a = np.asarray(a)
    if a.dtype != np.float32:
        return a
    return np.array([float(str(v)) for v in a.reshape(-1)], np.float64).reshape(a.shape)


def _intercepted_loss(obj, layer_names: set, params, model_state, x, y, eps):
    """The training loss with every top-level layer's weighted sum z recorded (and eps added to it)."""
    zs: dict = {}

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        m = context.module
        if context.method_name == "__call__" and m.name in layer_names and isinstance(m.parent, Network):
            zs[m.name] = out
            if eps is not None and m.name in eps:
                out = out + eps[m.name]
        return out

    names = tuple(layer.name for layer in obj.net.layers[:-1])
    with nn.intercept_methods(interceptor):
        out = obj.net.apply({"params": params, **model_state}, x, train=False, head=False, capture=names)
    logits, acts = out if names else (out, {})  # a one-layer model has nothing before its last layer
    last = obj.net.layers[-1].name
    if last not in zs:  # a last layer without parameters: its output before the activation
        zs[last] = logits
    acts = dict(acts)
    acts[last] = obj.head.fn(logits)
    per = obj.per_example(logits, y)
    loss = jnp.mean(per) + obj.penalty(params)
    return loss, (zs, acts)


def explain_spec(spec_path: str, steps: int = 1, sample: int | None = None, overrides: tuple = ()) -> dict:
    """The data of `nnctl explain`: one record per training step."""
    with jax.enable_x64(True):
        return _explain(spec_path, steps, sample, overrides)


def _examples(sample: int | None, n: int, batch_size: int) -> np.ndarray:
    """The training examples a step is shown for: `--sample i`, else the first batch."""
    if sample is None:
        return np.arange(min(batch_size, n))
    if not 0 <= sample < n:
        raise NnctlError(f"--sample must be between 0 and {n - 1} (the training split has {n} examples)")
    return np.array([sample])


def _explainable(spec, obj) -> None:
    """Refuse, saying why, a model explain cannot follow layer by layer."""
    if not isinstance(obj, Supervised):
        raise NnctlError(f"explain follows plain networks layer by layer; this spec's model is {spec.model.type}")
    if spec.model.outputs is not None or obj.masked:
        what = "has several outputs (model.outputs)" if spec.model.outputs is not None else "masks padded steps"
        raise NnctlError(f"explain follows plain networks with one output layer by layer; this spec's model is {what}")


def _explain(spec_path, steps, sample, overrides):
    if steps < 1:
        raise NnctlError(f"--steps must be at least 1, got {steps}")
    loaded = load_spec(spec_path, tuple(overrides))
    spec = loaded.spec
    data = prepare(spec, loaded.analysis, loaded.base_dir)
    b = build(loaded, data)
    obj = b.loop.obj
    _explainable(spec, obj)
    idx = _examples(sample, len(data.x_train), b.loop.batch_size)
    f64 = lambda t: jax.tree.map(widen, t)
    x = jnp.asarray(widen(data.x_train[idx]))
    y = jnp.asarray(widen(data.y_train[idx]))

    init_key = jax.random.fold_in(jax.random.key(spec.seed), 0)
    state = obj.init(init_key, tuple(data.input_shape))
    params = f64(state.params)
    state = TrainState(
        params=params, model_state=f64(state.model_state), opt_state=obj.tx.init(params), step=jnp.int32(0)
    )

    layers = list(spec.model.layers or ())  # a sequential model has layers (the only kind explain accepts)
    kernel_shapes = {k: tuple(v["kernel"].shape) for k, v in params.items() if isinstance(v, dict) and "kernel" in v}
    names = Names.of(layers, kernel_shapes)
    layer_names = {layer.name for layer in layers}
    mask = jnp.ones(len(idx), jnp.float64)
    train_key = jax.random.fold_in(jax.random.key(spec.seed), 1)

    @jax.jit
    def loss_and_grads(p, ms, eps):
        return jax.value_and_grad(
            lambda p, e: _intercepted_loss(obj, layer_names, p, ms, x, y, e), argnums=(0, 1), has_aux=True
        )(p, eps)

    trainable = obj.trainable
    records = []

    def one_step(st, k):  # the objective's own update, kept only when finite (as in training)
        p = obj.propose(st, x, y, mask, k)
        return commit(st, p.state, Counters.zero(), p.loss, p.gnorm, p.clipped, 2**31 - 1, True)[0]

    step_fn = jax.jit(one_step)
    for s in range(steps):
        p, ms = state.params, state.model_state
        _, (zs, _) = jax.eval_shape(lambda p, ms: _intercepted_loss(obj, layer_names, p, ms, x, y, None), p, ms)
        eps = {k: jnp.zeros(v.shape, v.dtype) for k, v in zs.items() if k in kernel_shapes}
        (loss, (zs, acts)), (g_params, g_eps) = loss_and_grads(p, ms, eps)
        state = step_fn(state, jax.random.fold_in(train_key, s))
        recs = [
            _layer_record(layer, role, acts, zs, g_eps, p, g_params, state.params, trainable)
            for layer, role, _ in names.layers
        ]
        extras = _first_step_extras(obj, layers, p, ms, x, y, g_params) if s == 0 else {}
        records.append({"step": s + 1, "loss": float(loss), "layers": recs} | _opt(state, g_params, p, spec) | extras)
    return {
        "notes": _notes(spec),
        "spec": str(spec_path),
        "name": spec.name,
        "examples": [int(i) for i in idx],
        "x": np.asarray(x),
        "y": np.asarray(y),
        "loss_name": spec.train.loss.type,
        "optimizer": spec.train.optimizer.type,
        "learning_rate": getattr(spec.train.optimizer, "learning_rate", None),
        "chain": b.chain_desc,
        "names": names,
        "steps": records,
    }


def _opt(state, g_params, before, spec) -> dict:
    """The optimizer's state after the step for the followed weights (the same weights at every step)."""
    rows = optimizer_rows(
        state.opt_state, g_params, before, state.params, entries(state.opt_state), spec.train.optimizer
    )
    return {"optimizer_state": rows}


def _first_step_extras(obj, layers, p, ms, x, y, g_params) -> dict:
    """The windows of convolution/pooling layers and BPTT of recurrent layers, at the first step's weights."""
    return {"windows": windows_of(obj.net, layers, p, ms, x), "bptt": bptt_records(obj, layers, p, ms, x, y, g_params)}


def _layer_record(layer, role, acts, zs, g_eps, p, g_params, new_p, trainable) -> dict[str, Any]:
    """One layer's a, z, delta, parameters, gradients and updated parameters at one step."""
    nm = layer.name
    r: dict[str, Any] = {
        "name": nm,
        "type": layer.type,
        "role": role,
        "activation": layer.activation.type if layer.activation else "linear",
        "a": np.asarray(acts[nm]),
    }
    if nm in zs:
        r["z"] = np.asarray(zs[nm])
    if nm in g_eps:
        r["delta"] = np.asarray(g_eps[nm])
    if nm in p:  # nested layers (residual blocks) contribute their parameters under their own paths
        params, grads, new = flat(p[nm]), flat(g_params[nm]), flat(new_p[nm])
        mask = flat(trainable[nm]) if trainable is not None and nm in trainable else {}
        order = sorted(params, key=lambda k: (k != "kernel", k))
        r["params"] = {k: np.asarray(params[k]) for k in order}
        r["grads"] = {k: np.asarray(grads[k]) for k in order}
        r["updated"] = {k: np.asarray(new[k]) for k in order}
        r["frozen"] = [k for k in order if not mask.get(k, True)]
    return r


def _notes(spec: Any) -> list[str]:
    """What the printed forward pass leaves out of the real update."""
    notes = []
    if spec.train.regularizers:
        notes.append(
            "the training loss also has train.regularizers ("
            + ", ".join(r.type for r in spec.train.regularizers)
            + "): E_total, delta and the gradients above leave them out; the update includes them"
        )
    if spec.data.augment or spec.data.corruption is not None:
        notes.append(
            "training perturbs the inputs (data.augment / data.corruption); the forward pass above shows "
            "them unperturbed, the update uses the perturbed ones"
        )
    if any(layer.type == "dropout" for layer in spec.model.layers):
        notes.append("dropout is off in the forward pass above (as in evaluation) and on in the update")
    return notes


__all__ = ["explain_spec", "render", "to_json"]
