"""What the objectives training several networks with their own optimizer chains share (aae, vaegan,
cyclegan): the logged chain, the banner's description and the initial state with one optimizer state per
group of sub-networks."""

from __future__ import annotations

from typing import Any, ClassVar

import jax.numpy as jnp

from nnctl.chain import Chain
from nnctl.engine.state import TrainState


class ChainedParts:
    """Mixin of a frozen objective dataclass with `net` (a Flax module whose parameters are keyed by
    sub-network) and `chains` ({chain name: Chain}); `GROUPS` says which sub-networks each chain updates and
    `LOGGED` whose learning rate is logged."""

    GROUPS: ClassVar[dict[str, tuple[str, ...]]]
    LOGGED: ClassVar[str]
    net: Any
    chains: dict[str, Chain]

    @property
    def chain(self) -> Chain:
        return self.chains[self.LOGGED]

    @property
    def lr(self) -> Any:
        return self.chain.lr

    def describe(self) -> str:
        return "; ".join(f"{part}: {c.description}" for part, c in self.chains.items())

    def init(self, key, input_shape) -> TrainState:
        variables = self.net.init({"params": key, "dropout": key}, jnp.zeros((1, *input_shape)), train=False)
        p = variables["params"]
        return TrainState(
            params=p,
            model_state={k: v for k, v in variables.items() if k != "params"},
            opt_state={g: self.chains[g].tx.init({n: p[n] for n in nets}) for g, nets in self.GROUPS.items()},
            step=jnp.int32(0),
        )
