"""`model.type: vae`: encoder -> (mean, log-variance) -> reparameterised sample -> decoder, trained on
reconstruction + beta * KL (nnctl.objectives.vae). Besides its own keys it takes kernel regularizers,
activity regularizers on encoder layers, `data.augment`, `data.corruption` (denoising VAE), regression
`train.metrics` of the reconstruction, `train.param_groups`, `train.freeze` and `precision: bf16`."""

from __future__ import annotations

import math

import jax.numpy as jnp

from nnctl.augment import shape_problem
from nnctl.chain import build_chain
from nnctl.errors import Problem, choices_text, did_you_mean
from nnctl.kinds.base import BuildContext, ModelKind, part_shapes, register_kind
from nnctl.layers.base import kernel_regularizers
from nnctl.layers.graph import Network
from nnctl.losses import head_activation
from nnctl.metrics import METRICS, TASK_NEEDS
from nnctl.objectives.nets import VAENet
from nnctl.objectives.specs import regularizer_keys
from nnctl.objectives.vae import VAE


@register_kind
class Vae(ModelKind):
    name = "vae"
    parts = ("encoder", "decoder")
    uses = ("latent_dim", "beta")
    doc = "encoder + decoder"
    losses = ("mse", "mae", "binary_crossentropy", "huber", "least_squares")
    loss_names = "mse or mae or binary_crossentropy or huber"
    can_sample = True
    unsupported = (
        (
            ("train", "class_weight"),
            (
                "train.class_weight weights each example's loss by its class label; a vae learns from the inputs alone "
                "(no labels, nothing to weight): remove it"
            ),
        ),
        (("train", "generator"), "train.generator is the optimizer of a gan's generator; this model is vae"),
        (
            ("train", "discriminator"),
            ("train.discriminator is the optimizer of a gan's discriminator; this model is vae"),
        ),
    )

    def network(self, model, num_classes):
        return VAENet(Network(tuple(model.encoder)), Network(tuple(model.decoder)), model.latent_dim)

    def thread(self, loaded, input_shape, info):
        m = loaded.spec.model
        sink: tuple[list, list, dict] = ([], [], {})
        problems = sink[0]
        part_shapes(loaded, "encoder", m.encoder, input_shape, sink)
        out = part_shapes(loaded, "decoder", m.decoder, (m.latent_dim,), sink)
        last = ("model", "decoder", len(m.decoder) - 1)
        if out is not None and math.prod(out) != math.prod(input_shape):
            problems.append(
                loaded.problem(
                    last,
                    (
                        f"the decoder outputs {list(out)} ({math.prod(out)} values) "
                        f"but the inputs are {list(input_shape)} "
                        f"({math.prod(input_shape)} values): the reconstruction must have the input's shape"
                    ),
                )
            )
        elif out is not None and tuple(out) != tuple(input_shape):
            problems.append(
                loaded.problem(
                    last,
                    (f"the decoder outputs {list(out)} but the inputs are {list(input_shape)}: add a reshape layer"),
                )
            )
        d = loaded.spec.data
        if d.task not in (None, "autoencoder"):
            problems.append(
                loaded.problem(
                    ("data", "task"),
                    (
                        f"a vae learns from the inputs alone (the target is the input): remove data.task or set "
                        f"it to autoencoder, not {d.task}"
                    ),
                )
            )
        return sink[2], tuple(input_shape), problems, sink[1]

    def implied_task(self, spec, info):
        return "autoencoder"  # the target is the input

    def check(self, loaded, input_shape, info, shapes):
        problems: list[Problem] = []
        warnings: list[Problem] = []
        t, d = loaded.spec.train, loaded.spec.data
        allowed = TASK_NEEDS["autoencoder"]
        ok = ", ".join(n for n in METRICS.names(aliases=False) if METRICS.get(n).needs in allowed)
        for i, name in enumerate(t.metrics):
            if METRICS.get(name).needs not in allowed:
                problems.append(
                    loaded.problem(
                        ("train", "metrics", i),
                        (
                            f"'{name}' does not apply to a vae: its metrics compare the reconstruction with the input "
                            f"(there are no class labels). Choices: {ok}"
                        ),
                    )
                )
        self._check_regularizers(loaded, problems, warnings)
        for i, a in enumerate(d.augment):
            msg = shape_problem(a, input_shape) if input_shape is not None else None
            if msg:
                problems.append(loaded.problem(("data", "augment", i), msg))
        return problems, warnings

    def _check_regularizers(self, loaded, problems, warnings):
        """Activity regularizers name encoder layers (the code); activity_kl wants sigmoid units."""
        enc = {layer.name: layer.activation for layer in loaded.spec.model.encoder}
        dec = [layer.name for layer in loaded.spec.model.decoder]
        for i, r in enumerate(loaded.spec.train.regularizers):
            where = ("train", "regularizers", i, "layer")
            if r.layer in dec and r.layer not in enc:
                problems.append(
                    loaded.problem(
                        where,
                        (
                            f"'{r.layer}' is a decoder layer: a vae's activity regularizers penalise the code, the "
                            f"outputs of encoder layers. Encoder layers: {choices_text(list(enc))}"
                        ),
                    )
                )
            elif r.layer not in enc:
                problems.append(
                    loaded.problem(
                        where,
                        (
                            f"unknown encoder layer '{r.layer}'.{did_you_mean(r.layer, list(enc))} "
                            f"Encoder layers: {choices_text(list(enc))}"
                        ),
                    )
                )
            elif r.type == "activity_kl" and (enc[r.layer] is None or enc[r.layer].type != "sigmoid"):
                warnings.append(
                    loaded.problem(
                        ("train", "regularizers", i),
                        (
                            f"activity_kl treats activations as probabilities; layer '{r.layer}' is not sigmoid "
                            f"(values are clipped to (0, 1))"
                        ),
                    )
                )

    def objective(self, ctx: BuildContext) -> VAE:
        m, t, d = ctx.spec.model, ctx.spec.train, ctx.spec.data
        chain = build_chain(
            t, ctx.params_shape, ctx.total_steps, ctx.steps_per_epoch, self.frozen_layers(m), t.param_groups
        )
        regs = [r for part in self.parts for r in kernel_regularizers(getattr(m, part), self.prefix(part))]
        return VAE(
            net=ctx.net,
            head=head_activation(m.decoder[-1].activation, t.loss.type),
            loss_opts=t.loss,
            chain=chain,
            input_shape=tuple(ctx.data.input_shape),
            latent_dim=m.latent_dim,
            beta=m.beta,
            clip=t.gradient_clipping,
            regularizers=tuple(regs),
            activity=tuple(zip(regularizer_keys(t.regularizers), t.regularizers)),
            augment=tuple(d.augment),
            corruption=d.corruption,
            metric_names=tuple(t.metrics),
            compute_dtype=jnp.bfloat16 if t.precision == "bf16" else None,
        )

    def encodable(self, model):
        return [layer.name for layer in model.encoder] + ["z_mean", "z_log_var"]
