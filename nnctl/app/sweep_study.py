"""The Optuna side of a sweep: storage, study, sampler, pruner, distributions, and the trial states a sweep
reads back (done, pruned, failed, stale), and what every trial does with it whether it trains alone or in a
population (`claim` its run directory, `finish`/`tell` its score).

Default storage is an Optuna journal file in the sweep directory (safe for several processes on one machine,
and what makes a rerun resume); `--storage` takes any SQLAlchemy URL Optuna accepts (`postgresql://...` lets
machines share a study; `sqlite:///...` for one machine).
"""

from __future__ import annotations

import math
import os
import re
import socket
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, Trial, TrialState

from nnctl.app.runs import pid_alive
from nnctl.app.sweep_space import Plan
from nnctl.errors import NnctlError
from nnctl.spec.search import Distribution

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

FINGERPRINT = "nnctl_sweep"  # the study's user attribute holding the plan's fingerprint
SURPLUS = "surplus"  # a trial asked after the budget was reached by other workers: dropped, never trained
INTERRUPTED = "interrupted"
BASE = "base.yaml"  # the spec trials start from: the user's spec without `search`, data paths absolute


def masked(url: str) -> str:
    """A storage URL without its password."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def open_storage(url: str | None, sweep_dir: Path) -> BaseStorage:
    """The study storage: a journal file in the sweep directory by default, else the URL's database.

    Raises:
        NnctlError: the URL names no database Optuna can use, or its server cannot be reached.
    """
    if url is None:
        return JournalStorage(JournalFileBackend(str(sweep_dir / "study.journal")))
    if "://" not in url:
        raise NnctlError(
            f"--storage expects a database URL (postgresql://user@host:5432/db, sqlite:///file.db), got '{url}'"
        )
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        return RDBStorage(url, engine_kwargs=kwargs)
    except ModuleNotFoundError as e:
        raise NnctlError(
            f"--storage {masked(url)}: its database driver is not installed ({e.name}): {_driver(url)}"
        ) from None
    except Exception as e:  # sqlalchemy's errors for a bad URL, a refused connection, a missing database
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NnctlError(f"cannot open the study storage {masked(url)}: {first}") from None


def _driver(url: str) -> str:
    if url.startswith("postgresql"):
        return "pip install 'psycopg[binary]' (or nnctl[sweep])"
    if url.startswith("mysql"):
        return "pip install pymysql and write mysql+pymysql://..."
    return "install the SQLAlchemy driver for this database"


def distributions(plan: Plan) -> dict[str, BaseDistribution]:
    return {path: _dist(d) for path, d in plan.search.space.items()}


def _dist(d: Distribution) -> BaseDistribution:
    if d.choice is not None:
        return CategoricalDistribution(d.choice)
    if d.int is not None:
        return IntDistribution(d.int[0], d.int[1], log=d.log, step=int(d.step or 1))
    assert d.float is not None
    return FloatDistribution(d.float[0], d.float[1], log=d.log, step=d.step)


def sampler(plan: Plan, worker: int) -> optuna.samplers.BaseSampler:
    """The spec's sampler; each worker's seed differs so that workers do not propose the same values."""
    s = plan.search
    seed = (s.seed if s.seed is not None else plan.loaded.spec.seed) + 1000 * worker
    if s.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if s.sampler == "grid":
        grid = {p: list(d.choice) if d.choice is not None else _grid(d) for p, d in s.space.items()}
        return optuna.samplers.GridSampler(grid, seed=seed)
    if s.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if s.sampler == "qmc":
        return optuna.samplers.QMCSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _grid(d: Distribution) -> list:
    rng = d.int if d.int is not None else d.float
    assert rng is not None
    lo, hi = rng
    step = d.step or 1
    values = []
    v = lo
    while v <= hi + 1e-12:
        values.append(int(v) if d.int is not None else float(v))
        v += step
    return values


def pruner(plan: Plan) -> optuna.pruners.BasePruner:
    if plan.search.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=5)
    if plan.search.pruner == "hyperband":
        epochs = plan.loaded.spec.train.epochs or 100
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    return optuna.pruners.NopPruner()


def open_study(plan: Plan, storage: BaseStorage, name: str, where: str, worker: int = 0) -> optuna.Study:
    """Create the study, or continue it when its space, metric and base spec are the same as this plan's.

    Raises:
        NnctlError: a study of that name in that storage searches something else.
    """
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        direction="maximize" if plan.direction == "maximize" else "minimize",
        sampler=sampler(plan, worker),
        pruner=pruner(plan),
        load_if_exists=True,
    )
    mine = plan.fingerprint()
    theirs = study.user_attrs.get(FINGERPRINT)
    if theirs is None:
        study.set_user_attr(FINGERPRINT, mine)
    elif theirs != mine:
        what = [k for k in ("space", "metric", "direction", "base_spec") if theirs.get(k) != mine.get(k)]
        raise NnctlError(
            f"study '{name}' in {where} was created with a different {', '.join(w.replace('_', ' ') for w in what)}"
            f" (its space: {', '.join(theirs.get('space', {}))}): give another --study NAME (or --out DIR) for "
            f"this search, or rerun the spec that created it"
        )
    return study


def grid_size(plan: Plan) -> int | None:
    """How many points a grid search has (None for the other samplers)."""
    if plan.search.sampler != "grid":
        return None
    n = 1
    for d in plan.search.space.values():
        n *= len(d.choice) if d.choice is not None else len(_grid(d))
    return n


def trials(study: optuna.Study) -> list[FrozenTrial]:
    """The study's trials, without the surplus ones."""
    return [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(SURPLUS)]


def counted(ts: list[FrozenTrial]) -> int:
    """Trials that use up the budget: finished, pruned, or running now."""
    return sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING) for t in ts)


def recover_stale(study: optuna.Study) -> int:
    """Trials left RUNNING by a process of this host that no longer lives (a crash, kill -9): marked failed
    (interrupted) and their values queued again, so a rerun loses nothing. Returns how many."""
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid, host = t.user_attrs.get("pid"), t.user_attrs.get("host")
        if host != socket.gethostname() or pid is None or pid_alive(int(pid)):
            continue
        study.tell(t.number, state=TrialState.FAIL)
        study.enqueue_trial(t.params, skip_if_exists=True)
        n += 1
    return n


def claim(sweep_dir: Path, trial: Trial) -> Path:
    """The trial's run directory, and the user attributes that let a rerun find a dead worker's trial."""
    run_dir = sweep_dir / f"trial-{trial.number:04d}"
    trial.set_user_attr("pid", os.getpid())
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("run_dir", str(run_dir))
    return run_dir


def finish(plan: Plan, study: optuna.Study, trial: Trial, records: Sequence[dict], summary: dict) -> None:
    """Tell the study a trained trial's score: its best epoch's value of the search metric."""
    trial.set_user_attr("epochs", len(records))
    trial.set_user_attr("status", summary.get("status"))
    value = best_value([r.get(plan.key) for r in records], plan.direction)
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
