"""Optimizers and learning-rate schedules (all Optax), and the chain a spec's training policy becomes:

    multi_transform({trainable: chain(clip, weight_decay, optimizer, plateau), frozen: set_to_zero})

Clipping, weight decay, freezing and per-group learning rates are links of that one chain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeAlias, Union

import jax.numpy as jnp
import optax
from pydantic import Discriminator, Field, Tag

from nnctl.registry import FnRegistry, ref_type

SCHEDULES = FnRegistry("learning-rate schedule")
OPTIMIZERS = FnRegistry("optimizer")

# The options each optimizer and schedule reads as runtime inputs of the compiled programs
# (nnctl.app.hyper): changing them reuses the compiled program. Listed are the options used only in
# arithmetic whose float32 result is the same for a Python float and an input; step counts and the warm-up
# schedule stay compiled in (its Optax checks need concrete values). The fractions in PAIRED (betas, decays,
# rho) reach Optax as `nnctl.rate.Rate`, b with its complement 1 - b computed on the host: Optax forms
# `1 - b` from a Python float in float64, which a float32 input alone would not reproduce bit for bit.
RUNTIME: dict[str, tuple[str, ...]] = {
    "sgd": ("learning_rate", "momentum"),
    "momentum": ("learning_rate", "momentum"),
    "momentum_ema": ("learning_rate", "momentum"),
    "adagrad": ("learning_rate", "initial_accumulator_value", "eps"),
    "adadelta": ("learning_rate", "rho", "eps"),
    "rmsprop": ("learning_rate", "decay", "eps", "momentum"),
    "adam": ("learning_rate", "b1", "b2", "eps"),
    "adamw": ("learning_rate", "b1", "b2", "eps", "weight_decay"),
    "nadam": ("learning_rate", "b1", "b2", "eps"),
    "adamax": ("learning_rate", "b1", "b2", "eps"),
    "lion": ("learning_rate", "b1", "b2", "weight_decay"),
    "constant": ("value",),
    "cosine": ("initial",),
    "exponential": ("initial", "decay_rate"),
    "step": ("initial", "factor"),
    "reduce_on_plateau": ("initial",),
}
PAIRED: dict[str, tuple[str, ...]] = {
    "momentum_ema": ("momentum",),
    "adadelta": ("rho",),
    "rmsprop": ("decay",),
    "adam": ("b1", "b2"),
    "adamw": ("b1", "b2"),
    "nadam": ("b1", "b2"),
    "adamax": ("b1", "b2"),
    "lion": ("b1", "b2"),
}


def given(v: Any) -> bool:
    """True for a set, non-zero option: a runtime input (an array) is never zero, zeros stay compiled in."""
    return v is not None and (not isinstance(v, (int, float)) or v != 0)


# ---------------------------------------------------------------------------------------------- schedules
# Each returns (learning rate: float or schedule fn, extra chain link or None). Steps are optimizer steps.


@SCHEDULES.register("constant")
def constant(total_steps, steps_per_epoch, /, value: float = 0.01):
    """A fixed learning rate."""
    return value, None


@SCHEDULES.register("cosine")
def cosine(
    total_steps, steps_per_epoch, /, initial: float = 0.01, decay_steps: Optional[int] = None, alpha: float = 0.0
):
    """Cosine decay from `initial` to `alpha * initial` over `decay_steps` (default: the whole run)."""
    return optax.cosine_decay_schedule(initial, decay_steps or total_steps, alpha), None


@SCHEDULES.register("exponential")
def exponential(
    total_steps,
    steps_per_epoch,
    /,
    initial: float = 0.01,
    decay_rate: float = 0.96,
    decay_steps: Optional[int] = None,
    staircase: bool = False,
):
    """initial * decay_rate ^ (step / decay_steps); decay_steps defaults to one epoch."""
    steps = decay_steps or steps_per_epoch
    if not given(decay_rate) or steps <= 0:  # Optax's rule: a constant rate
        return optax.exponential_decay(initial, steps, decay_rate, staircase=staircase), None

    def schedule(count):  # optax.exponential_decay's arithmetic, without its checks on concrete values
        p = count / steps
        if staircase:
            p = jnp.floor(p)
        return jnp.where(count <= 0, initial, initial * jnp.power(decay_rate, p))

    return schedule, None


@SCHEDULES.register("step", "piecewise")
def step(
    total_steps,
    steps_per_epoch,
    /,
    initial: float = 0.01,
    factor: float = 0.1,
    every_epochs: Optional[int] = None,
    boundaries: Optional[list[int]] = None,
):
    """Multiply by `factor` every `every_epochs` epochs, or at the given step `boundaries`."""
    if (every_epochs is None) == (boundaries is None):
        raise ValueError("give exactly one of `every_epochs` or `boundaries` (steps)")
    if every_epochs is not None:
        if every_epochs <= 0:
            raise ValueError("every_epochs must be positive")
        boundaries = list(range(every_epochs * steps_per_epoch, max(total_steps, 1), every_epochs * steps_per_epoch))
    assert boundaries is not None  # given, or computed from every_epochs just above
    if isinstance(factor, (int, float)) and factor < 0:
        raise ValueError("`factor` must not be negative")
    marks = sorted({int(b) for b in boundaries})

    def schedule(count):  # optax.piecewise_constant_schedule's arithmetic, without its checks on concrete values
        v: Any = initial
        for threshold in marks:
            indicator = jnp.maximum(0.0, jnp.sign(threshold - count))
            v = v * indicator + (1 - indicator) * factor * v
        return v

    return schedule, None


@SCHEDULES.register("linear_warmup_cosine", "warmup_cosine")
def linear_warmup_cosine(
    total_steps,
    steps_per_epoch,
    /,
    peak: float = 0.01,
    warmup_steps: Optional[int] = None,
    decay_steps: Optional[int] = None,
    init_value: float = 0.0,
    end_value: float = 0.0,
):
    """Linear warm-up from `init_value` to `peak` (default: 5% of the run), then cosine decay to `end_value`."""
    decay = decay_steps or total_steps
    warm = warmup_steps if warmup_steps is not None else max(1, decay // 20)
    if warm >= decay:
        raise ValueError(f"warmup_steps ({warm}) must be smaller than decay_steps ({decay})")
    return optax.warmup_cosine_decay_schedule(init_value, peak, warm, decay, end_value), None


@SCHEDULES.register("reduce_on_plateau")
def reduce_on_plateau(
    total_steps,
    steps_per_epoch,
    /,
    initial: float = 0.01,
    factor: float = 0.5,
    patience: int = 5,
    cooldown: int = 0,
    rtol: float = 1e-4,
    min_scale: float = 1e-3,
):
    """Multiply the rate by `factor` when the epoch's training loss has not improved for `patience` epochs."""
    link = optax.contrib.reduce_on_plateau(
        factor=factor,
        patience=patience,
        rtol=rtol,
        atol=0.0,
        cooldown=cooldown,
        accumulation_size=max(1, steps_per_epoch),
        min_scale=min_scale,
    )
    return initial, link


