"""The run-level API the CLI, tests and the bench call: build a spec into a training loop, fit it, train in a
run directory (signals, logs, checkpoints, summary), restore a run to evaluate, predict, sample or encode,
and the tools around runs (explain, timing, plots, run listings).

Public entry points: `train_run`, `resume_run`, `evaluate_run`, `predict_run` (nnctl.app.session and
nnctl.app.restore), `build` (nnctl.app.builder) and `fit` (nnctl.app.fitting)."""

from nnctl.app.builder import Built, build
from nnctl.app.fitting import FitResult, StopFlag, fit
from nnctl.app.restore import Restored, batched_predict, evaluate_run, predict_run, restore
from nnctl.app.session import TrainResult, carry_template, resume_run, train_run

__all__ = [
    "Built",
    "FitResult",
    "Restored",
    "StopFlag",
    "TrainResult",
    "batched_predict",
    "build",
    "carry_template",
    "evaluate_run",
    "fit",
    "predict_run",
    "restore",
    "resume_run",
    "train_run",
]
