"""`nnctl sweep`: a hyperparameter search over a spec's `search:` section, on Optuna.

    SWEEP_DIR/            default sweeps/<spec name>
      study.journal       the study (default storage; --storage puts it in a database instead)
      base.yaml           the spec trials start from (the spec without `search`, data paths absolute)
      trial-0000/ ...     one normal run directory per trial (`nnctl eval`, `nnctl runs SWEEP_DIR`)
      trials.csv/.jsonl   one row per trial: state, value, epochs, duration, values, run directory
      best.yaml           the best trial's resolved spec (`nnctl train best.yaml` trains it as is)
      history.png, importances.png, slice.png
      worker-K.log        what a worker process printed (with --workers K > 1)

A rerun of the same command continues the same study (finished trials count; interrupted ones are trained
again). `workers > 1` starts that many processes on the shared storage; other machines join with the same
`--storage` and `--study`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from nnctl import rundir
from nnctl.app.sweep_report import best_trial, top_rows, trial_row, write_reports
from nnctl.app.sweep_space import Plan, plan_sweep
from nnctl.app.sweep_study import (
    INTERRUPTED,
    counted,
    grid_size,
    masked,
    open_storage,
    open_study,
    recover_stale,
    trials,
)
from nnctl.app.sweep_trial import BASE, run_trials
from nnctl.errors import NnctlError, TrainingInterrupted


@dataclass(frozen=True)
class Progress:
    """Where a sweep stands: trials done (complete or pruned), pruned, failed, running, the budget, the best
    value so far and its trial, and the estimated seconds left."""

    done: int
    pruned: int
    failed: int
    running: int
    budget: int
    best: float | None
    best_trial: int | None
    eta_s: float | None


@dataclass
class SweepResult:
    sweep_dir: Path
    study: str
    storage: str
    metric: str
    direction: str
    progress: Progress
    best: dict | None
    top: list[dict]
    files: list[str] = field(default_factory=list)
    skipped_plots: dict[str, str] = field(default_factory=dict)
    population: int = 1  # trials trained at once as one compiled program
    population_note: str | None = None  # why population: auto trained one trial at a time

    def to_dict(self) -> dict[str, Any]:
        return {
            "sweep_dir": str(self.sweep_dir),
            "study": self.study,
            "storage": self.storage,
            "metric": self.metric,
            "direction": self.direction,
            "progress": self.progress.__dict__,
            "best": self.best,
            "top": self.top,
            "files": self.files,
            "skipped_plots": self.skipped_plots,
            "population": self.population,
            "population_note": self.population_note,
        }


def progress(ts: list[FrozenTrial], budget: int, workers: int, direction: str) -> Progress:
    n = {s: sum(t.state == s for t in ts) for s in TrialState}
    best = best_trial(ts, direction)
    finished = [t for t in ts if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.duration is not None]
    left = max(budget - counted(ts), 0) + n[TrialState.RUNNING]
    eta = None
    if finished:
        mean = sum(t.duration.total_seconds() for t in finished if t.duration is not None) / len(finished)
        eta = mean * left / max(workers, 1)
    return Progress(
        n[TrialState.COMPLETE] + n[TrialState.PRUNED],
        n[TrialState.PRUNED],
        n[TrialState.FAIL],
        n[TrialState.RUNNING],
        budget,
        best.value if best is not None else None,
        best.number if best is not None else None,
        eta,
    )


def run_sweep(
    spec_path: str,
    out: str | None = None,
    n_trials: int | None = None,
    workers: int = 1,
    storage: str | None = None,
    study_name: str | None = None,
    on_progress: Callable[[Progress], None] = lambda p: None,
) -> SweepResult:
    """Search a spec's `search:` space; resume the study when it exists.

    Args:
        spec_path: a spec with a `search:` section.
        out: the sweep directory (default sweeps/<spec name>); a rerun with the same one continues the study.
        n_trials: the study's trial budget (default search.trials); finished trials of earlier runs count.
        workers: trial processes on this machine (1: in this process).
        storage: a database URL shared by workers and machines (default: a journal file in the sweep directory).
        study_name: the study's name in the storage (default: the spec's name).
        on_progress: called after each trial (every second with workers > 1).
    Raises:
        SpecError: the search section or a corner of its space is wrong (before anything is written).
        NnctlError: the storage cannot be opened, or the study searches another space.
        TrainingInterrupted: a signal; finished trials are recorded and a rerun continues.
    """
    if workers < 1:
        raise NnctlError(f"--workers must be at least 1, got {workers}")
    if n_trials is not None and n_trials < 1:
        raise NnctlError(f"--trials must be at least 1, got {n_trials}")
    plan = plan_sweep(spec_path)
    sweep_dir = Path(out) if out is not None else Path("sweeps") / plan.name
    sweep_dir.mkdir(parents=True, exist_ok=True)
    name = study_name or plan.name
    where = masked(storage) if storage else str(sweep_dir / "study.journal")
    study = open_study(plan, open_storage(storage, sweep_dir), name, where)
    rundir.atomic_write(sweep_dir / BASE, yaml.safe_dump(plan.base, sort_keys=False).encode())
    recover_stale(study)
    budget = min(n_trials or plan.search.trials, grid_size(plan) or sys.maxsize)
    deadline = time.time() + plan.search.timeout if plan.search.timeout else None
    report = _reporter(study, budget, workers * plan.population, plan.direction, on_progress)  # ETA: P at once
    interrupted = False
    try:
        if workers == 1:
            run_trials(plan, sweep_dir, study, budget, deadline, report)
        else:
            _run_workers(plan, sweep_dir, storage, name, budget, deadline, workers, report)
    except (TrainingInterrupted, KeyboardInterrupt):
        interrupted = True
    res = _result(plan, study, sweep_dir, name, where, budget, workers)
    if interrupted:
        p = res.progress
        raise TrainingInterrupted(
            f"sweep interrupted: {p.done} of {p.budget} trials done and recorded in {where}; the trial in flight is "
            f"marked interrupted and will run again. Resume with the same command (nnctl sweep {spec_path}"
            f"{' --out ' + str(out) if out else ''}{' --storage ' + where if storage else ''}"
            f"{' --study ' + name if study_name else ''})",
            130,
        )
    return res


def _reporter(
    study: optuna.Study, budget: int, workers: int, direction: str, on_progress: Callable[[Progress], None]
) -> Callable[[], None]:
    """Calls `on_progress` when the progress changed (with workers > 1 it is polled every second)."""
    shown: list[tuple] = []

    def report() -> None:
        p = progress(trials(study), budget, workers, direction)
        now = (p.done, p.pruned, p.failed, p.running, p.best)
        if not shown or shown[-1] != now:
            shown.append(now)
            on_progress(p)

    return report


def _result(
    plan: Plan, study: optuna.Study, sweep_dir: Path, name: str, where: str, budget: int, workers: int
) -> SweepResult:
    ts = trials(study)
    written = write_reports(study, ts, sweep_dir, plan.direction)
    best = best_trial(ts, plan.direction)
    res = SweepResult(
        sweep_dir,
        name,
        where,
        plan.metric,
        plan.direction,
        progress(ts, budget, workers, plan.direction),
        trial_row(best) if best is not None else None,
        top_rows(ts, plan.direction),
        written["files"],
        written["skipped_plots"],
        plan.population,
        plan.population_note,
    )
    rundir.write_json(sweep_dir / "sweep.json", res.to_dict())
    return res


def _run_workers(
    plan: Plan,
    sweep_dir: Path,
    storage: str | None,
    name: str,
    budget: int,
    deadline: float | None,
    workers: int,
    report: Callable[[], None],
) -> None:
    """`workers` processes on the shared storage; progress every second; a signal is passed on to them."""
    procs = []
    for i in range(workers):
        args: dict[str, Any] = dict(spec=plan.spec_path, sweep_dir=str(sweep_dir), storage=storage, study=name)
        args.update(budget=budget, deadline=deadline, worker=i + 1)
        log = open(sweep_dir / f"worker-{i + 1}.log", "w")  # noqa: SIM115 (closed when the process ends)
        cmd = [sys.executable, "-c", "import sys; from nnctl.app.sweep import worker_main; sys.exit(worker_main())"]
        procs.append((subprocess.Popen([*cmd, json.dumps(args)], stdout=log, stderr=subprocess.STDOUT), log))
    try:
        while any(p.poll() is None for p, _ in procs):
            time.sleep(1.0)
            report()
    except KeyboardInterrupt:
        for p, _ in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p, _ in procs:
            p.wait()
        raise
    finally:
        for _, log in procs:
            log.close()
    bad = [(i + 1, p.returncode) for i, (p, _) in enumerate(procs) if p.returncode not in (0, 130)]
    if bad:
        i, rc = bad[0]
        tail = (sweep_dir / f"worker-{i}.log").read_text(errors="replace").strip().splitlines()[-5:]
        raise NnctlError(f"sweep worker {i} failed (exit {rc}): " + " | ".join(tail))
    if any(p.returncode == 130 for p, _ in procs):
        raise KeyboardInterrupt


def worker_main(argv: list[str] | None = None) -> int:
    """A worker process (started by `run_sweep`): trains trials of the study until its budget is reached."""
    args = json.loads((argv or sys.argv)[1])
    try:
        plan = plan_sweep(args["spec"], check_corners=False)
        sweep_dir = Path(args["sweep_dir"])
        storage = open_storage(args["storage"], sweep_dir)
        where = masked(args["storage"]) if args["storage"] else str(sweep_dir / "study.journal")
        study = open_study(plan, storage, args["study"], where, args["worker"])
        run_trials(plan, sweep_dir, study, args["budget"], args["deadline"])
    except (TrainingInterrupted, KeyboardInterrupt):
        return 130
    except NnctlError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


__all__ = ["INTERRUPTED", "Progress", "SweepResult", "run_sweep", "worker_main"]
