"""Population training: trials that differ only in runtime hyperparameters, trained as one compiled program,
each written to its own normal run directory.

`plan_groups` loads every member's spec (the base spec with its `--set` overrides), prepares its data (once
per distinct split) and groups the members that can share one program: the same spec once the runtime values
(`runtime_paths`: learning rate and schedule values, weight decay, momentum, eps, betas and decays, dropout
rates, seed, early-stopping settings) are set aside, and data of the same shapes. `train_group` trains one group with
`nnctl.app.population_fit` and writes each member's run directory as `train_run` would (resolved spec, data
record, logs, weights, summary with its test score), so `nnctl eval` and `nnctl runs` treat it like any run.
"""

from __future__ import annotations

import dataclasses
import json
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnctl import interrupt, rundir
from nnctl.app.builder import Built, build, check_metrics, early_stopping
from nnctl.app.fitting import FitResult, StopFlag
from nnctl.app.hyper import hyperparams, runtime_values
from nnctl.app.population_fit import OnEpoch, fit_population, score_members
from nnctl.app.session import write_final, write_run_info, write_start
from nnctl.app.summary import summarize
from nnctl.data.prepare import prepare
from nnctl.errors import NnctlError, TrainingInterrupted
from nnctl.logs import RunLogs
from nnctl.spec import load_spec

ES_RUNTIME = ("patience", "min_delta", "start_from_epoch", "baseline", "stopping_threshold", "divergence_threshold")


def runtime_paths(spec: Any) -> set[str]:
    """The spec paths population members may differ in (inputs of the compiled programs, nnctl.app.hyper)."""
    paths = set(runtime_values(spec)) | {"seed"}
    if spec.train.early_stopping is not None:
        paths |= {f"train.early_stopping.{f}" for f in ES_RUNTIME}
    return paths


def signature(spec: Any) -> str:
    """What members of one population must share: the spec without its name, search section and runtime
    values (which of them are set is kept: a zero weight decay removes a link of the optimizer chain)."""
    doc = spec.model_dump(mode="json")
    doc.update(name=None, search=None)
    keep_seed = spec.train.class_weight is not None  # balanced weights come from the seed's split
    for path in runtime_paths(spec) - ({"seed"} if keep_seed else set()):
        *head, last = path.replace("[", ".[").split(".")  # model.layers[1].rate: a list item by index
        node = doc
        for step in head:
            if isinstance(node, list) and step[1:-1].isdigit() and int(step[1:-1]) < len(node):
                node = node[int(step[1:-1])]
            else:
                node = node.get(step) if isinstance(node, dict) else None
        if isinstance(node, dict) and last in node and node[last] is not None:
            node[last] = "<runtime>"
    return json.dumps(doc, sort_keys=True, default=str)


def blocker(b: Built) -> str | None:
    """Why a built spec cannot train as a population member (None: it can)."""
    spec = b.loaded.spec
    if b.placement == "stream":
        return "its data is streamed from the host (data_placement: stream)"
    if b.loop.placement is not None:
        return "it trains data-parallel over several devices (train.devices)"
    if spec.model.init_from:
        return "model.init_from copies weights in per run"
    if spec.train.checkpoint is not None:
        return "train.checkpoint (population members write their weights once, at the end)"
    return None


@dataclass(frozen=True)
class Member:
    """One trial of a population: its new run directory, its `--set` overrides of the base spec, and its
    epoch callback (True: stop this member now, e.g. a pruner)."""

    run_dir: Path
    overrides: tuple[str, ...]
    on_epoch: OnEpoch = lambda r: False


@dataclass(frozen=True)
class Group:
    """Members (indices into the caller's list) that share one program, their built specs, and why they
    must train one by one instead (None: as a population)."""

    index: list[int]
    builts: list[Built]
    blocker: str | None
    key: Any = None  # what identifies the group's program (its signature and data shapes)


@dataclass
class MemberResult:
    run_dir: Path
    summary: dict
    records: Sequence[dict] = field(default_factory=list)


class PopulationInterrupted(TrainingInterrupted):
    """A signal stopped a population: the members' run directories are written (status `interrupted` for
    those still training) and `results` holds every member's."""

    def __init__(self, message: str, exit_code: int, results: list[MemberResult]):
        super().__init__(message, exit_code)
        self.results = results


