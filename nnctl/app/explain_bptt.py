"""`nnctl explain`: backpropagation through time written out for `simple_rnn` layers, in the notes' terms.

The notes' recurrence is S_t = g1(Wx x_t + Ws S_{t-1}) (+ b), with the same Wx, Ws at every step. The layer is
unrolled here step by step from its own parameters (and its own activation, tanh by default), and that
unrolled output is put into the spec's network in place of the layer's (flax method interception), so
E is the training loss of the real network. A zero perturbation of every z_t = Wx x_t + Ws S_{t-1} + b gives,
in one `jax.grad`, δ_t = ∂E/∂z_t through all later steps; the gradient is then the sum over paths

    ∂E/∂Ws = Σ_i ∂E/∂S_i · ∂⁺S_i/∂Ws = Σ_i S_{i-1}ᵀ δ_i      ∂E/∂Wx = Σ_i x_iᵀ δ_i      ∂E/∂b = Σ_i δ_i

(∂⁺: the explicit part, S_{i-1} held fixed). For one example and one unit, each path is also written as the
notes' chain ∂E/∂S_T · ∂S_T/∂S_{T-1} ··· ∂S_{i+1}/∂S_i · ∂S_i/∂Ws with ∂S_t/∂S_{t-1} = g1'(z_t) Ws and
∂S_i/∂Ws = g1'(z_i) S_{i-1}. Two checks are printed: the unrolled states against the layer's real output,
and each sum of paths against the gradient automatic differentiation gives for the whole network.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from nnctl import activations
from nnctl.layers.graph import INPUT, Network

MAX_PATHS = 10  # paths written out one by one (the last ones; earlier ones are summed on one line)


def _unroll(layer: Any, p: dict, xin, eps):
    """(S (T, B, u), z (T, B, u), module output) of the layer on xin (B, T, F), with eps (T, B, u) added to z."""
    f = (lambda a: activations.apply(layer.activation, a)) if layer.activation is not None else jnp.tanh
    b = p["bias"][None] if "bias" in p else 0.0

    def step(s, inp):
        xt, e = inp
        z = xt @ p["kernel"] + s @ p["recurrent_kernel"] + b + e
        s = f(z)
        return s, (s, z)

    s0 = jnp.zeros((xin.shape[0], p["recurrent_kernel"].shape[0]), xin.dtype)
    _, (ss, zs) = jax.lax.scan(step, s0, (xin.transpose(1, 0, 2), eps))
    # the layer's module returns z when the activation is given (the network applies it), else S = tanh(z)
    mod = zs if layer.activation is not None else ss
    return ss, zs, (mod.transpose(1, 0, 2) if layer.return_sequences else mod[-1])


def _loss(obj, layer, params, model_state, x, y, xin, eps):
    """The training loss with the layer's output replaced by the unrolled one."""
    state: dict = {}

    def interceptor(next_fun, args, kwargs, context):
        m = context.module
        if context.method_name == "__call__" and m.name == layer.name and isinstance(m.parent, Network):
            ss, zs, out = _unroll(layer, params[layer.name], xin, eps)
            state.update(S=ss, z=zs)
            return out
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(interceptor):
        logits = obj.net.apply({"params": params, **model_state}, x, train=False, head=False)
    loss = jnp.mean(obj.per_example(logits, y)) + obj.penalty(params)
    return loss, (state["S"], state["z"])


def bptt_records(obj, layers: list, params: dict, model_state: dict, x, y, g_params: dict) -> list[dict]:
    """One record per top-level recurrent layer: the unrolled steps and paths (simple_rnn), or why not."""
    recs = []
    for layer in layers:
        if layer.type not in ("simple_rnn", "lstm", "gru"):
            continue
        if layer.type != "simple_rnn" or layer.bidirectional:
            why = "bidirectional" if layer.type == "simple_rnn" else f"a {layer.type} (gated cells)"
            recs.append(
                {
                    "name": layer.name,
                    "type": layer.type,
                    "skipped": f"BPTT is written out per step for a one-direction simple_rnn; {layer.name} is "
                    f"{why}: its gradients are in the backward pass above",
                }
            )
            continue
        recs.append(_record(obj, layer, params, model_state, x, y, g_params[layer.name]))
    return recs


def _record(obj, layer, params, model_state, x, y, auto: dict) -> dict:
    src = layer.inputs[0]
    if src == INPUT:
        xin = x
    else:
        xin = obj.net.apply({"params": params, **model_state}, x, train=False, capture=(src,))[1][src]
    t, bsz, u = xin.shape[1], xin.shape[0], params[layer.name]["recurrent_kernel"].shape[0]
    eps = jnp.zeros((t, bsz, u), xin.dtype)
    (loss, (ss, zs)), delta = jax.value_and_grad(
        lambda e: _loss(obj, layer, params, model_state, x, y, xin, e), has_aux=True
    )(eps)
    real = obj.net.apply({"params": params, **model_state}, x, train=False, capture=(layer.name,))[1][layer.name]
    mine = ss.transpose(1, 0, 2) if layer.return_sequences else ss[-1]
    f = (lambda a: activations.apply(layer.activation, a)) if layer.activation is not None else jnp.tanh
    fprime = jax.jvp(f, (zs,), (jnp.ones_like(zs),))[1]
    prev = jnp.concatenate([jnp.zeros_like(ss[:1]), ss[:-1]])  # S_{i-1}, S_0 = 0
    ws_terms = jnp.einsum("tbu,tbv->tuv", prev, delta)
    wx_terms = jnp.einsum("btf,tbv->tfv", xin, delta)
    p = params[layer.name]
    return {
        "name": layer.name,
        "type": layer.type,
        "activation": layer.activation.type if layer.activation is not None else "tanh",
        "many_to_one": not layer.return_sequences,
        "bias": "bias" in p,
        "x": np.asarray(xin.transpose(1, 0, 2)),
        "S": np.asarray(ss),
        "z": np.asarray(zs),
        "fprime": np.asarray(fprime),
        "delta": np.asarray(delta),
        "Ws": np.asarray(p["recurrent_kernel"]),
        "Wx": np.asarray(p["kernel"]),
        "Ws_paths": np.asarray(ws_terms),
        "Wx_paths": np.asarray(wx_terms),
        "Ws_autodiff": np.asarray(auto["recurrent_kernel"]),
        "Wx_autodiff": np.asarray(auto["kernel"]),
        "states_vs_layer": float(jnp.max(jnp.abs(mine - real))),
        "loss": float(loss),
    }


