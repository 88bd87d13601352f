"""`model.type: cyclegan`: unpaired translation between domain A (class 0 of the data) and domain B (class 1).
The `generator` architecture is built twice (generator_ab: A -> B, generator_ba: B -> A), the `discriminator`
architecture twice (discriminator_a, discriminator_b); losses in nnctl.objectives.cyclegan. Generators share
one optimizer (`train.generator`, default `train.optimizer`), discriminators another (`train.discriminator`).
`predict --encode generator_ab` translates A to B (generator_ba: B to A); plain `predict` gives (D_A, D_B)."""

from __future__ import annotations

import math

import jax.numpy as jnp

from nnctl.kinds.base import BuildContext, ModelKind, part_shapes, register_kind
from nnctl.kinds.gan_checks import LOSS_KIND
from nnctl.layers.base import frozen_layer_names
from nnctl.losses import LOSSES
from nnctl.objectives.cyclegan import GROUPS, CycleGAN, CycleGANNet

COPIES = {"generator": GROUPS["generator"], "discriminator": GROUPS["discriminator"]}


def _no(what: str, why: str) -> str:
    return f"{what} {why}; a cyclegan does not support it: remove it"


@register_kind
class CycleGan(ModelKind):
    name = "cyclegan"
    parts = ("generator", "discriminator")
    uses = ("cycle_weight", "identity_weight")
    doc = "two generators (A -> B, B -> A) + two discriminators, unpaired domains A = class 0, B = class 1"
    losses = ("binary_crossentropy", "least_squares", "mse")
    loss_names = "least_squares (as the CycleGAN paper) or bce"
    can_encode = True
    kernel_regularizer = "kernel_regularizer is not supported in a cyclegan (use train.weight_decay)"
    unsupported = (
        (("train", "regularizers"), _no("train.regularizers", "penalise an autoencoder's code")),
        (("train", "class_weight"), _no("train.class_weight", "weights classes; the classes here are the domains")),
        (("data", "corruption"), _no("data.corruption", "trains a denoising autoencoder")),
        (("data", "augment"), _no("data.augment", "is not applied by the cyclegan objective")),
        (("train", "metrics"), _no("train.metrics", "needs a target; a cyclegan logs d_loss, g_loss, cycle")),
    )

    def frozen_layers(self, model) -> list[str]:
        """Both copies of each `trainable: false` layer (generator_ab/... and generator_ba/..., ...)."""
        parts = ((getattr(model, part), c) for part in self.parts for c in COPIES[part])
        return [n for layers, c in parts for n in frozen_layer_names(layers, f"{c}/")]

    def network(self, model, num_classes):
        return CycleGANNet(tuple(model.generator), tuple(model.discriminator))

    def thread(self, loaded, input_shape, info):
        m = loaded.spec.model
        sink: tuple[list, list, dict] = ([], [], {})
        problems = sink[0]
        nc = info.num_classes if info is not None else None
        if nc != 2:
            problems.append(
                loaded.problem(
                    ("model", "type"),
                    f"a cyclegan translates between two domains given as the data's two classes (0: A, 1: B); "
                    f"this data has {nc or 'no'} classes",
                )
            )
        out = part_shapes(loaded, "generator", m.generator, tuple(input_shape), sink)
        if out is not None and tuple(out) != tuple(input_shape):
            problems.append(
                loaded.problem(
                    ("model", "generator", len(m.generator) - 1),
                    f"a cyclegan generator translates an example into an example: it outputs {list(out)}, "
                    f"the examples are {list(input_shape)}",
                )
            )
        d_out = part_shapes(loaded, "discriminator", m.discriminator, tuple(input_shape), sink)
        if d_out is not None and math.prod(d_out) != 1:
            problems.append(
                loaded.problem(
                    ("model", "discriminator", len(m.discriminator) - 1),
                    f"the discriminator must output one value (a real/fake logit) per example, got {list(d_out)}: "
                    "end with {type: dense, units: 1}",
                )
            )
        return sink[2], (2,), problems, sink[1]

    def objective(self, ctx: BuildContext) -> CycleGAN:
        m, t = ctx.spec.model, ctx.spec.train
        chains = self.part_chains(ctx, ((part, nets, getattr(t, part) or t.optimizer) for part, nets in COPIES.items()))
        return CycleGAN(
            net=ctx.net,
            kind=LOSS_KIND[LOSSES.canonical(t.loss.type)],
            chains=chains,
            cycle_weight=m.cycle_weight,
            identity_weight=m.identity_weight,
            clip=t.gradient_clipping,
            compute_dtype=jnp.bfloat16 if t.precision == "bf16" else None,
        )

    def encodable(self, model):
        return list(GROUPS["generator"])
