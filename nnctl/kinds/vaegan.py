"""`model.type: vaegan`: a vae whose decoder is also a GAN generator, with a discriminator on examples (real vs
reconstructed vs decoded prior draws; nnctl.objectives.vaegan). Encoder and decoder share `train.optimizer`
(each stepped on the gradient of its own loss); the discriminator has `train.discriminator` (default
`train.optimizer`). It samples (`nnctl sample`: decoded prior draws, `--codes`, `--interpolate`), encodes
(`predict --encode z_mean`) and scores anomalies (`predict`) like a vae."""

from __future__ import annotations

import jax.numpy as jnp

from nnctl.kinds.base import BuildContext, ModelKind, decoder_problems, one_logit_problems, part_shapes, register_kind
from nnctl.layers.graph import Network
from nnctl.losses import head_activation
from nnctl.objectives.vaegan import AUTOENCODER, VAEGAN, VAEGANNet


def _no(what: str, why: str) -> str:
    return f"{what} {why}; a vaegan does not support it: remove it"


@register_kind
class VaeGan(ModelKind):
    name = "vaegan"
    parts = ("encoder", "decoder", "discriminator")
    uses = ("latent_dim", "beta", "adversarial_weight")
    doc = "VAE-GAN: encoder + decoder (also the generator) + discriminator on real / reconstructed / sampled examples"
    losses = ("mse", "mae", "binary_crossentropy", "huber", "least_squares")
    loss_names = "mse or mae or binary_crossentropy or huber (the reconstruction loss)"
    can_sample = True
    kernel_regularizer = "kernel_regularizer is not supported in a vaegan (use train.weight_decay)"
    unsupported = (
        (("train", "generator"), "a vaegan's encoder and decoder use train.optimizer (train.generator is a gan's)"),
        (("train", "class_weight"), _no("train.class_weight", "weights classes; a vaegan learns from inputs alone")),
        (("train", "regularizers"), _no("train.regularizers", "are activity penalties (its code has the KL term)")),
        (("data", "corruption"), _no("data.corruption", "is not applied by the vaegan objective")),
        (("data", "augment"), _no("data.augment", "is not applied by the vaegan objective")),
        (("train", "metrics"), _no("train.metrics", "are not computed by the vaegan objective (it logs its terms)")),
    )

    def network(self, model, num_classes):
        return VAEGANNet(
            Network(tuple(model.encoder)), Network(tuple(model.decoder)), model.latent_dim,
            Network(tuple(model.discriminator)),
        )  # fmt: skip

    def thread(self, loaded, input_shape, info):
        m = loaded.spec.model
        sink: tuple[list, list, dict] = ([], [], {})
        problems = sink[0]
        part_shapes(loaded, "encoder", m.encoder, tuple(input_shape), sink)
        decoder_problems(loaded, m.latent_dim, tuple(input_shape), sink)
        one_logit_problems(loaded, tuple(input_shape), "example", sink)
        if loaded.spec.data.task not in (None, "autoencoder"):
            problems.append(loaded.problem(("data", "task"), "a vaegan learns from the inputs alone: remove data.task"))
        return sink[2], tuple(input_shape), problems, sink[1]

    def implied_task(self, spec, info):
        return "autoencoder"

    def objective(self, ctx: BuildContext) -> VAEGAN:
        m, t = ctx.spec.model, ctx.spec.train
        plan = (
            ("autoencoder", AUTOENCODER, t.optimizer),
            ("discriminator", ("discriminator",), t.discriminator or t.optimizer),
        )
        chains = self.part_chains(ctx, plan)
        return VAEGAN(
            net=ctx.net,
            head=head_activation(m.decoder[-1].activation, t.loss.type),
            loss_opts=t.loss,
            chains=chains,
            input_shape=tuple(ctx.data.input_shape),
            latent_dim=m.latent_dim,
            beta=m.beta,
            adversarial_weight=m.adversarial_weight,
            clip=t.gradient_clipping,
            compute_dtype=jnp.bfloat16 if t.precision == "bf16" else None,
        )

    def encodable(self, model):
        return [layer.name for layer in model.encoder] + ["z_mean", "z_log_var"]
