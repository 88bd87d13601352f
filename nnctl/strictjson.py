"""Strict JSON for every file and `--json` document nnctl writes: no bare NaN / Infinity.

Python's json module writes `NaN`, `Infinity` and `-Infinity`, which JSON (RFC 8259) does not have and strict
parsers (JavaScript's JSON.parse, jq) reject. nnctl writes such a number as `null` and says why in a
`"_nonfinite"` map next to it in the same object:

    {"epoch": 3, "train/loss": null, "val/loss": null, "_nonfinite": {"train/loss": "NaN", "val/loss": "Infinity"}}

In a list, a non-finite number is `null` (the object holding the list gets no reason). `loads` turns the
`_nonfinite` entries back into floats, so nnctl reads its own files exactly as they were.
"""

from __future__ import annotations

import json
import math
import numbers
from typing import Any

NONFINITE = "_nonfinite"


def _name(v: float) -> str:
    return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")


def _bad(v: Any) -> bool:
    """A non-finite float (Python's or NumPy's)."""
    return isinstance(v, numbers.Real) and not isinstance(v, int) and not math.isfinite(v)


def sanitize(obj: Any) -> Any:
    """`obj` with every non-finite float replaced by None (and named in its object's `_nonfinite` map)."""
    if isinstance(obj, dict):
        out = {k: sanitize(v) for k, v in obj.items()}
        why = {str(k): _name(float(v)) for k, v in obj.items() if _bad(v)}
        if why:
            out[NONFINITE] = why
        return out
    if isinstance(obj, (list, tuple)):
        return [None if _bad(v) else sanitize(v) for v in obj]
    if _bad(obj):
        return None
    if hasattr(obj, "tolist") and hasattr(obj, "shape"):  # a numpy array or scalar
        return sanitize(obj.tolist())
    return obj


def _restore(d: dict) -> dict:
    why = d.get(NONFINITE)
    if not isinstance(why, dict) or not all(v in ("NaN", "Infinity", "-Infinity") for v in why.values()):
        return d
    out = {k: v for k, v in d.items() if k != NONFINITE}
    for k, name in why.items():
        if k in out and out[k] is None and name in ("NaN", "Infinity", "-Infinity"):
            out[k] = float(name.lower().replace("infinity", "inf"))
    return out


def dumps(obj: Any, **kw: Any) -> str:
    """json.dumps that never writes NaN/Infinity (ValueError if something slipped through).

    Plain JSON values with only finite numbers (a training record, nearly always) are written as they are:
    `sanitize` would return them unchanged, and walking them cost more than the dump (a tiny model's 10,000
    epochs spent most of their training time in it). Anything else takes the sanitizing path."""
    try:
        return json.dumps(obj, allow_nan=False, **kw)
    except (ValueError, TypeError):  # a non-finite float, or a NumPy value: sanitize first
        return json.dumps(sanitize(obj), allow_nan=False, **kw)


def loads(text: str) -> Any:
    """json.loads that turns the `_nonfinite` reasons back into floats."""
    return json.loads(text, object_hook=_restore)
