"""Will a built spec fit in memory? Estimated before anything is allocated, so an absurd size (`units: 10**12`)
is a located error in a second instead of a machine swapping for an hour.

The estimate is deliberately simple and a lower bound of what training needs:

    parameters:  4 bytes x parameters x 6   (weights, gradients, two optimizer moments, best and last-good copies)
    activations: 4 bytes x batch x (sum of every layer's output size) x 2   (kept for the backward pass, and
                 their gradients)

It is compared with the memory of the device training runs on (`bytes_limit` of its memory statistics), or the
machine's RAM where the device does not report one (CPU). `nnctl train --skip-memory-check` trains anyway;
`nnctl validate` makes the same check on the spec alone (parameters counted on abstract shapes).
"""

from __future__ import annotations

import math

import jax

from nnctl.app.builder import Built
from nnctl.app.inspect import param_rows
from nnctl.data.sources.npz import host_memory
from nnctl.errors import SpecError
from nnctl.jaxcfg import device_memory_limit
from nnctl.spec import Loaded

PARAM_COPIES = 6
ACTIVATION_COPIES = 2


def device_memory() -> tuple[int, str]:
    """(bytes, what) of the memory training can use."""
    limit = device_memory_limit()
    if limit is not None:
        return limit, f"{jax.local_devices()[0].platform} device memory"
    return host_memory(), "host memory (RAM)"


def estimate(loaded: Loaded, param_count: int, batch_size: int) -> dict[str, int]:
    """{parameters, activations, total} in bytes (see the module doc)."""
    assert loaded.analysis is not None  # a checked spec
    per_example = sum(math.prod(s) for s in loaded.analysis.shapes.values() if all(isinstance(d, int) for d in s))
    params = 4 * param_count * PARAM_COPIES
    acts = 4 * batch_size * per_example * ACTIVATION_COPIES
    return {"parameters": params, "activations": acts, "total": params + acts}


def check_memory(b: Built) -> None:
    """A SpecError (located at `model`, with the numbers) when the estimate exceeds the available memory."""
    check_sizes(b.loaded, b.param_count, b.loop.batch_size)


def check_spec_sizes(loaded: Loaded) -> None:
    """`check_memory` before anything is built (`nnctl validate`): parameters counted on abstract shapes, the
    batch from the spec (`full`: 1, which keeps the estimate a lower bound)."""
    count = sum(r.count for r in param_rows(loaded))
    batch = loaded.spec.train.batch_size
    check_sizes(loaded, count, batch if isinstance(batch, int) else 1)


def check_sizes(loaded: Loaded, param_count: int, batch_size: int) -> None:
    need = estimate(loaded, param_count, batch_size)
    have, what = device_memory()
    if need["total"] <= have:
        return
    shapes = loaded.analysis.shapes if loaded.analysis is not None else {}
    big = max(shapes.items(), key=lambda kv: math.prod(kv[1]) if kv[1] else 0, default=None)
    widest = f"; the widest layer is '{big[0]}' with output {list(big[1])}" if big else ""
    msg = (
        f"training this model needs at least {_gib(need['total'])} ({param_count:,} parameters: "
        f"{_gib(need['parameters'])}; activations for batch {batch_size}: {_gib(need['activations'])}), "
        f"more than the {_gib(have)} of {what}{widest}. Make the model or the batch smaller, or pass "
        f"--skip-memory-check to try anyway"
    )
    raise SpecError([loaded.problem(("model",), msg)])


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.1f} MiB"
