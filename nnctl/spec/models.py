"""The spec language as typed, frozen objects. `load_spec` (nnctl.spec) is the only code that sees YAML."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Optional, TypeAlias, Union

from pydantic import Field, NonNegativeFloat, field_validator, model_validator

from nnctl.kinds import MODEL_KINDS
from nnctl.layers import AnyLayer
from nnctl.layers.graph import resolve_names
from nnctl.layers.recurrent import RECURRENT_TYPES
from nnctl.losses import LOSSES
from nnctl.metrics import METRICS
from nnctl.objectives.specs import Adversarial, ClipRange, ParamGroup, RegularizerRef
from nnctl.optim import OptimizerRef
from nnctl.registry import Strict, ref_type
from nnctl.spec.data_spec import DataSpec
from nnctl.spec.search import SearchSpec

if TYPE_CHECKING:  # see ref_type
    LossRef: TypeAlias = Any
else:
    LossRef = ref_type(LOSSES)

# model.init_from: weight files other tools write, by suffix (anything else is a run directory)
WEIGHT_FILES = {".pt": "torch", ".pth": "torch", ".bin": "torch", ".safetensors": "safetensors", ".h5": "keras"}
MAX_EPOCHS = 10_000_000  # epoch numbers are int32 on the device and six-digit checkpoint names


class ModelSpec(Strict):
    type: Literal[tuple(MODEL_KINDS.names(aliases=False))] = Field(  # type: ignore[valid-type]
        "sequential", description="; ".join(f"{n}: {k.doc}" for n, k in MODEL_KINDS.items())
    )
    input_shape: Optional[list[int]] = Field(None, description="per-example input shape (default: from the data)")
    layers: Optional[list[AnyLayer]] = Field(None, min_length=1)
    encoder: Optional[list[AnyLayer]] = Field(
        None,
        min_length=1,
        description="vae: input -> features (the mean and log-variance layers of size latent_dim are added); "
        "aae: input -> code of latent_dim values; vaegan: as vae; seq2seq: source sequence -> a recurrent layer "
        "whose final state starts the decoder",
    )
    decoder: Optional[list[AnyLayer]] = Field(
        None,
        min_length=1,
        description="vae/aae/vaegan: latent code -> input; seq2seq: previous target token (id num_classes: start) -> "
        "one distribution over the target classes per step",
    )
    generator: Optional[list[AnyLayer]] = Field(
        None, min_length=1, description="gan: noise -> example; cyclegan: example -> example (built twice)"
    )
    discriminator: Optional[list[AnyLayer]] = Field(
        None, min_length=1, description="gan/cyclegan/vaegan: example -> 1 logit; aae: code -> 1 logit"
    )
    latent_dim: Optional[int] = Field(
        None, gt=0, le=10**6, description="vae, aae, vaegan, gan: size of the code / noise"
    )
    conditional: bool = Field(False, description="gan: feed the one-hot class label to both networks")
    beta: float = Field(1.0, ge=0, description="vae, vaegan: weight of the KL term")
    adversarial: Optional[Adversarial] = Field(
        None,
        description="gan: the adversarial game beyond train.loss (minimax generator loss, WGAN clipping, "
        "WGAN-GP, critic steps, ACGAN, InfoGAN)",
    )
    adversarial_weight: float = Field(
        1.0,
        ge=0,
        description="aae: weight of the encoder's adversarial term -log D(E(x)); vaegan: of the decoder's GAN term",
    )
    cycle_weight: float = Field(10.0, ge=0, description="cyclegan: lambda of the L1 cycle-consistency term")
    identity_weight: float = Field(
        0.0, ge=0, description="cyclegan: weight of the L1 identity term |G(b) - b| + |F(a) - a| (0: none)"
    )
    outputs: Optional[list[str]] = Field(
        None,
        description="sequential: names of the layers that are outputs, each trained against the targets with the "
        "same loss (auxiliary classifiers); the last layer must be one of them: it is the model's output "
        "(predictions, metrics). Weights: train.loss_weights",
    )
    init_from: Optional[str] = Field(
        None,
        description="start from these weights (transfer learning): a run directory (copied by layer name where "
        "shapes match), or a weight file another tool wrote: a PyTorch state_dict (.pt, .pth, .bin), .safetensors "
        "or a Keras .weights.h5, mapped by layer name (docs/transfer.md)",
    )
    init_names: Optional[dict[str, str]] = Field(
        None,
        description="init_from a weight file: {spec layer: the file's layer} for layers named differently there "
        "(e.g. Keras' block1_conv1 for features.0)",
    )

    @model_validator(mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        if isinstance(v, dict):
            v = dict(v)
            for part in dict.fromkeys(p for _, k in MODEL_KINDS.items() for p in k.parts):
                if part in v:
                    v[part] = resolve_names(v[part])
        return v

    @model_validator(mode="after")
    def _parts(self) -> ModelSpec:
        kind = MODEL_KINDS.get(self.type)
        kind.check_fields(self)
        mine = set(kind.parts) | set(kind.uses)
        others = dict.fromkeys(k for _, other in MODEL_KINDS.items() for k in (*other.parts, *other.uses))
        extra = [k for k in others if k not in mine and getattr(self, k) != type(self).model_fields[k].default]
        if extra:
            uses = "; ".join(f"{n}: {', '.join((*k.parts, *k.uses))}" for n, k in MODEL_KINDS.items())
            raise ValueError(f"model type {self.type} does not use {', '.join(extra)} ({uses})")
        return self

    @field_validator("input_shape")
    @classmethod
    def _shape(cls, v):
        if v is not None and (not v or any(d <= 0 for d in v)):
            raise ValueError(f"input_shape must be a list of positive sizes, got {v}")
        return v


class ClipSpec(Strict):
    """Gradient clipping: global L2 norm (`max_norm`), per-tensor norm (`per_tensor: true`) or elementwise."""

    max_norm: Optional[float] = Field(None, gt=0)
    per_tensor: bool = False
    max_value: Optional[float] = Field(None, gt=0)

    @model_validator(mode="after")
    def _one(self) -> ClipSpec:
        if (self.max_norm is None) == (self.max_value is None):
            raise ValueError("give exactly one of max_norm (L2 norm) or max_value (elementwise)")
        if self.per_tensor and self.max_norm is None:
            raise ValueError("per_tensor applies to max_norm only")
        return self


class EarlyStoppingSpec(Strict):
    """Keras semantics: after each epoch (from `start_from_epoch` on), an improvement is a value better than
    the best so far by more than `min_delta`; training stops at the `patience`-th epoch in a row without one."""

    monitor: str = "val_loss"
    mode: Literal["min", "max", "auto"] = "auto"
    patience: int = Field(10, ge=0, le=MAX_EPOCHS)
    min_delta: float = Field(0.0, ge=0)
    baseline: Optional[float] = None
    start_from_epoch: int = Field(0, ge=0, le=MAX_EPOCHS)
    restore_best: bool = Field(True, description="end with the weights of the best epoch")
    stopping_threshold: Optional[float] = Field(None, description="stop as soon as the monitor is this good")
    divergence_threshold: Optional[float] = Field(None, description="stop as soon as the monitor is this bad")


class StreamSpec(Strict):
    window: Optional[int] = Field(
        None,
        gt=0,
        le=4096,
        description="batches per compiled call when streaming "
        "(default: 1 under fuse: steps, else as many as fit in ~64 MiB, at most 64)",
    )
    prefetch: int = Field(
        2,
        ge=1,
        le=16,
        description="windows gathered on the host and sent to the device ahead of the one being trained on",
    )


class CheckpointSpec(Strict):
    """Periodic checkpoints (whole training state) every `every_epochs` epochs; the newest `keep` are kept."""

    every_epochs: int = Field(1, gt=0, le=MAX_EPOCHS)
    keep: int = Field(3, gt=0, le=10_000)


class TrainSpec(Strict):
    loss: LossRef = Field(..., description="loss function")
    metrics: list[str] = Field(default_factory=list)
    optimizer: OptimizerRef = Field(default_factory=lambda: {"type": "adam"})
    batch_size: Union[int, Literal["full"]] = Field(32, description="examples per step, or `full` (batch GD)")
    epochs: Optional[int] = Field(
        None,
        gt=0,
        le=MAX_EPOCHS,
        description="passes over the training data (default: 10 when steps is not given either)",
    )
    steps: Optional[int] = Field(None, gt=0, le=2**31 - 2, description="total optimizer steps (instead of epochs)")
    weight_decay: Optional[float] = Field(None, ge=0)
    gradient_clipping: Optional[ClipSpec] = None
    early_stopping: Optional[EarlyStoppingSpec] = None
    class_weight: Optional[Union[Literal["balanced"], dict[Union[int, str], float]]] = Field(
        None,
        description="classification: multiply each training example's loss by its class's weight, "
        "{class index or label text: weight} (missing classes: 1) or balanced (n / (classes * count), from the "
        "training split); evaluation losses stay unweighted",
    )
    freeze: list[str] = Field(default_factory=list, description="globs over parameter paths, e.g. '*/bias'")
    on_nonfinite: Literal["stop", "skip_step"] = Field("stop", description="what a NaN/inf loss or gradient does")
    max_skipped_epochs: int = Field(
        3,
        ge=1,
        le=MAX_EPOCHS,
        description="on_nonfinite: skip_step: the run fails once this many epochs in a row skipped every step",
    )
    fuse: Literal["auto", "epochs", "steps"] = Field(
        "auto", description="compile whole epochs (several per call when tiny) or one step per call"
    )
    data_placement: Literal["auto", "device", "stream"] = Field(
        "auto",
        description="device: every split is copied to the device once and epochs run there; stream: the "
        "data stays in host memory and batches go to the device in windows, prefetched; auto: device when train "
        "and validation data take at most half the device's memory (a quarter of RAM on CPU), else stream",
    )
    stream: StreamSpec = Field(
        # mypy reads `Field(None, ...)` (a positional default) as a required __init__ argument, so it thinks
        # StreamSpec() needs arguments; every StreamSpec field has a default.
        default_factory=StreamSpec,  # type: ignore[arg-type]
        description="{window: N, prefetch: K}: how batches are streamed when data_placement is stream",
    )
    checkpoint: Optional[CheckpointSpec] = Field(
        None,
        description="{every_epochs: N, keep: K}: periodic "
        "checkpoints for `nnctl train --resume` (plus the best weights)",
    )
    evaluate_test: bool = Field(
        True,
        description="score the kept weights on the held-out test split at the end of training (when the data "
        "has one): shown in the final table and written to summary.json as `test`",
    )
    log: list[Literal["csv", "tensorboard"]] = Field(
        default_factory=list, description="extra metric sinks besides metrics.jsonl: csv, tensorboard"
    )
    devices: Union[Literal["all"], int] = Field(
        1, description="data-parallel training over this many local devices (batch sharded, weights replicated)"
    )
    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="bf16: compute in bfloat16, keep float32 weights and optimizer state"
    )
    regularizers: list[RegularizerRef] = Field(
        default_factory=list,
        description="activity penalties on named layers: activity_l1, activity_kl (sparse), contractive",
    )
    tbptt: Optional[int] = Field(
        None,
        gt=0,
        le=10**6,
        description="truncated backpropagation through time: in every recurrent layer, gradients flow through at "
        "most this many steps (the state is carried on, its gradient cut every k steps); a layer's own tbptt wins",
    )
    loss_weights: Optional[list[NonNegativeFloat]] = Field(
        None,
        description="with model.outputs: one weight per output, in that order; the loss is the weighted sum of "
        "the outputs' losses (default: 1 each)",
    )
    generator: Optional[OptimizerRef] = Field(
        None, description="gan, cyclegan: the generators' optimizer (default: optimizer)"
    )
    discriminator: Optional[OptimizerRef] = Field(
        None, description="gan, cyclegan, aae, vaegan: the discriminators' optimizer (default: optimizer)"
    )
    param_groups: list[ParamGroup] = Field(
        default_factory=list,
        description="[{params: GLOB, learning_rate_scale: 0.1}]: smaller steps for matching parameters",
    )
    diagnostics: bool = Field(
        False,
        description="record per-layer gradient and weight norms, update/weight ratios, dead-ReLU and saturated "
        "sigmoid/tanh fractions every epoch (on a fixed probe batch) and flag what they show at the end",
    )
    clip: list[ClipRange] = Field(
        default_factory=list,
        description="per-layer clip ranges [{params: GLOB, grad_value: V, grad_norm: N, weight_min: LO, "
        "weight_max: HI}]: gradients clipped before the optimizer, weights clipped after each update",
    )

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, v: list[str]) -> list[str]:
        bad = [m for m in v if m not in METRICS]
        if bad:
            raise ValueError("; ".join(METRICS.unknown_message(m) for m in bad))
        return [METRICS.canonical(m) for m in v]

    @field_validator("devices")
    @classmethod
    def _devices(cls, v):
        if isinstance(v, int) and v <= 0:
            raise ValueError(f"devices must be 'all' or a positive count, got {v}")
        return v

    @field_validator("batch_size")
    @classmethod
    def _bs(cls, v):
        if isinstance(v, int) and not 0 < v < 2**31:
            raise ValueError(f"batch_size must be positive or 'full' (and below 2**31), got {v}")
        return v

    @model_validator(mode="after")
    def _length(self) -> TrainSpec:
        if self.epochs is not None and self.steps is not None:
            raise ValueError("give epochs or steps, not both")
        if self.epochs is None and self.steps is None:
            object.__setattr__(self, "epochs", 10)
        return self


class Spec(Strict):
    name: Optional[str] = Field(None, description="run name (default: the spec file's stem)")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="drives initialisation, shuffling, dropout and augmentation")
    description: Optional[str] = None
    data: DataSpec = Field(
        default_factory=lambda: DataSpec.model_validate({"source": "none"}),
        description="omitted: no data (source none), enough for `inspect` and `validate` with model.input_shape",
    )
    model: ModelSpec
    train: TrainSpec
    search: Optional[SearchSpec] = Field(
        None, description="hyperparameters for `nnctl sweep` to search (ignored by `nnctl train`)"
    )

    @model_validator(mode="before")
    @classmethod
    def _tbptt(cls, v: Any) -> Any:
        """train.tbptt: k becomes `tbptt: k` on every recurrent layer that does not set its own (the resolved
        spec shows it there)."""
        k = v.get("train", {}).get("tbptt") if isinstance(v, dict) and isinstance(v.get("train"), dict) else None
        if k is None or not isinstance(v.get("model"), dict):
            return v
        model = dict(v["model"])
        for part in dict.fromkeys(p for _, kind in MODEL_KINDS.items() for p in kind.parts):
            if isinstance(model.get(part), list):
                model[part] = [_with_tbptt(layer, k) for layer in model[part]]
        return {**v, "model": model}


def _with_tbptt(layer: Any, k: Any) -> Any:
    if not isinstance(layer, dict) or "tbptt" in layer or str(layer.get("type")) not in RECURRENT_TYPES:
        return layer
    return {**layer, "tbptt": k}