def _n(v) -> str:
    return f"{float(v) + 0.0:.9g}"  # + 0.0: no "-0"


def _v(a) -> str:
    """A value for text: a number, a short list, or a summary (shape and norm)."""
    a = np.asarray(a)
    if a.size == 1:
        return _n(a.reshape(-1)[0])
    if a.size <= 16:
        return "[" + ", ".join(_n(v) for v in a.reshape(-1)) + "]"
    return f"(shape {list(a.shape)}, norm {_n(np.linalg.norm(a))})"


def render_bptt(recs: list[dict]) -> list[str]:
    lines = []
    for r in recs:
        if "skipped" in r:
            lines.append(f"    {r['skipped']}")
            continue
        t, b = r["S"].shape[0], r["S"].shape[1]
        kind = "many-to-one: E depends on S only through S" + str(t) if r["many_to_one"] else "many-to-many"
        b_term = " + b" if r["bias"] else ""
        lines.append(
            f"    {r['name']}: S_t = {r['activation']}(Wx x_t + Ws S_(t-1){b_term}), S0 = 0, {t} steps ({kind})"
        )
        lines.append(f"      Wx = {_v(r['Wx'])}  Ws = {_v(r['Ws'])}")
        ex = "" if b == 1 else f" (example 0 of {b}; the gradients sum over all)"
        for i in range(t):
            lines.append(
                f"      t={i + 1}: x{i + 1} = {_v(r['x'][i, 0])}  z{i + 1} = {_v(r['z'][i, 0])}  "
                f"S{i + 1} = {r['activation']}(z{i + 1}) = {_v(r['S'][i, 0])}  δ{i + 1} = ∂E/∂z{i + 1} = "
                f"{_v(r['delta'][i, 0])}{ex if i == 0 else ''}"
            )
        lines += _paths(r, "Ws", "S")
        lines += _paths(r, "Wx", "x")
        lines.append(
            f"      the unrolled states equal the layer's own output (largest difference {r['states_vs_layer']:.3g})"
        )
    return lines


def _paths(r: dict, w: str, src: str) -> list[str]:
    """∂E/∂W as its sum over paths, each path written out, then the sum against autodiff."""
    t = r["S"].shape[0]
    terms, auto = r[f"{w}_paths"], r[f"{w}_autodiff"]
    sub = "S_(i-1)" if src == "S" else "x_i"
    lines = [f"      ∂E/∂{w} summed over the paths through S1..S{t} (path i: ∂E/∂S_i · ∂⁺S_i/∂{w} = {sub}ᵀ δ_i):"]
    chain = r["many_to_one"] and r["S"].shape[1] == 1 and r["S"].shape[2] == 1 and np.asarray(r[w]).shape[0] == 1
    first = max(0, t - MAX_PATHS)
    if first:
        lines.append(f"        paths 1..{first}: together {_v(terms[:first].sum(axis=0))}")
    for i in range(first, t):
        lines.append(f"        path {i + 1}: " + (_chain(r, w, i) if chain else "") + _v(terms[i]))
    total = terms.sum(axis=0)
    diff = float(np.max(np.abs(total - auto)))
    lines.append(f"        sum = {_v(total)}   autodiff ∂E/∂{w} = {_v(auto)}   (largest difference {diff:.3g})")
    return lines


def _chain(r: dict, w: str, i: int) -> str:
    """The notes' chain for path i (0-based) of one example and one unit: factors, then their product."""
    t = r["S"].shape[0]
    fp, ws = r["fprime"][:, 0, 0], float(np.asarray(r["Ws"]).reshape(-1)[0])
    dE_dST = r["delta"][t - 1, 0, 0] / fp[t - 1] if fp[t - 1] != 0 else 0.0
    names = [f"∂E/∂S{t}"] + [f"∂S{k + 1}/∂S{k}" for k in range(t - 1, i, -1)] + [f"∂S{i + 1}/∂{w}"]
    src = r["S"][i - 1, 0, 0] if (w == "Ws" and i > 0) else (0.0 if w == "Ws" else r["x"][i, 0, 0])
    vals = [dE_dST] + [fp[k] * ws for k in range(t - 1, i, -1)] + [fp[i] * src]
    return " · ".join(names) + " = " + " · ".join(_n(v) for v in vals) + " = "