def plan_groups(spec_path: str, overrides: list[tuple[str, ...]]) -> tuple[list[Group], dict[int, str]]:
    """Load, prepare and build each member and group them; ({index: error} for members whose values fail)."""
    errors: dict[int, str] = {}
    datas: dict[tuple, Any] = {}
    firsts: dict[str, Built] = {}
    groups: dict[tuple, list[tuple[int, Built]]] = {}
    for i, ov in enumerate(overrides):
        try:
            loaded = load_spec(spec_path, ov)
            sig = signature(loaded.spec)
            key = (sig, loaded.spec.seed)
            if key not in datas:
                datas[key] = prepare(loaded.spec, loaded.analysis, loaded.base_dir)
            b = _built(firsts.get(sig), loaded, datas[key])
        except NnctlError as e:
            errors[i] = str(e)
            continue
        firsts.setdefault(sig, b)
        groups.setdefault((sig, _shapes(b)), []).append((i, b))
    out = [Group([i for i, _ in g], [b for _, b in g], blocker(g[0][1]), k) for k, g in groups.items()]
    return out, errors


def _shapes(b: Built) -> tuple:
    d = b.data
    return tuple(None if a is None else a.shape for a in (d.x_train, d.y_train, d.x_val, d.y_val, d.x_test))


def _built(first: Built | None, loaded: Any, data: Any) -> Built:
    """A member's Built: built in full for the first member of a signature; for the others (the same spec up
    to runtime values, data of the same shapes) the first one's objective and loop with their own spec, data
    and runtime inputs, which is all that differs (tracing the objective again costs more than the member)."""
    if first is None:
        return build(loaded, data)
    b = dataclasses.replace(first, loaded=loaded, data=data)
    if _shapes(b) != _shapes(first):
        return build(loaded, data)
    check_metrics(loaded, data.task)
    _, es, _ = early_stopping(loaded.spec, data)
    return dataclasses.replace(b, hp=hyperparams(loaded.spec, es, first.loop.max_steps))


def train_group(spec_path: str, group: Group, members: list[Member], target_chunk_s: float = 0.25) -> list:
    """Train a group's members (`members[i]` for i in `group.index`) as one population; write their runs.

    Raises:
        PopulationInterrupted: a signal; every member's run directory is written first.
    """
    chosen = [members[i] for i in group.index]
    runs, locks, logs = [], [], []
    try:
        for m, b in zip(chosen, group.builts):
            run, lock = rundir.new_run_dir(str(m.run_dir), b.loaded.spec.name or m.run_dir.name)
            runs.append(run)
            locks.append(lock)
            write_start(run, b.loaded, spec_path, m.overrides, b.data)
            write_run_info(run, None)
            logs.append(RunLogs(run, tuple(b.loaded.spec.train.log)))
        callbacks = [_logged(lg, m.on_epoch) for lg, m in zip(logs, chosen)]
        stop = StopFlag()
        old = {s: signal.signal(s, stop) for s in interrupt.SIGNALS}
        try:
            fit = fit_population(group.builts, callbacks, stop, target_chunk_s, _program_key(group))
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        for lg in logs:
            lg.close()
        tests = score_members(group.builts, fit.results, _program_key(group))
        n = len(chosen)
        parts = zip(group.builts, runs, fit.results, tests)
        results = [_write(b, run, r, t, i, n) for i, (b, run, r, t) in enumerate(parts)]
    finally:
        for lg in logs:
            lg.close()
        for lock in locks:
            lock.release()
    if fit.interrupted:
        assert stop.signum is not None
        raise PopulationInterrupted(
            f"{signal.Signals(stop.signum).name}: the population of {n} trials stopped; finished members are "
            f"written, the others are marked interrupted",
            interrupt.exit_code(stop.signum),
            results,
        )
    return results


def _program_key(group: Group) -> Any:
    own = not all(b.data is group.builts[0].data for b in group.builts)
    return None if group.key is None else (group.key, len(group.builts), own)


def _logged(logs: RunLogs, on_epoch: OnEpoch) -> OnEpoch:
    def record(r: dict) -> bool:
        logs.write(r)
        return on_epoch(r)

    return record


def _write(b: Built, run: Path, res: FitResult, test: dict | None, i: int, n: int) -> MemberResult:
    """A member's final files: as `train_run` writes them; a pruned member gets its summary only (a pruned
    sequential trial has no weights either)."""
    if res.status == "pruned":
        summary = summarize(b, res, run)
        epoch = res.records[-1]["epoch"] if res.records else 0
        summary.update(stop_reason=f"pruned by the sweep after epoch {epoch}", restored_best=False)
        summary["population"] = {"size": n, "member": i}
        rundir.write_json(run / rundir.SUMMARY, summary)
        return MemberResult(run, summary, res.records)
    summary = write_final(b, run, res, None, test)
    summary["population"] = {"size": n, "member": i}
    rundir.write_json(run / rundir.SUMMARY, summary)
    return MemberResult(run, summary, res.records)
