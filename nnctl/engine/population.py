"""Many trials in one compiled program: the fused loop of `Loop.chunk`, under `jax.vmap` over the members.

A population is P members of one compiled loop that differ only in their runtime inputs (`hp`: learning rate, weight
decay, momentum, eps, betas, dropout rates, seed, step limit, early-stopping settings; see nnctl.app.hyper) and, when
their seeds split the data differently, in their data. `make(hp)` rebuilds the loop from one member's inputs inside
the trace, exactly as a single run's programs do, so each member runs the program a separate run would run.

* `start`: the initial carries of all members (init from each member's seed), one program.
* `chunk`: epochs until each member's epoch limit, its own stop, or `k` of them. Under `vmap` the chunk's
  while-loops run until every member is done; a member whose loop condition is false (stopped, or at its
  limit) keeps its carry unchanged, so a stopped member stops updating exactly as a separate run stops.

Only the static facts (shapes, layer settings, loss, structure of the optimizer chain) are shared; whoever
groups members (nnctl.app.population) makes sure they agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnctl.engine.loop import Loop
from nnctl.engine.state import TrainState


def stack(trees: list[Any]) -> Any:
    """One pytree whose leaves carry a leading member axis, from P pytrees of one structure."""
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *trees)


def member(tree: Any, i: int) -> Any:
    """Host copy of member `i` of a stacked pytree."""
    return jax.tree.map(lambda a: np.asarray(a[i]), tree)


@dataclass(frozen=True)
class Population:
    """The vmapped loop of P members: `make(hp) -> Loop` (nnctl.app.builder.Built.lifted) and whether each
    member has its own data (`own_data`: the data arrays carry a leading member axis)."""

    make: Callable[[Any], Loop]
    own_data: bool = False

    def start(self, hp: Any, input_shape: tuple) -> Any:
        """The stacked initial carries (each member's variables from its own seed)."""
        return jax.vmap(lambda h: self.make(h).start(input_shape))(hp)

    def chunk(self, hp: Any, carry: Any, train: tuple, val: tuple | None, limit: jax.Array, k: int) -> tuple:
        """`Loop.chunk` of every member: (stacked carries, stacked records with `active` per member).
        `limit` holds each member's epoch limit."""
        ax = 0 if self.own_data else None
        return jax.vmap(lambda h, c, tr, va, lim: self.make(h).chunk(c, tr, va, lim, k), in_axes=(0, 0, ax, ax, 0))(
            hp, carry, train, val, limit
        )

    def evaluate(self, weights: Any, data: tuple, n: int, loop: Loop) -> dict:
        """Loss and metric sums of each member's weights on a split (the split per member when `own_data`)."""
        from_w = jax.vmap(lambda w, d: loop.evaluate(_eval_state(w), d, n), in_axes=(0, 0 if self.own_data else None))
        return from_w(weights, data)


def _eval_state(weights: dict) -> TrainState:
    return TrainState(params=weights["params"], model_state=weights["model_state"], opt_state=None, step=jnp.int32(0))
