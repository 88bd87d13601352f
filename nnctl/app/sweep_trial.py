"""One sweep worker: ask the study for values, train them as a normal run directory, tell the study the score.

A trial is `train_run` on the sweep's base spec with the trial's values as `--set` overrides, in
`SWEEP_DIR/trial-NNNN` (its resolved spec written like any run's). Its score is the best epoch's value of
the search metric; each epoch's value is reported to the pruner, which may stop it (status `pruned`). A
signal stops the trial in flight with a checkpoint, marks it failed and interrupted in the study, and queues
its values again, so a rerun trains them first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import Trial, TrialState

from nnctl import rundir
from nnctl.app.session import train_run
from nnctl.app.sweep_population import population_round
from nnctl.app.sweep_space import Plan, trial_overrides
from nnctl.app.sweep_study import BASE, INTERRUPTED, SURPLUS, claim, counted, distributions, finish, tell, trials
from nnctl.errors import NnctlError, TrainingInterrupted


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
    while (deadline is None or time.time() < deadline) and (left := budget - counted(trials(study))) > 0:
        asked = []
        for _ in range(min(plan.population, left)):  # population > 1: ask for that many, train them at once
            trial = study.ask(dists)
            ahead = [
                t
                for t in trials(study)
                if t.number < trial.number and t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
            ]
            if len(ahead) >= budget:  # another worker took the last place between our count and our ask
                trial.set_user_attr(SURPLUS, True)
                tell(study, trial, state=TrialState.FAIL)
                break
            asked.append(trial)
        if len(asked) > 1:
            population_round(plan, sweep_dir, study, asked, one_trial)
        elif asked:
            one_trial(plan, sweep_dir, study, asked[0])
        on_trial()
        if len(asked) < min(plan.population, left):
            return


def one_trial(plan: Plan, sweep_dir: Path, study: optuna.Study, trial: Trial) -> None:
    run_dir = claim(sweep_dir, trial)
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
    finish(plan, study, trial, res.records, res.summary)


def _mark_pruned(run_dir: Path, epoch: int) -> None:
    """The run's summary says pruned (the session wrote `failed` when the pruner's exception stopped it)."""
    path = run_dir / rundir.SUMMARY
    summary = rundir.read_json(path) if path.exists() else {}
    summary.update(status="pruned", stop_reason=f"pruned by the sweep after epoch {epoch}", error=None)
    summary["epochs_run"] = epoch
    rundir.write_json(path, summary)
