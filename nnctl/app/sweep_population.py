"""A sweep round of `search.population` trials: asked together, trained as populations, told one by one.

The asked trials' values become `--set` overrides of the base spec (as for a sequential trial), and
`nnctl.app.population.plan_groups` sorts them into groups that can share one compiled program. A group of
two or more trains as a population; a single trial, or a group that cannot (streamed data, several devices),
trains alone like a sequential trial. Each trial still gets its own run directory `trial-NNNN`.

Pruning: each member reports every epoch to its trial; when the pruner says stop, the member stops at the end
of the compiled call in flight (its records end at the pruned epoch) and the trial is told `pruned`. Members of
one round do not see each other's finished values (they run together), only the trials told before the round.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import Trial, TrialState

from nnctl.app.population import Member, MemberResult, PopulationInterrupted, plan_groups, train_group
from nnctl.app.sweep_space import Plan, trial_overrides
from nnctl.app.sweep_study import BASE, INTERRUPTED, claim, finish, tell
from nnctl.errors import TrainingInterrupted


def population_round(
    plan: Plan,
    sweep_dir: Path,
    study: optuna.Study,
    asked: list[Trial],
    alone: Callable[[Plan, Path, optuna.Study, Trial], None],
) -> None:
    """Train the `asked` trials (populations where they share a program; `alone` trains the others).

    Raises:
        TrainingInterrupted: a signal; finished members are told, the others marked interrupted and queued.
    """
    members = []
    for trial in asked:
        run_dir = claim(sweep_dir, trial)
        trial.set_user_attr("population", len(asked))
        overrides = (*trial_overrides(trial.params), f"name={plan.name}-trial-{trial.number:04d}")
        members.append(Member(run_dir, overrides, _pruner(plan, trial)))
    groups, errors = plan_groups(str(sweep_dir / BASE), [m.overrides for m in members])
    for i, message in errors.items():  # these values fail for this spec: the trial fails, the others train
        asked[i].set_user_attr("error", message)
        tell(study, asked[i], state=TrialState.FAIL)
    try:
        for g in groups:
            if g.blocker is not None or len(g.index) == 1:
                for i in g.index:
                    alone(plan, sweep_dir, study, asked[i])
                continue
            try:
                results = train_group(str(sweep_dir / BASE), g, members)
            except PopulationInterrupted as e:
                for i, r in zip(g.index, e.results):
                    if r.summary.get("status") != "interrupted":
                        _told(plan, study, asked[i], r)
                raise
            for i, r in zip(g.index, results):
                _told(plan, study, asked[i], r)
    except (TrainingInterrupted, KeyboardInterrupt):
        _abandon(study, asked)
        raise


def _pruner(plan: Plan, trial: Trial) -> Callable[[dict], bool]:
    def on_epoch(r: dict) -> bool:
        v = r.get(plan.key)
        if v is None or not math.isfinite(v):
            return False
        trial.report(float(v), int(r["epoch"]))
        return bool(trial.should_prune())

    return on_epoch


def _told(plan: Plan, study: optuna.Study, trial: Trial, r: MemberResult) -> None:
    if r.summary.get("status") == "pruned":
        trial.set_user_attr("epochs", len(r.records))
        trial.set_user_attr("status", "pruned")
        tell(study, trial, state=TrialState.PRUNED)
        return
    finish(plan, study, trial, r.records, r.summary)


def _abandon(study: optuna.Study, asked: list[Trial]) -> None:
    """Trials of the round still running when a signal came: marked interrupted and queued again."""
    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    for trial in asked:
        if trial.number in running:
            trial.set_user_attr(INTERRUPTED, True)
            tell(study, trial, state=TrialState.FAIL)
            study.enqueue_trial(dict(trial.params))
