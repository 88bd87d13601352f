"""Whole-spec checks that need more than one key: shapes threaded through the model, the loss against
the output layer, the early-stopping monitor, schedules, and `freeze` globs against parameter paths.
Everything found is reported together."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from nnctl.errors import DataError, Problem, SpecError, choices_text, did_you_mean


@dataclass
class Analysis:
    input_shape: tuple
    shapes: dict[str, tuple]
    output_shape: tuple
    warnings: list[Problem] = field(default_factory=list)
    data_info: Any = None


def monitor_key(name: str) -> tuple[str, str]:
    """'val_loss' / 'val/loss' -> ('val', 'loss'); 'loss' / 'train/accuracy' -> ('train', ...)."""
    from nnctl.metrics import METRICS

    for sep in ("/", "_"):
        for split in ("val", "train"):
            if name.startswith(split + sep):
                rest = name[len(split) + 1:]
                return split, (METRICS.canonical(rest) if rest in METRICS else rest)
    return "train", (METRICS.canonical(name) if name in METRICS else name)


def check_spec(loaded) -> Analysis:
    from nnctl.data.peek import peek
    from nnctl.layers.graph import thread_shapes
    from nnctl.losses import LOSSES

    spec = loaded.spec
    problems: list[Problem] = []

    # --- input shape -------------------------------------------------------------------------------
    info = None
    try:
        info = peek(spec.data, loaded.base_dir)
    except DataError as e:
        problems.append(loaded.problem(e.key or (("data", "path") if spec.data.path else ("data",)), str(e)))
    if spec.model.input_shape is not None:
        input_shape = tuple(spec.model.input_shape)
        if info is not None and info.x_shape is not None:
            import math
            if math.prod(info.x_shape) != math.prod(input_shape):
                problems.append(loaded.problem(("model", "input_shape"), (
                    f"the data's examples have shape {list(info.x_shape)} ({math.prod(info.x_shape)} values), "
                    f"which cannot be reshaped to input_shape {list(input_shape)}")))
    elif info is not None and info.x_shape is not None:
        input_shape = tuple(info.x_shape)
    else:
        input_shape = None
        if info is not None:
            problems.append(loaded.problem(("model",), "cannot tell the input shape from the data: set model.input_shape"))

    # --- shapes through the model -------------------------------------------------------------------
    shapes, out, warnings = {}, None, []
    if input_shape is not None and spec.model.type != "sequential":
        from nnctl.objectives.checks import thread_model
        shapes, out, shape_problems, warnings = thread_model(loaded, input_shape, info)
        problems += shape_problems
    elif input_shape is not None:
        shapes, out, shape_problems, shape_warnings = thread_shapes(spec.model.layers, input_shape)
        problems += [loaded.problem(("model", "layers") + p, m) for p, m in shape_problems]
        warnings = [loaded.problem(("model", "layers") + p, m) for p, m in shape_warnings]
    from nnctl.objectives.checks import check_setups
    setup_problems, setup_warnings = check_setups(loaded, input_shape, info, shapes)
    problems += setup_problems
    warnings += setup_warnings

    # --- loss against the output --------------------------------------------------------------------
    loss = LOSSES.canonical(spec.train.loss.type)
    if out is not None and loss == "categorical_crossentropy" and out[-1] == 1:
        problems.append(loaded.problem(("train", "loss"), (
            "categorical_crossentropy needs one output unit per class, but the last layer has 1 unit: "
            "use binary_crossentropy with a sigmoid output, or give the last layer one unit per class")))
    if info is not None and out is not None and info.num_classes and spec.data.task in (None, "classification") \
            and spec.model.type == "sequential":
        if loss in ("categorical_crossentropy", "kl_divergence") and out[-1] not in (1, info.num_classes) \
                and len(out) == 1:
            problems.append(loaded.problem(("model", "layers", len(spec.model.layers) - 1), (
                f"the data has {info.num_classes} classes but the last layer outputs {out[-1]} values: "
                f"set units: {info.num_classes}")))

    # --- early stopping monitor ---------------------------------------------------------------------
    es = spec.train.early_stopping
    if es is not None:
        split, metric = monitor_key(es.monitor)
        known = ["loss", *spec.train.metrics]
        if metric not in known:
            allowed = [f"{p}{m}" for p in ("", "val_") for m in known]
            problems.append(loaded.problem(("train", "early_stopping", "monitor"), (
                f"unknown monitor '{es.monitor}'.{did_you_mean(es.monitor, allowed)} "
                f"Choices: {choices_text(allowed)} (add a metric to train.metrics to monitor it)")))
        elif split == "val" and spec.data.validation_split == 0:
            problems.append(loaded.problem(("train", "early_stopping", "monitor"), (
                f"monitor '{es.monitor}' needs validation data: set data.validation_split (e.g. 0.2) "
                f"or monitor 'loss'")))

    # --- optimizer / schedule options that only fail when built -------------------------------------
    from nnctl.optim import build_optimizer

    try:
        build_optimizer(spec.train.optimizer, 1000, 10, spec.train.weight_decay)
    except (ValueError, TypeError) as e:
        problems.append(loaded.problem(("train", "optimizer"), str(e)))
    if spec.train.weight_decay and "weight_decay" in type(spec.train.optimizer).model_fields and \
            "weight_decay" in spec.train.optimizer.model_fields_set:
        problems.append(loaded.problem(("train", "weight_decay"), (
            "weight decay is given twice (train.weight_decay and optimizer.weight_decay): keep one")))

    # --- freeze globs against parameter paths ------------------------------------------------------
    if not problems and input_shape is not None and spec.train.param_groups:
        from nnctl.model import abstract_variables, build_network
        from nnctl.objectives.checks import check_param_groups
        from nnctl.optim import param_paths

        problems += check_param_groups(loaded, param_paths(abstract_variables(
            build_network(spec.model, info.num_classes if info else None), input_shape).get("params", {})))
    if not problems and input_shape is not None and spec.train.freeze:
        from nnctl.model import abstract_variables, build_network
        from nnctl.optim import param_paths

        paths = param_paths(abstract_variables(build_network(spec.model, info.num_classes if info else None),
                                               input_shape).get("params", {}))
        for i, g in enumerate(spec.train.freeze):
            if not any(fnmatch.fnmatchcase(p, g) for p in paths):
                problems.append(loaded.problem(("train", "freeze", i), (
                    f"'{g}' matches no parameter.{did_you_mean(g, paths)} Parameters: {choices_text(paths, 12)}")))

    if problems:
        raise SpecError(problems)
    analysis = Analysis(input_shape, shapes, out, warnings, info)
    loaded.analysis = analysis
    return analysis
