"""Mistakes a spec can be checked for against its data before training: a loss that does not fit the
labels or the output units, a classification-looking target fed to a regression head, targets of a large
scale left unscaled, and a `step` activation where gradients must flow. Each is a located problem (it
cannot train) or warning (it trains, probably badly), with the fix."""

from __future__ import annotations

from typing import Any

from nnctl.activations import ACTIVATIONS
from nnctl.errors import Problem
from nnctl.kinds import MODEL_KINDS
from nnctl.losses import LOSSES, loss_info

REGRESSION_LOSSES = ("mse", "mae", "huber")
FEW_CLASSES = 10  # at most this many distinct whole-number targets look like classes
LARGE_SCALE = 10.0  # a target spread (std) or offset (|mean| / 10) above this wants normalize_target


def semantic_problems(loaded: Any, out: tuple | None, info: Any) -> tuple[list[Problem], list[Problem]]:
    """(problems, warnings) of the spec's loss and output against its data's targets, and of step
    activations."""
    problems, warnings = step_problems(loaded), list[Problem]()
    spec = loaded.spec
    if spec.model.type != "sequential" or out is None or info is None or spec.data.task == "autoencoder":
        return problems, warnings
    loss = LOSSES.canonical(spec.train.loss.type)
    units = out[-1]
    f = info.targets
    at = ("train", "loss")
    target = spec.data.target if isinstance(spec.data.target, str) else "the targets"
    if loss == "binary_crossentropy" and units == 1 and info.num_classes and info.num_classes > 2:
        k = info.num_classes
        problems.append(
            loaded.problem(
                at, _classes_fix(f"binary_crossentropy with 1 output unit fits 2 classes, but the data has {k}", k)
            )
        )
    if f is None:
        return problems, warnings
    if loss == "binary_crossentropy" and (f.lo < 0 or f.hi > 1):
        what = f"binary_crossentropy needs targets in [0, 1], but {target} ranges {f.lo:g}..{f.hi:g}"
        if f.integral and f.n_distinct <= FEW_CLASSES:
            problems.append(loaded.problem(at, _classes_fix(what, f.n_distinct)))
        else:
            problems.append(
                loaded.problem(at, f"{what}: for values use loss mse with a linear last layer (or scale the targets)")
            )
    elif loss_info(loss).per_class and not f.integral and spec.data.task is None and units > 1:
        problems.append(
            loaded.problem(
                at,
                f"{loss} needs class labels, but {target} holds fractional values ({f.lo:g}..{f.hi:g}): for "
                f"regression use loss mse and a last layer of 1 linear unit",
            )
        )
    elif loss in REGRESSION_LOSSES and units == 1:
        warnings += _regression_warnings(loaded, f, target)
    return problems, warnings


def _classes_fix(what: str, k: int) -> str:
    return (
        f"{what} (whole-number labels: classes?): use loss categorical_crossentropy with a last layer of {k} "
        f"softmax units"
    )


def _regression_warnings(loaded: Any, f: Any, target: str) -> list[Problem]:
    d = loaded.spec.data
    out = []
    if d.task is None and f.integral and 2 <= f.n_distinct <= FEW_CLASSES and f.count >= 3 * f.n_distinct:
        values = ", ".join(f"{v:g}" for v in f.distinct)
        out.append(
            loaded.problem(
                ("train", "loss"),
                f"{target} holds only {f.n_distinct} distinct whole numbers ({values}) but the model is a "
                f"regression (1 unit, {loaded.spec.train.loss.type}): if they are classes use loss "
                f"categorical_crossentropy with {f.n_distinct} softmax units; set data.task: regression to keep "
                f"a regression",
            )
        )
    if d.normalize_target == "none" and (f.std > LARGE_SCALE or abs(f.mean) > 10 * LARGE_SCALE):
        out.append(
            loaded.problem(
                ("data", "normalize_target") if "normalize_target" in d.model_fields_set else ("data",),
                f"{target} ranges {f.lo:g}..{f.hi:g} (mean {f.mean:.4g}, std {f.std:.4g}) and is not scaled: "
                f"set data.normalize_target: standard (predictions are scaled back), or training may crawl",
            )
        )
    return out


def step_problems(loaded: Any) -> list[Problem]:
    """A `step` activation passes no gradient: nothing before it (or in it) can learn. The one exception is
    the output layer under `loss: perceptron`, whose rule supplies the update -(t - o) x itself."""
    spec = loaded.spec
    perceptron = LOSSES.canonical(spec.train.loss.type) == "perceptron"
    out = []
    for part in MODEL_KINDS.get(spec.model.type).parts:
        layers = getattr(spec.model, part, None) or []
        for i, layer in enumerate(layers):
            act = getattr(layer, "activation", None)
            if perceptron and i == len(layers) - 1:
                continue
            if act is not None and ACTIVATIONS.canonical(act.type) == "step":
                out.append(
                    loaded.problem(
                        ("model", part, i, "activation"),
                        "step has a zero gradient, so this layer and those before it never learn: use sigmoid "
                        "(a smooth step) or tanh to train; step is for hand-set weights",
                    )
                )
    return out