if TYPE_CHECKING:  # see ref_type
    ScheduleRef: TypeAlias = Any
else:
    ScheduleRef = ref_type(SCHEDULES)


def _lr_kind(v: Any) -> str:
    return "schedule" if isinstance(v, (dict, str)) or hasattr(v, "type") else "number"


LearningRate = Annotated[
    Union[Annotated[Annotated[float, Field(gt=0)], Tag("number")], Annotated[ScheduleRef, Tag("schedule")]],
    Discriminator(_lr_kind),
]


# --------------------------------------------------------------------------------------------- optimizers


@OPTIMIZERS.register("sgd", "gd")
def sgd(learning_rate: LearningRate = 0.01, momentum: float = 0.0, nesterov: bool = False):
    """(Stochastic) gradient descent: w <- w - lr * g. With batch_size: full it is batch gradient descent."""
    return optax.sgd(learning_rate, momentum=momentum if given(momentum) else None, nesterov=nesterov)


@OPTIMIZERS.register("momentum")
def momentum(learning_rate: LearningRate = 0.01, momentum: float = 0.9, nesterov: bool = False):
    """SGD with momentum in Optax's, PyTorch's and Keras' form: v <- beta v + g; w <- w - lr v (Nesterov's
    look-ahead with nesterov: true). The notes' form v <- beta v + (1 - beta) g is `momentum_ema`."""
    return optax.sgd(learning_rate, momentum=momentum, nesterov=nesterov)


