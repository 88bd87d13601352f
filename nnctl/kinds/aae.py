"""`model.type: aae`: an adversarial autoencoder: encoder (example -> code of latent_dim values), decoder (code
-> example) and a discriminator on codes that pulls their distribution to the prior N(0, I)
(nnctl.objectives.aae). The encoder and decoder share `train.optimizer`; the discriminator has
`train.discriminator` (default `train.optimizer`). It samples (`nnctl sample`: decoded prior draws, `--codes`,
`--interpolate`), encodes (`predict --encode` its last encoder layer: the code) and scores anomalies
(`predict`) like a vae."""

from __future__ import annotations

import math

import jax.numpy as jnp

from nnctl.kinds.base import BuildContext, ModelKind, decoder_problems, one_logit_problems, part_shapes, register_kind
from nnctl.layers.graph import Network
from nnctl.losses import head_activation
from nnctl.objectives.aae import AAE, AUTOENCODER, AAENet


def _no(what: str, why: str) -> str:
    return f"{what} {why}; an aae does not support it: remove it"


@register_kind
class Aae(ModelKind):
    name = "aae"
    parts = ("encoder", "decoder", "discriminator")
    uses = ("latent_dim", "adversarial_weight")
    doc = "adversarial autoencoder: encoder + decoder + discriminator on the codes (prior N(0, I))"
    losses = ("mse", "mae", "binary_crossentropy", "huber", "least_squares")
    loss_names = "mse or mae or binary_crossentropy or huber (the reconstruction loss)"
    can_sample = True
    kernel_regularizer = "kernel_regularizer is not supported in an aae (use train.weight_decay)"
    unsupported = (
        (("train", "generator"), "an aae's encoder and decoder use train.optimizer (train.generator is a gan's)"),
        (("train", "class_weight"), _no("train.class_weight", "weights classes; an aae learns from inputs alone")),
        (("train", "regularizers"), _no("train.regularizers", "are activity penalties (its code has the prior)")),
        (("data", "corruption"), _no("data.corruption", "is not applied by the aae objective")),
        (("data", "augment"), _no("data.augment", "is not applied by the aae objective")),
        (("train", "metrics"), _no("train.metrics", "are not computed by the aae objective (it logs its terms)")),
    )

    def network(self, model, num_classes):
        return AAENet(*(Network(tuple(getattr(model, p))) for p in self.parts))

    def thread(self, loaded, input_shape, info):
        m = loaded.spec.model
        sink: tuple[list, list, dict] = ([], [], {})
        problems = sink[0]
        code = part_shapes(loaded, "encoder", m.encoder, tuple(input_shape), sink)
        if code is not None and math.prod(code) != m.latent_dim:
            problems.append(
                loaded.problem(
                    ("model", "encoder", len(m.encoder) - 1),
                    f"the encoder must output the code of latent_dim = {m.latent_dim} values, got {list(code)}",
                )
            )
        decoder_problems(loaded, m.latent_dim, tuple(input_shape), sink)
        one_logit_problems(loaded, (m.latent_dim,), "code", sink)
        if loaded.spec.data.task not in (None, "autoencoder"):
            problems.append(loaded.problem(("data", "task"), "an aae learns from the inputs alone: remove data.task"))
        return sink[2], tuple(input_shape), problems, sink[1]

    def implied_task(self, spec, info):
        return "autoencoder"

    def objective(self, ctx: BuildContext) -> AAE:
        m, t = ctx.spec.model, ctx.spec.train
        plan = (
            ("autoencoder", AUTOENCODER, t.optimizer),
            ("discriminator", ("discriminator",), t.discriminator or t.optimizer),
        )
        chains = self.part_chains(ctx, plan)
        return AAE(
            net=ctx.net,
            head=head_activation(m.decoder[-1].activation, t.loss.type),
            loss_opts=t.loss,
            chains=chains,
            latent_dim=m.latent_dim,
            adversarial_weight=m.adversarial_weight,
            clip=t.gradient_clipping,
            compute_dtype=jnp.bfloat16 if t.precision == "bf16" else None,
        )

    def encodable(self, model):
        """The encoder's layers: the last one's output is the code."""
        return [layer.name for layer in model.encoder]
