"""What a model kind is: the protocol every `nnctl/kinds/<kind>.py` implements, and its registry."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from pydantic import TypeAdapter

from nnctl.chain import build_chain
from nnctl.layers.base import frozen_layer_names
from nnctl.layers.graph import thread_shapes
from nnctl.losses import LOSSES
from nnctl.registry import Registry
from nnctl.trees import param_paths


@dataclass(frozen=True)
class BuildContext:
    """What a kind needs to build its objective: the typed spec, the prepared data, the network, the shapes of
    its parameters and the step counts that size schedules; `class_weight` as one factor per class (or None)."""

    spec: Any
    data: Any  # nnctl.data.prepare.Dataset
    net: Any
    params_shape: Any
    total_steps: int
    steps_per_epoch: int
    class_weight: tuple | None = None


class ModelKind:
    """One `model.type`. Subclasses set the class attributes and override what differs."""

    name: ClassVar[str]
    parts: ClassVar[tuple[str, ...]]  # the model: keys holding layer lists, in order
    uses: ClassVar[tuple[str, ...]] = ()  # other model: keys only this kind uses (latent_dim, beta, ...)
    doc: ClassVar[str] = ""
    # spec keys this kind does not support: (path, reason); each used one is a located spec error
    unsupported: ClassVar[tuple[tuple[tuple, str], ...]] = ()
    losses: ClassVar[tuple[str, ...] | None] = None  # the losses it accepts (None: any)
    loss_names: ClassVar[str] = ""  # how to name them in an error
    kernel_regularizer: ClassVar[str] = ""  # non-empty: why layers' kernel_regularizer is refused
    can_sample: ClassVar[bool] = False
    can_encode: ClassVar[bool] = True
    diagnostics: ClassVar[bool] = False  # whether train.diagnostics can probe its network (one supervised net)

    # --- the spec -----------------------------------------------------------------------------------------
    def check_fields(self, model: Any) -> None:
        """Raise ValueError when `model:` lacks a part or key this kind needs."""
        missing = [p for p in self.parts if getattr(model, p) is None]
        if "latent_dim" in self.uses and model.latent_dim is None:
            missing.append("latent_dim")
        if missing:
            raise ValueError(f"model type {self.name} needs {', '.join(missing)}")

    def layers(self, model: Any) -> list:
        """Every layer spec of the model, part after part."""
        return [layer for part in self.parts for layer in (getattr(model, part) or [])]

    def prefix(self, part: str) -> str:
        """The parameter-path prefix of a part's layers."""
        return f"{part}/"

    def frozen_layers(self, model: Any) -> list[str]:
        """Paths of the layers with `trainable: false`."""
        return [n for part in self.parts for n in frozen_layer_names(getattr(model, part) or [], self.prefix(part))]

    def part_chains(self, ctx: BuildContext, plan: Iterable[tuple[str, tuple[str, ...], Any]]) -> dict[str, Any]:
        """{chain: Chain} of a kind training several networks, from (chain, the sub-networks it updates, its
        optimizer spec); each `train.param_groups` entry applies to the chains whose parameters it matches."""
        t, frozen, chains = ctx.spec.train, self.frozen_layers(ctx.spec.model), {}
        for name, nets, opt in plan:
            shape = {n: ctx.params_shape[n] for n in nets}
            groups = [g for g in t.param_groups if any(fnmatch.fnmatchcase(p, g.params) for p in param_paths(shape))]
            tp = t.model_copy(update={"optimizer": opt})
            chains[name] = build_chain(tp, shape, ctx.total_steps, ctx.steps_per_epoch, frozen, groups)
        return chains

    def thread(self, loaded: Any, input_shape: tuple, info: Any) -> tuple[dict, tuple | None, list, list]:
        """(shapes by layer name, output shape for the data pipeline, problems, warnings)."""
        raise NotImplementedError

    def implied_task(self, spec: Any, info: Any) -> str | None:
        """The task this kind implies when `data.task` is not given (None: inferred from the labels)."""
        return None

    def check(self, loaded: Any, input_shape: tuple | None, info: Any, shapes: dict) -> tuple[list, list]:
        """This kind's own (problems, warnings) beyond shapes and `check_common`."""
        return [], []

    def check_common(self, loaded: Any) -> list:
        """Problems with keys this kind does not support, its losses, and kernel regularizers in its parts."""
        spec = loaded.spec
        problems = [loaded.problem(path, reason) for path, reason in self.unsupported if _used(spec, path)]
        problems += _shadowed_optimizer(self, loaded)
        if spec.train.diagnostics and not self.diagnostics:
            problems.append(
                loaded.problem(
                    ("train", "diagnostics"),
                    f"train.diagnostics measures one supervised network (model.type: sequential); a {self.name} "
                    "trains several parts on losses of their own: remove it (train.clip still applies)",
                )
            )
        loss = LOSSES.canonical(spec.train.loss.type)
        if self.losses is not None and loss not in self.losses:
            problems.append(
                loaded.problem(
                    ("train", "loss"), (f"a {self.name} takes loss {self.loss_names}, not {spec.train.loss.type}")
                )
            )
        if self.kernel_regularizer:
            for part in self.parts:
                for i, layer in enumerate(getattr(spec.model, part) or []):
                    if getattr(layer, "kernel_regularizer", None) is not None:
                        problems.append(
                            loaded.problem(("model", part, i, "kernel_regularizer"), self.kernel_regularizer)
                        )
        return problems + _sequence_key_problems(self, loaded)

    # --- training ------------------------------------------------------------------------------------------
    def network(self, model: Any, num_classes: int | None) -> Any:
        raise NotImplementedError

    def objective(self, ctx: BuildContext) -> Any:
        raise NotImplementedError

    # --- using a trained run ----------------------------------------------------------------------------------
    def encodable(self, model: Any) -> list[str]:
        """Names `predict --encode` accepts."""
        return [layer.name for layer in self.layers(model)]


