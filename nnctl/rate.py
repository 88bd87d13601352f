"""A fraction b (an Adam beta, an RMSprop decay, a dropout rate) passed to a compiled program as an input.

Optax and Flax compute `1 - b` from a Python float: in float64, rounded once to float32. The same formula on
a float32 input b gives different last bits, so a program that reads b as an input would not reproduce the
one with b compiled in. `Rate` carries b together with its complement 1 - b, computed on the host the way
the compiled-in constant is, and answers the only arithmetic those libraries do with such a value
(`1 - b`, `b * x`, `x * b`, `b ** n`, `b > 0`): handed to `optax.adam`, `optax.rmsprop`, ... or to the `dropout`
layer, it gives the bits of the compiled-in float. It is a pytree (two leaves), so it travels in `hp`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import numpy as np


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Rate:
    """b and 1 - b as float32 values (arrays inside a trace)."""

    value: Any
    complement: Any

    @classmethod
    def of(cls, b: float) -> Rate:
        """b and 1 - b from a Python float: 1 - b in float64, then rounded (what Optax's `1 - b` constant is)."""
        return cls(np.float32(b), np.float32(1 - float(b)))

    def __rsub__(self, other: Any) -> Any:
        if isinstance(other, (int, float)) and other == 1:
            return self.complement
        return other - self.value

    def __mul__(self, other: Any) -> Any:
        return self.value * other

    def __rmul__(self, other: Any) -> Any:
        return other * self.value

    def __pow__(self, other: Any) -> Any:
        return self.value**other

    def __gt__(self, other: Any) -> bool:
        """`b > 0` (what Flax's attention asks before its dropout): True, as a Rate is made only for a
        non-zero value (a zero stays compiled in: nnctl.app.hyper); any other comparison is refused."""
        if isinstance(other, (int, float)) and other == 0:
            return True
        raise TypeError(f"a Rate is compared with 0 only, not with {other!r}")