@OPTIMIZERS.register("momentum_ema", "ema_momentum")
def momentum_ema(learning_rate: LearningRate = 0.01, momentum: float = 0.9, nesterov: bool = False):
    """SGD with momentum in the notes' form: v <- beta v + (1 - beta) g; w <- w - lr v (an exponential moving
    average of the gradients; `momentum` with learning rate lr (1 - beta) takes the same steps)."""
    return optax.chain(optax.scale(1.0 - momentum), optax.sgd(learning_rate, momentum=momentum, nesterov=nesterov))


@OPTIMIZERS.register("adagrad")
def adagrad(learning_rate: LearningRate = 0.01, initial_accumulator_value: float = 0.1, eps: float = 1e-7):
    """Per-parameter rates scaled by the root of the sum of past squared gradients."""
    return optax.adagrad(learning_rate, initial_accumulator_value=initial_accumulator_value, eps=eps)


@OPTIMIZERS.register("adadelta")
def adadelta(learning_rate: LearningRate = 1.0, rho: float = 0.9, eps: float = 1e-6):
    """Adagrad with decaying averages of squared gradients and squared updates."""
    return optax.adadelta(learning_rate, rho=rho, eps=eps)


@OPTIMIZERS.register("rmsprop")
def rmsprop(
    learning_rate: LearningRate = 0.001,
    decay: float = 0.9,
    eps: float = 1e-7,
    momentum: float = 0.0,
    centered: bool = False,
    eps_in_sqrt: bool = False,
):
    """Divides the gradient by a running RMS of recent gradients: w -= lr * g / (sqrt(v) + eps), v the running
    mean of g^2 (the notes' and Keras' formula); eps_in_sqrt: true puts eps inside the root, sqrt(v + eps)
    (Optax's default)."""
    return optax.rmsprop(
        learning_rate,
        decay=decay,
        eps=eps,
        momentum=momentum if given(momentum) else None,
        centered=centered,
        eps_in_sqrt=eps_in_sqrt,
    )


@OPTIMIZERS.register("adam")
def adam(learning_rate: LearningRate = 0.001, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
    """Adaptive moment estimation: momentum (b1) plus RMSProp scaling (b2), bias-corrected."""
    return optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)


@OPTIMIZERS.register("adamw")
def adamw(
    learning_rate: LearningRate = 0.001,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 1e-4,
):
    """Adam with decoupled weight decay."""
    return optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)


@OPTIMIZERS.register("nadam")
def nadam(learning_rate: LearningRate = 0.001, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
    """Adam with Nesterov momentum."""
    return optax.nadam(learning_rate, b1=b1, b2=b2, eps=eps)


@OPTIMIZERS.register("adamax")
def adamax(learning_rate: LearningRate = 0.002, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
    """Adam with the infinity norm."""
    return optax.adamax(learning_rate, b1=b1, b2=b2, eps=eps)


@OPTIMIZERS.register("lion")
def lion(learning_rate: LearningRate = 1e-4, b1: float = 0.9, b2: float = 0.99, weight_decay: float = 0.0):
    """Sign of an interpolated momentum (evolved sign momentum)."""
    return optax.lion(learning_rate, b1=b1, b2=b2, weight_decay=weight_decay)


if TYPE_CHECKING:  # see ref_type
    OptimizerRef: TypeAlias = Any
else:
    OptimizerRef = ref_type(OPTIMIZERS)


def build_learning_rate(lr: Any, total_steps: int, steps_per_epoch: int):
    """(rate or schedule fn, extra link or None) from a spec's learning_rate (a number, a runtime input or a
    schedule's options)."""
    if not hasattr(lr, "type"):
        return (float(lr) if isinstance(lr, (int, float)) else lr), None
    return SCHEDULES.build(lr, total_steps, steps_per_epoch)


def build_optimizer(opts: Any, total_steps: int, steps_per_epoch: int, weight_decay: float | None = None):
    """The optimizer link(s) of the chain; `weight_decay` (train.weight_decay) is decoupled for adamw/lion
    and added to the gradient (L2-style) before the optimizer otherwise."""
    lr, extra = build_learning_rate(opts.learning_rate, total_steps, steps_per_epoch)
    kwargs = {k: getattr(opts, k) for k in type(opts).model_fields if k != "type"}
    kwargs["learning_rate"] = lr
    links = []
    if given(weight_decay):
        if "weight_decay" in kwargs:
            kwargs["weight_decay"] = weight_decay
        else:
            links.append(optax.add_decayed_weights(weight_decay))
    links.append(OPTIMIZERS.get(opts.type)(**kwargs))
    if extra is not None:
        links.append(extra)
    return links, lr
