"""A sweep's plan: the spec's `search:` section checked against the spec itself before any trial runs.

Every corner of the space (each range's ends and an inside value, each choice, all-low and all-high together)
is applied to the spec as `--set` would apply it and validated in full (shapes, losses, optimizers), so a path
that does not exist or a value the spec would reject is a located error at its `search.space` key, not a failed
trial an hour in. The metric must be one a run records; its direction comes from the metric registry.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nnctl.app.population import runtime_paths
from nnctl.data.peek import resolve
from nnctl.errors import Problem, SpecError, choices_text, did_you_mean
from nnctl.metrics import METRICS
from nnctl.spec import Loaded, load_spec, load_text
from nnctl.spec.check import monitor_key
from nnctl.spec.search import Distribution, SearchSpec

_SEG = re.compile(r"([^.\[\]]+)|\[(\d+)\]")  # the steps of a --set path, as nnctl.spec reads them


@dataclass(frozen=True)
class Plan:
    """A validated sweep: the spec (with its search section), the base spec trials start from (the spec's own
    YAML data without `search`, data paths absolute), the metric's record key and the direction."""

    spec_path: str
    loaded: Loaded
    search: SearchSpec
    base: dict
    name: str
    metric: str  # as the user writes it: val_accuracy
    key: str  # as the records hold it: val/accuracy
    direction: str  # minimize | maximize
    population: int = 1  # trials trained at once as one program (nnctl.app.population)
    population_note: str | None = None  # why `population: auto` trains one trial at a time

    def fingerprint(self) -> dict:
        """What a study must agree on to be continued: the space, the metric and the base spec."""
        space = {p: d.model_dump(exclude_none=True) for p, d in self.search.space.items()}
        base = hashlib.sha256(json.dumps(self.base, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return {"space": space, "metric": self.metric, "direction": self.direction, "base_spec": base}


def trial_overrides(params: dict[str, Any]) -> tuple[str, ...]:
    """`--set` texts for a trial's values (JSON is YAML: strings stay strings, numbers numbers)."""
    return tuple(f"{path}={json.dumps(v)}" for path, v in params.items())


def plan_sweep(spec_path: str, check_corners: bool = True) -> Plan:
    """Load a spec with a `search:` section and check the whole sweep.

    Args:
        spec_path: the YAML spec.
        check_corners: validate the spec at every corner of the space (workers skip it: the parent did).
    Raises:
        SpecError: no search section, a bad metric, or a corner of the space the spec rejects (all at once).
    """
    loaded = load_spec(spec_path)
    search = loaded.spec.search
    if search is None:
        raise SpecError(
            [
                Problem(
                    "search",
                    "the spec has no search section: add search: {space: {train.optimizer.learning_rate: "
                    "{float: [1.0e-4, 1.0e-2], log: true}}} (see docs/sweep.md)",
                    loaded.file,
                )
            ]
        )
    metric, key, direction = _metric(loaded, search)
    base = _base(loaded, search)
    problems = _corner_problems(loaded, search, base) if check_corners else []
    if search.sampler == "grid":
        problems += [
            loaded.problem(
                ("search", "space", p), "sampler: grid needs choice or int ranges; this is a float range", True
            )
            for p, d in search.space.items()
            if d.kind == "float" and d.step is None
        ]
    size, note = 1, None
    if not problems and search.population != 1:
        size, note, more = _population(loaded, search, base)
        problems += more
    if problems:
        raise SpecError(problems)
    name = loaded.spec.name or Path(spec_path).stem
    return Plan(spec_path, loaded, search, base, name, metric, key, direction, size, note)


AUTO_POPULATION = 16  # `population: auto`: trials per program (measured in bench/RESULTS.md)


def _population(loaded: Loaded, search: SearchSpec, base: dict) -> tuple[int, str | None, list[Problem]]:
    """(population size, why auto falls back to one trial at a time, problems): every searched path must be a
    runtime input of the compiled programs (nnctl.app.population.runtime_paths) at the space's high corner."""
    high = {p: d.corners()[-1] for p, d in search.space.items()}
    spec = load_text(yaml.safe_dump(base, sort_keys=False), loaded.file, trial_overrides(high), loaded.base_dir).spec
    runtime = runtime_paths(spec)
    shaping = [p for p in search.space if p not in runtime]
    blocked = None if spec.model.init_from is None else "model.init_from"
    blocked = blocked or (None if spec.train.checkpoint is None else "train.checkpoint")
    auto = search.population == "auto"
    size = min(AUTO_POPULATION, search.trials) if auto else int(search.population)
    if not shaping and blocked is None:
        return size, None, []
    allowed = (
        "learning rate and schedule values, weight decay, momentum, eps, betas, decays, dropout rates, seed, "
        "early-stopping settings"
    )
    if auto:
        why = f"{shaping[0]} changes the compiled program" if shaping else f"the spec sets {blocked}"
        return 1, f"population: auto trains one trial at a time: {why}", []
    if blocked is not None:
        at: tuple = ("search", "population")
        return 1, None, [loaded.problem(at, f"a population cannot train a spec with {blocked}: remove one of them")]
    return (
        1,
        None,
        [
            loaded.problem(
                ("search", "space", p),
                f"{p} forces sequential trials: search.population trains trials that differ only in runtime "
                f"hyperparameters ({allowed}); use population: auto or 1, or search this path in another sweep",
                key=True,
            )
            for p in shaping
        ],
    )


def _metric(loaded: Loaded, search: SearchSpec) -> tuple[str, str, str]:
    spec = loaded.spec
    es = spec.train.early_stopping
    metric = search.metric or (es.monitor if es is not None else "val_loss")
    where: tuple = ("search", "metric") if search.metric else ("search",)
    split, name = monitor_key(metric)
    known = ["loss", *spec.train.metrics]
    if name not in known:
        allowed = [f"{p}{m}" for p in ("", "val_") for m in known]
        raise SpecError(
            [
                loaded.problem(
                    where,
                    f"no run records metric '{metric}'.{did_you_mean(metric, allowed)} Choices: "
                    f"{choices_text(allowed)} (add a metric to train.metrics to search on it)",
                )
            ]
        )
    if split == "val" and spec.data.validation_split == 0:
        raise SpecError(
            [
                loaded.problem(
                    where,
                    f"metric '{metric}' needs validation data: set data.validation_split (e.g. 0.2); "
                    f"searching on a training metric rewards overfitting",
                )
            ]
        )
    mode = "min" if name == "loss" else METRICS.get(name).mode
    direction = search.direction or ("maximize" if mode == "max" else "minimize")
    return metric, f"{split}/{name}", direction


def _corners(space: dict[str, Distribution]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path, d in space.items():
        values = d.corners()
        if d.kind == "float" and d.step is None:  # an inside value too: 8.0 passes as an int, 23.7 does not
            lo, hi = values
            values = [*values, lo + 0.371 * (hi - lo)]
        out += [{path: v} for v in values]
    if len(space) > 1:
        out += [{p: d.corners()[0] for p, d in space.items()}, {p: d.corners()[-1] for p, d in space.items()}]
    return out


def _corner_problems(loaded: Loaded, search: SearchSpec, base: dict) -> list[Problem]:
    """Validate the base spec at each corner; problems are located at the space key that caused them."""
    text = yaml.safe_dump(base, sort_keys=False)
    problems: dict[tuple, Problem] = {}
    for corner in _corners(search.space):
        if len(corner) > 1 and problems:  # the combinations only when every value passes on its own
            break
        try:
            load_text(text, loaded.file, trial_overrides(corner), loaded.base_dir)
        except SpecError as e:
            at: tuple = ("search", "space", next(iter(corner))) if len(corner) == 1 else ("search", "space")
            values = ", ".join(f"{p} = {json.dumps(v)}" for p, v in corner.items())
            for p in e.problems:
                where = f"{p.path}: " if p.path and p.path not in corner else ""
                message = f"with {values}: {where}{p.message.replace('--set cannot', 'cannot')}"
                problems.setdefault((at, p.path, p.message), loaded.problem(at, message, key=True))
    return list(problems.values())


def _base(loaded: Loaded, search: SearchSpec) -> dict:
    """The spec's own data without `search`, with relative data and init_from paths made absolute, and the
    `type` of a defaulted section a searched path goes into (`train.optimizer.learning_rate` in a spec that
    leaves the optimizer at its default adam) written out, as `--set` alone would leave it without one."""
    data = copy.deepcopy(loaded.located.data)
    data.pop("search", None)
    resolved = loaded.spec.model_dump(mode="json", exclude_none=True)
    for path in search.space:
        _fill_type(data, resolved, path)
    base_dir = Path(loaded.base_dir)
    src = data.get("data") or {}
    if isinstance(src.get("path"), str):
        src["path"] = str(resolve(src["path"], base_dir).resolve())
    model = data.get("model") or {}
    init = model.get("init_from")
    if isinstance(init, str) and not Path(init).exists() and (base_dir / init).exists():
        model["init_from"] = str((base_dir / init).resolve())
    return data


def _fill_type(data: Any, resolved: Any, path: str) -> None:
    steps: list[Any] = [int(m.group(2)) if m.group(2) else m.group(1) for m in _SEG.finditer(path)]
    for step in steps[:-1]:
        if isinstance(data, dict) and isinstance(resolved, dict) and isinstance(step, str):
            if step not in data and isinstance(resolved.get(step), dict) and "type" in resolved[step]:
                data[step] = {"type": resolved[step]["type"]}
            data, resolved = data.get(step), resolved.get(step)
        elif isinstance(data, list) and isinstance(resolved, list) and isinstance(step, int) and step < len(data):
            data, resolved = data[step], resolved[step] if step < len(resolved) else None
        else:
            return
