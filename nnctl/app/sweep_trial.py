"""One sweep worker: ask the study for values, train them as a normal run directory, tell the study the score.

A trial is `train_run` on the sweep's base spec with the trial's values as `--set` overrides, in
`SWEEP_DIR/trial-NNNN` (its resolved spec written like any run's). Its score is the best epoch's value of
the search metric; each epoch's value is reported to the pruner, which may stop it (status `pruned`). A
signal stops the trial in flight with a checkpoint, marks it failed and interrupted in the study, and queues
its values again, so a rerun trains them first.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import Trial, TrialState

from nnctl import rundir
from nnctl.app.session import train_run
from nnctl.app.sweep_space import Plan, trial_overrides
from nnctl.app.sweep_study import INTERRUPTED, SURPLUS, counted, distributions, trials
from nnctl.errors import NnctlError, TrainingInterrupted

BASE = "base.yaml"  # the spec trials start from: the user's spec without `search`, data paths absolute


def run_trials(
    plan: Plan,
    sweep_dir: Path,
    study: optuna.Study,
    budget: int,
    deadline: float | None,
    on_trial: Callable[[], None] = lambda: None,
) -> None:
    """Train trials until the study holds `budget` finished, pruned or running ones, or `deadline` passes.

    Raises:
        TrainingInterrupted / KeyboardInterrupt: a signal; the trial in flight is marked and queued again.
    """
    dists = distributions(plan)
    while (deadline is None or time.time() < deadline) and counted(trials(study)) < budget:
        trial = study.ask(dists)
        ahead = [
            t
            for t in trials(study)
            if t.number < trial.number and t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        ]
        if len(ahead) >= budget:  # another worker took the last place between our count and our ask
            trial.set_user_attr(SURPLUS, True)
            tell(study, trial, state=TrialState.FAIL)
            return
        one_trial(plan, sweep_dir, study, trial)
        on_trial()


def one_trial(plan: Plan, sweep_dir: Path, study: optuna.Study, trial: Trial) -> None:
    run_dir = sweep_dir / f"trial-{trial.number:04d}"
    trial.set_user_attr("pid", os.getpid())
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("run_dir", str(run_dir))
    seen: list[int] = []

    def on_epoch(r: dict) -> None:
        v = r.get(plan.key)
        if v is None or not math.isfinite(v):
            return
        seen.append(int(r["epoch"]))
        trial.report(float(v), int(r["epoch"]))
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {r['epoch']}")

    overrides = (*trial_overrides(trial.params), f"name={plan.name}-trial-{trial.number:04d}")
    try:
        res = train_run(str(sweep_dir / BASE), str(run_dir), overrides, on_epoch=on_epoch)
    except optuna.TrialPruned:
        _mark_pruned(run_dir, seen[-1] if seen else 0)
        tell(study, trial, state=TrialState.PRUNED)
        return
    except (TrainingInterrupted, KeyboardInterrupt):
        trial.set_user_attr(INTERRUPTED, True)
        tell(study, trial, state=TrialState.FAIL)
        study.enqueue_trial(dict(trial.params))
        raise
    except NnctlError as e:  # this trial's values fail at run time (e.g. a non-finite loss): the next one
        trial.set_user_attr("error", str(e))
        tell(study, trial, state=TrialState.FAIL)
        return
    trial.set_user_attr("epochs", len(res.records))
    trial.set_user_attr("status", res.summary.get("status"))
    value = best_value([r.get(plan.key) for r in res.records], plan.direction)
    if value is None:
        trial.set_user_attr("error", f"no finite {plan.metric} in any epoch")
        tell(study, trial, state=TrialState.FAIL)
        return
    tell(study, trial, value)


def tell(study: optuna.Study, trial: Trial, value: float | None = None, state: TrialState | None = None) -> None:
    """`study.tell`, where the grid sampler's "grid exhausted" (a `study.stop()` outside `optimize`, which
    raises after the trial is stored) is not an error: the budget check ends the loop."""
    try:
        study.tell(trial, value, state=state)
    except RuntimeError as e:
        if "Study.stop" not in str(e):
            raise


def best_value(values: list, direction: str) -> float | None:
    """The best finite value of a metric over epochs (what restore_best keeps), or None."""
    ok = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not ok:
        return None
    return max(ok) if direction == "maximize" else min(ok)


def _mark_pruned(run_dir: Path, epoch: int) -> None:
    """The run's summary says pruned (the session wrote `failed` when the pruner's exception stopped it)."""
    path = run_dir / rundir.SUMMARY
    summary = rundir.read_json(path) if path.exists() else {}
    summary.update(status="pruned", stop_reason=f"pruned by the sweep after epoch {epoch}", error=None)
    summary["epochs_run"] = epoch
    rundir.write_json(path, summary)
