"""`nnctl explain`: the optimizer's state after each step, for a few weights, as a table in the notes' names.

The values are Optax's own state (the objective's optimizer chain after its real update), read from the
state's named parts: momentum's `trace` is v (v = βv + g; with `momentum_ema`, the notes' v = βv + (1 − β)g),
Adam's `mu`, `nu` are m, v (for `adam` and `adamw`, m̂ = m / (1 − β1^t), v̂ = v / (1 − β2^t) are computed from
them with the spec's β1, β2 and Optax's step count t; `adamax`'s v is its running maximum, `nadam`'s m̂ differs,
so neither gets m̂, v̂); RMSprop's `nu` is E[g²] (centered: `mu` is E[g]); Adagrad's
`sum_of_squares` is Σg². Any other state part is shown under its Optax name. Frozen weights have no state.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import optax

from nnctl.trees import flat, path_str

ENTRIES = 4  # weights followed: the first entry of each of the first trainable arrays
NAMES = {
    "TraceState": {"trace": "v"},
    "ScaleByAdamState": {"mu": "m", "nu": "v"},
    "ScaleByRmsState": {"nu": "E[g²]"},
    "ScaleByRStdDevState": {"mu": "E[g]", "nu": "E[g²]"},
    "ScaleByRssState": {"sum_of_squares": "Σg²"},
}


def _param_tree(node: Any) -> bool:
    """A tree shaped like the parameters: nested dicts of arrays (frozen leaves are MaskedNode)."""
    if isinstance(node, dict):
        return bool(node) and all(_param_tree(v) for v in node.values())
    return isinstance(node, optax.MaskedNode) or (hasattr(node, "shape") and not hasattr(node, "_fields"))


def state_parts(opt_state: Any) -> list[tuple[str, str, Any]]:
    """(state type, notes' name or Optax field name, {param path: array}) of every per-parameter state part,
    and ('count', t) of Adam's step count, found by walking Optax's named tuples."""
    out: list[tuple[str, str, Any]] = []

    def walk(node):
        if isinstance(node, optax.MaskedNode):
            return
        if hasattr(node, "_fields"):  # an Optax state (named tuple)
            kind = type(node).__name__
            for field in node._fields:
                value = getattr(node, field)
                if field == "count" and kind == "ScaleByAdamState":
                    out.append((kind, "t", int(np.asarray(value))))
                elif isinstance(value, dict) and _param_tree(value):
                    leaves = jax.tree_util.tree_flatten_with_path(
                        value, is_leaf=lambda x: isinstance(x, optax.MaskedNode)
                    )[0]
                    arrays = {path_str(p): v for p, v in leaves if not isinstance(v, optax.MaskedNode)}
                    if arrays:
                        out.append((kind, NAMES.get(kind, {}).get(field, field), arrays))
                else:
                    walk(value)
        elif isinstance(node, (tuple, list)):
            for v in node:
                walk(v)
        elif isinstance(node, dict):
            for v in node.values():
                walk(v)

    walk(opt_state)
    return out


def entries(opt_state: Any) -> list[str]:
    """The followed weights: the first entry of each of the first arrays that have optimizer state."""
    parts = [p for p in state_parts(opt_state) if isinstance(p[2], dict)]
    return list(parts[0][2])[:ENTRIES] if parts else []


def _first(a) -> float:
    return float(np.asarray(a).reshape(-1)[0])


def optimizer_rows(opt_state, grads: dict, before: dict, after: dict, followed: list[str], opt: Any) -> list[dict]:
    """One row per followed weight after a step: g, each state part, m̂ and v̂ for Adam, w before and after."""
    parts = state_parts(opt_state)
    t = next((v for _, name, v in parts if name == "t"), None)
    g, w0, w1 = flat(grads), flat(before), flat(after)
    rows = []
    for path in followed:
        index = ",".join("0" * np.ndim(g[path]))
        row: dict[str, Any] = {"weight": f"{path}[{index}]", "g": _first(g[path]), "w": _first(w0[path])}
        for _, name, arrays in parts:
            if isinstance(arrays, dict) and path in arrays:
                row[name] = _first(arrays[path])
        if t and opt.type in ("adam", "adamw") and "m" in row:  # bias corrections: Optax's count, the spec's betas
            row["m̂"] = row["m"] / (1 - opt.b1**t)
            row["v̂"] = row["v"] / (1 - opt.b2**t)
        row["w_new"] = _first(w1[path])
        rows.append(row)
    return rows


def render_optimizer(steps: list[dict], opt_name: str) -> list[str]:
    """The table: one line per step and followed weight."""
    if not any(st.get("optimizer_state") for st in steps):
        return [f"optimizer state: none ({opt_name} keeps no state per weight)"]
    cols: list[str] = []
    for st in steps:
        for row in st.get("optimizer_state", ()):
            cols += [k for k in row if k not in cols and k != "weight"]
    lines = [f"optimizer state after each step ({opt_name}; Optax's own state, first entry of each array)"]
    header = ["step", "weight", *cols]
    table = [header]
    for st in steps:
        for row in st.get("optimizer_state", ()):
            table.append([str(st["step"]), row["weight"]] + [f"{row[c]:.9g}" if c in row else "" for c in cols])
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines += ["  " + "  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in table]
    return lines
