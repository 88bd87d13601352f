"""`model.type: sequential` (the default): one network, a graph of layers wired by name. Supervised
training, autoencoders (`data.task: autoencoder`) with activity regularizers, corruption and augmentation."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from nnctl.augment import shape_problem
from nnctl.chain import build_chain
from nnctl.errors import choices_text, did_you_mean
from nnctl.kinds.base import BuildContext, ModelKind, register_kind
from nnctl.layers.base import kernel_regularizers
from nnctl.layers.graph import Network, mask_flow, thread_shapes
from nnctl.losses import head_activation, loss_info
from nnctl.objectives.multi import MultiOutput, MultiOutputRegularized
from nnctl.objectives.regularized import Regularized
from nnctl.objectives.specs import regularizer_keys
from nnctl.objectives.supervised import Supervised


@register_kind
class Sequential(ModelKind):
    name = "sequential"
    parts = ("layers",)
    uses = ("outputs",)
    doc = "plain network (graph of layers)"
    diagnostics = True
    unsupported = (
        (("train", "generator"), "train.generator is the optimizer of a gan's generator; this model is sequential"),
        (
            ("train", "discriminator"),
            "train.discriminator is the optimizer of a gan's discriminator; this model is sequential",
        ),
    )

    def prefix(self, part: str) -> str:
        return ""

    def network(self, model: Any, num_classes: int | None) -> Network:
        return Network(tuple(model.layers))

    def thread(self, loaded, input_shape, info):
        shapes, out, ps, ws = thread_shapes(loaded.spec.model.layers, input_shape)
        return (
            shapes,
            out,
            [loaded.problem(("model", "layers") + p, m) for p, m in ps],
            [loaded.problem(("model", "layers") + p, m) for p, m in ws],
        )

    def check(self, loaded, input_shape, info, shapes):
        t, d, m = loaded.spec.train, loaded.spec.data, loaded.spec.model
        problems, warnings = [], []
        names = [n for n in shapes if n != "input"]
        acts = {layer.name: layer.activation for layer in m.layers}
        for i, r in enumerate(t.regularizers):
            if r.layer not in names:
                problems.append(
                    loaded.problem(
                        ("train", "regularizers", i, "layer"),
                        (f"unknown layer '{r.layer}'.{did_you_mean(r.layer, names)} Layers: {choices_text(names)}"),
                    )
                )
            elif r.type == "activity_kl":
                a = acts.get(r.layer)
                if a is None or a.type != "sigmoid":
                    warnings.append(
                        loaded.problem(
                            ("train", "regularizers", i),
                            (
                                f"activity_kl treats activations as probabilities; layer '{r.layer}' is not sigmoid "
                                f"(values are clipped to (0, 1))"
                            ),
                        )
                    )
        if d.corruption is not None and d.task != "autoencoder":
            problems.append(
                loaded.problem(
                    ("data", "corruption"),
                    (
                        "data.corruption trains a denoising autoencoder: set data.task: autoencoder (for noisy "
                        "inputs in supervised training use data.augment: [{type: gaussian_noise, ..}])"
                    ),
                )
            )
        for i, a in enumerate(d.augment):
            msg = shape_problem(a, input_shape) if input_shape is not None else None
            if msg:
                problems.append(loaded.problem(("data", "augment", i), msg))
        p, w = self.check_masks(loaded)
        problems += p + self.check_outputs(loaded, shapes)
        warnings += w
        out = shapes.get(m.layers[-1].name)
        if (
            info is not None
            and out is not None
            and info.num_classes
            and d.task in (None, "classification")
            and loss_info(t.loss.type).per_class
            and len(out) == 1
            and out[-1] not in (1, info.num_classes)
        ):
            problems.append(
                loaded.problem(
                    ("model", "layers", len(m.layers) - 1),
                    (
                        f"the data has {info.num_classes} classes but the last layer outputs {out[-1]} values: "
                        f"set units: {info.num_classes}"
                    ),
                )
            )
        return problems, warnings

    def check_masks(self, loaded) -> tuple[list, list]:
        """Masks of padded steps: the padding value must reach the masking layer unscaled, and the metrics
        of a masked sequence output must be ones that can count real steps only."""
        t, d, m = loaded.spec.train, loaded.spec.data, loaded.spec.model
        problems: list = []
        makers = [i for i, layer in enumerate(m.layers) if layer.makes_mask()]
        if makers and d.normalize != "none":
            problems.append(
                loaded.problem(
                    ("data", "normalize"),
                    f"data.normalize: {d.normalize} moves the padding value that layer "
                    f"'{m.layers[makers[0]].name}' masks: set data.normalize: none (scale the data beforehand, "
                    f"leaving the padding value as it is)",
                )
            )
        if m.layers[-1].name in mask_flow(m.layers):
            for i, name in enumerate(t.metrics):
                if name in ("r2", "r2_score", "psnr", "ssim"):
                    problems.append(
                        loaded.problem(
                            ("train", "metrics", i),
                            f"{name} cannot skip the padded steps of a masked sequence output: use mse or mae",
                        )
                    )
        return problems, []

    def check_outputs(self, loaded, shapes: dict) -> list:
        """model.outputs: known, distinct layers including the last, each shaped like the model's output;
        train.loss_weights: one per output."""
        m, t = loaded.spec.model, loaded.spec.train
        if m.outputs is None:
            return []  # train.loss_weights without outputs: kinds.base.check_common
        names, last = [layer.name for layer in m.layers], m.layers[-1].name
        problems = []
        for i, name in enumerate(m.outputs):
            if name not in names:
                msg = f"unknown layer '{name}'.{did_you_mean(name, names)} Layers: {choices_text(names)}"
                problems.append(loaded.problem(("model", "outputs", i), msg))
            elif shapes.get(name) != shapes.get(last):
                msg = (
                    f"output '{name}' has shape {shapes.get(name)}, the model's output '{last}' {shapes.get(last)}: "
                    f"every output is trained against the same targets"
                )
                problems.append(loaded.problem(("model", "outputs", i), msg))
        if last not in m.outputs or len(set(m.outputs)) != len(m.outputs):
            msg = f"list each output once, the last layer '{last}' (the model's output) among them"
            problems.append(loaded.problem(("model", "outputs"), msg))
        if t.loss_weights is not None and len(t.loss_weights) != len(m.outputs):
            msg = f"{len(t.loss_weights)} weights for {len(m.outputs)} outputs: give one per model.outputs entry"
            problems.append(loaded.problem(("train", "loss_weights"), msg))
        if last in mask_flow(m.layers):
            msg = "several outputs with a mask of padded steps are not supported: drop the mask or the extra outputs"
            problems.append(loaded.problem(("model", "outputs"), msg))
        return problems

    def objective(self, ctx: BuildContext) -> Supervised:
        spec, data = ctx.spec, ctx.data
        t, d = spec.train, spec.data
        chain = build_chain(
            t, ctx.params_shape, ctx.total_steps, ctx.steps_per_epoch, self.frozen_layers(spec.model), t.param_groups
        )
        common = dict(
            net=ctx.net,
            head=head_activation(spec.model.layers[-1].activation, t.loss.type),
            loss_opts=t.loss,
            metric_names=tuple(t.metrics),
            num_classes=data.num_classes or 2,
            chain=chain,
            regularizers=tuple(kernel_regularizers(spec.model.layers)),
            clip=t.gradient_clipping,
            compute_dtype=jnp.bfloat16 if t.precision == "bf16" else None,
            target_scale=(
                data.target_scaler.scale if data.task == "regression" and data.target_scaler.kind != "none" else None
            ),
            class_weight=ctx.class_weight,
            masked=spec.model.layers[-1].name in mask_flow(spec.model.layers),
        )
        regularized = bool(t.regularizers or d.corruption is not None or d.augment or data.task == "autoencoder")
        if spec.model.outputs is not None:
            by_name = {layer.name: layer for layer in spec.model.layers}
            outs = tuple(spec.model.outputs)
            common.update(
                outputs=outs,
                heads=tuple(head_activation(by_name[n].activation, t.loss.type) for n in outs),
                loss_weights=tuple(t.loss_weights or [1.0] * len(outs)),
                main=outs.index(spec.model.layers[-1].name),
            )
        if regularized:
            return (MultiOutputRegularized if spec.model.outputs is not None else Regularized)(
                **common,
                activity=tuple(zip(regularizer_keys(t.regularizers), t.regularizers)),
                corruption=d.corruption,
                augment=tuple(d.augment),
                autoencoder=data.task == "autoencoder",
            )
        return (MultiOutput if spec.model.outputs is not None else Supervised)(**common)
