"""Whole-spec checks that need more than one key: shapes threaded through the model, the loss against
the output layer, the early-stopping monitor, schedules, and `freeze` globs against parameter paths.
Everything found is reported together."""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from nnctl.data.peek import peek
from nnctl.data.sources import source_kind
from nnctl.data.sources.none import NO_DATA
from nnctl.errors import DataError, Problem, SpecError, choices_text, did_you_mean
from nnctl.kinds import MODEL_KINDS
from nnctl.kinds.base import abstract_variables
from nnctl.losses import loss_info
from nnctl.metrics import METRICS
from nnctl.optim import build_optimizer
from nnctl.spec.models import WEIGHT_FILES
from nnctl.spec.semantic import semantic_problems
from nnctl.trees import param_paths


@dataclass(frozen=True)
class Analysis:
    """What checking a spec learned: the input shape, every layer's output shape, the model's output shape,
    warnings, and the data's facts (nnctl.data.peek.DataInfo)."""

    input_shape: tuple
    shapes: dict[str, tuple]
    output_shape: tuple
    warnings: list[Problem] = field(default_factory=list)
    data_info: Any = None
    task: str | None = None  # data.task, else the task the model kind implies (vae: autoencoder), else None


def monitor_key(name: str) -> tuple[str, str]:
    """'val_loss' / 'val/loss' -> ('val', 'loss'); 'loss' / 'train/accuracy' -> ('train', ...)."""
    for sep in ("/", "_"):
        for split in ("val", "train"):
            if name.startswith(split + sep):
                rest = name[len(split) + 1 :]
                return split, (METRICS.canonical(rest) if rest in METRICS else rest)
    return "train", (METRICS.canonical(name) if name in METRICS else name)


def check_spec(loaded: Any) -> Analysis:
    """Every whole-spec problem at once (SpecError), else the shapes and warnings of the spec."""
    spec = loaded.spec
    problems: list[Problem] = []
    warnings: list[Problem] = []
    info = None
    try:
        info = peek(spec.data, loaded.base_dir)
    except DataError as e:
        where = loaded.problem(e.key or (("data", "path") if spec.data.path else ("data",)), str(e))
        # inspect/validate count from model.input_shape alone: unreadable data is then only a warning
        (warnings if spec.model.input_shape is not None and not loaded.require_sources else problems).append(where)
    no_data = no_data_problem(loaded)
    if no_data is not None:
        problems.append(no_data)
        info = None  # the one problem: no "cannot tell the input shape" on top
    input_shape = _input_shape(loaded, info, problems)

    kind = MODEL_KINDS.get(spec.model.type)
    shapes: dict[str, tuple] = {}
    out: tuple | None = None
    if input_shape is not None:
        shapes, out, shape_problems, thread_warnings = kind.thread(loaded, input_shape, info)
        problems += shape_problems
        warnings += thread_warnings
    problems += kind.check_common(loaded)
    kind_problems, kind_warnings = kind.check(loaded, input_shape, info, shapes)
    problems += kind_problems
    warnings += kind_warnings
    init_from = init_from_problem(loaded)
    if init_from is not None:
        (problems if loaded.require_sources else warnings).append(init_from)
    problems += init_names_problems(loaded)
    if out is not None and loss_info(spec.train.loss.type).folds == "softmax" and out[-1] == 1:
        problems.append(
            loaded.problem(
                ("train", "loss"),
                (
                    "categorical_crossentropy needs one output unit per class, but the last layer has 1 unit: "
                    "use binary_crossentropy with a sigmoid output, or give the last layer one unit per class"
                ),
            )
        )
    semantic, semantic_warnings = semantic_problems(loaded, out, info)
    problems += semantic
    warnings += semantic_warnings
    problems += monitor_problems(loaded) + optimizer_problems(loaded)
    if not problems and input_shape is not None and (spec.train.param_groups or spec.train.freeze or spec.train.clip):
        net = kind.network(spec.model, info.num_classes if info else None)
        problems += glob_problems(loaded, param_paths(abstract_variables(net, input_shape).get("params", {})))
    if problems:
        raise SpecError(in_line_order(problems))
    # A missing input shape, or a model whose output shape cannot be threaded, was reported as a problem above.
    assert input_shape is not None and out is not None
    task = spec.data.task or kind.implied_task(spec, info)
    return Analysis(input_shape, shapes, out, in_line_order(warnings), info, task)


def in_line_order(problems: list[Problem]) -> list[Problem]:
    """Problems sorted by their place in the spec file (those without one, from --set, last)."""
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0, p.col or 0))


def no_data_problem(loaded: Any) -> Problem | None:
    """A spec without data (`source: none`) can be inspected from model.input_shape, never trained."""
    if source_kind(loaded.spec.data.source) != "none":
        return None
    if loaded.require_sources:
        return loaded.problem(("data",), NO_DATA)
    if loaded.spec.model.input_shape is None:
        return loaded.problem(("data",), "this spec has no data: set model.input_shape, or add a data section")
    return None


