"""The `search:` section of a spec: the hyperparameter space `nnctl sweep` explores, and how.

Each key of `space` is a path as `--set` writes it (`train.optimizer.learning_rate`, `model.layers[0].units`);
its value is one distribution. What a path's values must satisfy is checked by `nnctl sweep` against the
spec itself (every corner of the space is validated before any trial runs); this module checks what can be
checked from the section alone: ranges, log scales, steps and choice types.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import Field, StrictBool, field_validator, model_validator

from nnctl.registry import Strict

Scalar = Union[StrictBool, int, float, str, None]
# Module-level names for the field types, so the fields may be called `float` and `int` (the YAML keys).
Number = Annotated[float, Field(allow_inf_nan=False)]
FloatRange = list[Number]
IntRange = list[int]


class Distribution(Strict):
    """One searched value: `{float: [lo, hi], log: true}`, `{int: [lo, hi], step: 2}` or `{choice: [a, b]}`."""

    float: Optional[FloatRange] = Field(None, description="[lo, hi]: a real number in the closed range (lo < hi)")
    int: Optional[IntRange] = Field(None, description="[lo, hi]: an integer in the closed range")
    choice: Optional[list[Scalar]] = Field(
        None, min_length=1, description="one of these values (numbers, strings, booleans or null; one kind)"
    )
    log: bool = Field(False, description="float/int: sample on a log scale (needs lo > 0)")
    step: Optional[Number] = Field(None, gt=0, description="float/int: only lo, lo + step, lo + 2 step, ...")

    @field_validator("float", "int")
    @classmethod
    def _range(cls, v: Optional[list]) -> Optional[list]:
        if v is None:
            return v
        if len(v) != 2:
            raise ValueError(f"a range is [lo, hi] (two numbers), got {v}")
        if v[0] > v[1]:
            raise ValueError(f"lo > hi in [{v[0]}, {v[1]}]: write the range as [{v[1]}, {v[0]}]")
        return v

    @field_validator("choice")
    @classmethod
    def _choices(cls, v: Optional[list]) -> Optional[list]:
        if v is None:
            return v
        kinds = {"number" if isinstance(c, (int, float)) and not isinstance(c, bool) else type(c).__name__ for c in v}
        kinds.discard("NoneType")
        if len(kinds) > 1:
            raise ValueError(f"choices mix {' and '.join(sorted(kinds))} values: {v}; give values of one kind")
        if len(set(map(repr, v))) != len(v):
            raise ValueError(f"choices repeat a value: {v}")
        return v

    @model_validator(mode="after")
    def _one(self) -> Distribution:
        given = [k for k, v in (("float", self.float), ("int", self.int), ("choice", self.choice)) if v is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of float: [lo, hi], int: [lo, hi] or choice: [...]"
                + (f" (got {', '.join(given)})" if given else "")
            )
        rng = self.float if self.float is not None else self.int
        if rng is None:
            if self.log or self.step is not None:
                raise ValueError("log and step apply to float and int ranges, not to choice")
            return self
        lo, hi = rng
        if self.float is not None and lo == hi:
            raise ValueError(f"the range [{lo}, {hi}] is empty: give lo < hi, or a fixed value in the spec")
        if self.log and lo <= 0:
            raise ValueError(f"log: true needs lo > 0, got [{lo}, {hi}]: a log scale cannot reach {lo}")
        if self.log and self.step is not None:
            raise ValueError("give log or step, not both")
        if self.int is not None and self.step is not None and self.step != int(self.step):
            raise ValueError(f"an int range's step is a whole number, got {self.step}")
        if self.step is not None and self.step > hi - lo and lo != hi:
            raise ValueError(f"step {self.step} is larger than the range [{lo}, {hi}]")
        return self

    @property
    def kind(self) -> str:
        return "float" if self.float is not None else ("int" if self.int is not None else "choice")

    def corners(self) -> list:
        """The values that bound the distribution: lo and hi of a range (on its step grid), every choice."""
        if self.choice is not None:
            return list(self.choice)
        rng = self.float if self.float is not None else self.int
        assert rng is not None
        lo, hi = rng
        if self.step is not None:
            hi = lo + self.step * ((hi - lo) // self.step)
        if self.int is not None:
            return sorted({int(lo), int(hi)})
        return [float(lo), float(hi)]


class SearchSpec(Strict):
    """What `nnctl sweep` searches: the space, the metric it optimises, and the trial budget."""

    space: dict[str, Distribution] = Field(
        ...,
        min_length=1,
        description="{path: distribution}: paths as --set writes them (train.optimizer.learning_rate, "
        "model.layers[0].units); distributions {float: [lo, hi], log: true}, {int: [lo, hi], step: s}, "
        "{choice: [...]}",
    )
    metric: Optional[str] = Field(
        None,
        description="what a trial scores: its best epoch's value of this metric (default: the early-stopping "
        "monitor, else val_loss)",
    )
    direction: Optional[Literal["minimize", "maximize"]] = Field(
        None, description="default: from the metric (accuracy, f1, ... maximize; losses minimize)"
    )
    trials: int = Field(20, gt=0, description="trials in the study (a rerun counts the finished ones)")
    timeout: Optional[float] = Field(None, gt=0, description="seconds after which no new trial starts")
    sampler: Literal["tpe", "random", "grid", "cmaes", "qmc"] = Field(
        "tpe", description="Optuna sampler; grid needs choice or int ranges (every combination)"
    )
    pruner: Literal["median", "hyperband", "none"] = Field(
        "median", description="stop unpromising trials early from their per-epoch validation records"
    )
    seed: Optional[int] = Field(None, ge=0, description="the sampler's seed (default: the spec's seed)")
    population: Union[Literal["auto"], Annotated[int, Field(ge=1)]] = Field(
        1,
        description="trials trained at once as one compiled program (jax.vmap); needs every searched path to be "
        "a runtime hyperparameter (learning rate, schedule values, weight decay, momentum, eps, betas, decays, "
        "dropout rates, seed, early-stopping settings). auto: 16 (at most `trials`) when the space allows it, "
        "else one at a time",
    )

    @field_validator("space")
    @classmethod
    def _paths(cls, v: dict) -> dict:
        for path in v:
            if not path or path.startswith(("search", "name")) or "=" in path:
                raise ValueError(f"'{path}' cannot be searched: give a path into data, model, train or seed")
        return v