MODEL_KINDS: Registry[ModelKind] = Registry("model type")


def register_kind(cls: type[ModelKind]) -> type[ModelKind]:
    """Class decorator: register one instance under the class's `name`."""
    MODEL_KINDS.register(cls.name)(cls())
    return cls


def _shadowed_optimizer(kind: ModelKind, loaded: Any) -> list:
    """train.optimizer in a kind whose parts each have an optimizer key of their own (train.generator and
    train.discriminator), all of them set: it is only their default, so it would be ignored."""
    own = [p for p in ("generator", "discriminator") if p in kind.parts]
    train = loaded.spec.train
    if len(own) < 2 or any(getattr(train, p) is None for p in own):
        return []
    if train.optimizer == _default_optimizer(type(train)):  # a run's own spec.yaml writes the default out
        return []
    msg = (
        f"train.optimizer is only the default of train.generator and train.discriminator, and this {kind.name} "
        "sets both: it would be ignored. Move its settings into them (e.g. --set train.generator.learning_rate=...)"
        " or remove it"
    )
    return [loaded.problem(("train", "optimizer"), msg)]


_DEFAULT_OPTIMIZER: dict = {}  # train section class -> its validated default optimizer


def _default_optimizer(train_cls: Any) -> Any:
    """The validated default of `train.optimizer` (its union's adapter is built once per process)."""
    if train_cls not in _DEFAULT_OPTIMIZER:
        field = train_cls.model_fields["optimizer"]
        default = field.get_default(call_default_factory=True)
        _DEFAULT_OPTIMIZER[train_cls] = TypeAdapter(field.annotation).validate_python(default)
    return _DEFAULT_OPTIMIZER[train_cls]


def _used(spec: Any, path: tuple) -> bool:
    """Whether the spec sets `path` (a section and key) to something other than its default."""
    section = getattr(spec, path[0])
    field = type(section).model_fields[path[1]]
    default = field.default_factory() if field.default_factory is not None else field.default
    return getattr(section, path[1]) != default


def abstract_variables(net: Any, input_shape: tuple) -> dict:
    """Shapes and dtypes of every variable of `net`, without computing anything (jax.eval_shape)."""
    x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)

    def init(x: Any) -> Any:
        key = jax.random.key(0)  # made inside the trace: nothing is computed (or compiled) for it
        return net.init({"params": key, "dropout": key}, x, train=False)

    return jax.eval_shape(init, x)


def part_shapes(loaded: Any, name: str, layers: list, shape: tuple, sink: tuple[list, list, dict]) -> tuple | None:
    """Thread `shape` through one part's layers; problems, warnings and shapes go into `sink`."""
    problems, warnings, shapes = sink
    sh, out, ps, ws = thread_shapes(layers, shape)
    problems.extend(loaded.problem(("model", name) + p, msg) for p, msg in ps)
    warnings.extend(loaded.problem(("model", name) + p, msg) for p, msg in ws)
    shapes.update({f"{name}/{k}": v for k, v in sh.items() if k != "input"})
    return out


def _sequence_key_problems(kind: ModelKind, loaded: Any) -> list:
    """train.loss_weights without model.outputs, train.tbptt without a recurrent layer: keys with nothing to
    act on, whatever the model kind."""
    spec, problems = loaded.spec, []
    if spec.train.loss_weights is not None and spec.model.outputs is None:
        problems.append(loaded.problem(("train", "loss_weights"), "train.loss_weights needs model.outputs"))
    if spec.train.tbptt is not None and not any(getattr(layer, "tbptt", None) for layer in kind.layers(spec.model)):
        msg = "train.tbptt truncates recurrent layers; this model has none"
        problems.append(loaded.problem(("train", "tbptt"), msg))
    return problems


def decoder_problems(loaded: Any, latent_dim: int, input_shape: tuple, sink: tuple[list, list, dict]) -> None:
    """Thread the code through `model.decoder`; a problem in `sink` unless it reconstructs the input's shape."""
    decoder = loaded.spec.model.decoder
    out = part_shapes(loaded, "decoder", decoder, (latent_dim,), sink)
    if out is not None and tuple(out) != tuple(input_shape):
        sink[0].append(
            loaded.problem(
                ("model", "decoder", len(decoder) - 1),
                f"the decoder outputs {list(out)} but the inputs are {list(input_shape)}: the reconstruction "
                "must have the input's shape",
            )
        )


def one_logit_problems(loaded: Any, shape: tuple, per: str, sink: tuple[list, list, dict]) -> None:
    """Thread `shape` through `model.discriminator`; a problem in `sink` unless it ends in one logit per `per`."""
    layers = loaded.spec.model.discriminator
    d_out = part_shapes(loaded, "discriminator", layers, shape, sink)
    if d_out is not None and math.prod(d_out) != 1:
        sink[0].append(
            loaded.problem(
                ("model", "discriminator", len(layers) - 1),
                f"the discriminator must output one logit per {per}, got {list(d_out)}: end with "
                "{type: dense, units: 1}",
            )
        )