def _input_shape(loaded: Any, info: Any, problems: list[Problem]) -> tuple | None:
    """`model.input_shape`, else the data's example shape; a mismatch or no shape at all is a problem."""
    given = loaded.spec.model.input_shape
    if given is not None:
        if info is not None and info.x_shape is not None and math.prod(info.x_shape) != math.prod(given):
            problems.append(
                loaded.problem(
                    ("model", "input_shape"),
                    (
                        f"the data's examples have shape {list(info.x_shape)} ({math.prod(info.x_shape)} values), "
                        f"which cannot be reshaped to input_shape {list(given)}"
                    ),
                )
            )
        return tuple(given)
    if info is not None and info.x_shape is not None:
        return tuple(info.x_shape)
    if info is not None:
        problems.append(loaded.problem(("model",), "cannot tell the input shape from the data: set model.input_shape"))
    return None


def monitor_problems(loaded: Any) -> list[Problem]:
    """The early-stopping monitor must be the loss or a metric of `train.metrics`, on a split that exists."""
    spec = loaded.spec
    es = spec.train.early_stopping
    if es is None:
        return []
    split, metric = monitor_key(es.monitor)
    known = ["loss", *spec.train.metrics]
    where = ("train", "early_stopping", "monitor")
    if metric not in known:
        allowed = [f"{p}{m}" for p in ("", "val_") for m in known]
        return [
            loaded.problem(
                where,
                (
                    f"unknown monitor '{es.monitor}'.{did_you_mean(es.monitor, allowed)} "
                    f"Choices: {choices_text(allowed)} (add a metric to train.metrics to monitor it)"
                ),
            )
        ]
    if split == "val" and spec.data.validation_split == 0:
        return [
            loaded.problem(
                where,
                (
                    f"monitor '{es.monitor}' needs validation data: set data.validation_split (e.g. 0.2) "
                    f"or monitor 'loss'"
                ),
            )
        ]
    return []


def optimizer_problems(loaded: Any) -> list[Problem]:
    """Optimizer and schedule options that only fail when built; weight decay given twice."""
    t = loaded.spec.train
    problems = []
    try:
        build_optimizer(t.optimizer, 1000, 10, t.weight_decay)
    except (ValueError, TypeError) as e:
        problems.append(loaded.problem(("train", "optimizer"), str(e)))
    if (
        t.weight_decay
        and "weight_decay" in type(t.optimizer).model_fields
        and "weight_decay" in t.optimizer.model_fields_set
    ):
        problems.append(
            loaded.problem(
                ("train", "weight_decay"),
                ("weight decay is given twice (train.weight_decay and optimizer.weight_decay): keep one"),
            )
        )
    return problems


def init_from_problem(loaded: Any) -> Problem | None:
    """`model.init_from` must name a finished run directory or an existing weight file (relative to the working
    directory or the spec)."""
    src = loaded.spec.model.init_from
    if not src:
        return None
    p = FsPath(src).expanduser()
    if FsPath(src).suffix.lower() in WEIGHT_FILES:
        if p.is_file() or (FsPath(loaded.base_dir) / p).is_file():
            return None
        return loaded.problem(
            ("model", "init_from"),
            f"no such weight file '{src}' (relative to the working directory or the spec file)",
        )
    if (p / "weights.msgpack").exists() or (FsPath(loaded.base_dir) / p / "weights.msgpack").exists():
        return None
    return loaded.problem(
        ("model", "init_from"),
        (
            f"'{src}' is not a finished run directory (no weights.msgpack there): train the source "
            f"spec first, or fix the path (relative to the working directory or the spec file); a weight file "
            f"ends in {', '.join(WEIGHT_FILES)}"
        ),
    )


def init_names_problems(loaded: Any) -> list[Problem]:
    """`model.init_names` renames layers of a weight file (`init_from: FILE`): its keys are the spec's layers."""
    model = loaded.spec.model
    if not model.init_names:
        return []
    parts = MODEL_KINDS.get(model.type).parts
    names = [str(layer.name) for part in parts for layer in (getattr(model, part) or [])]
    if not model.init_from or FsPath(model.init_from).suffix.lower() not in WEIGHT_FILES:
        return [loaded.problem(("model", "init_names"), "init_names needs model.init_from naming a weight file")]
    return [
        loaded.problem(
            ("model", "init_names", k),
            f"'{k}' is not a layer of this spec.{did_you_mean(k, names)} Layers: {choices_text(names, 12)}",
            key=True,
        )
        for k in model.init_names
        if k not in names
    ]


def glob_problems(loaded: Any, paths: list[str]) -> list[Problem]:
    """`train.param_groups[i].params`, `train.freeze[i]` and `train.clip[i].params` globs that match no
    parameter path."""
    t = loaded.spec.train
    globs: list[tuple[tuple[str | int, ...], str]] = [
        (("train", "param_groups", i, "params"), g.params) for i, g in enumerate(t.param_groups)
    ]
    globs += [(("train", "freeze", i), g) for i, g in enumerate(t.freeze)]
    globs += [(("train", "clip", i, "params"), c.params) for i, c in enumerate(t.clip)]
    return [
        loaded.problem(
            key, f"'{g}' matches no parameter.{did_you_mean(g, paths)} Parameters: {choices_text(paths, 12)}"
        )
        for key, g in globs
        if not any(fnmatch.fnmatchcase(p, g) for p in paths)
    ]
