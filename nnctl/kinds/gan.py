"""`model.type: gan`: a generator and a discriminator, each with its own optimizer (`train.generator`,
`train.discriminator`, default `train.optimizer`), updated in turn in one compiled step (nnctl.objectives.gan).
Besides its own keys it takes kernel regularizers (added to the loss of the network that owns the layer),
`train.freeze` / `trainable: false`, `train.param_groups` (globs over generator/... and discriminator/...
paths), `data.augment` (of the real examples) and `precision: bf16`."""

from __future__ import annotations

import fnmatch
import math

import jax.numpy as jnp

from nnctl.augment import shape_problem
from nnctl.chain import build_chain
from nnctl.kinds.base import BuildContext, ModelKind, part_shapes, register_kind
from nnctl.kinds.gan_checks import LOSS_KIND, adversarial_problems, code_width, discriminator_outputs
from nnctl.layers.base import kernel_regularizers
from nnctl.layers.graph import Network
from nnctl.losses import LOSSES
from nnctl.objectives.gan import GAN
from nnctl.objectives.nets import GANNet
from nnctl.objectives.specs import Adversarial
from nnctl.trees import param_paths


@register_kind
class Gan(ModelKind):
    name = "gan"
    parts = ("generator", "discriminator")
    uses = ("latent_dim", "conditional", "adversarial")
    doc = "generator + discriminator"
    losses = ("binary_crossentropy", "least_squares", "mse", "wasserstein")
    loss_names = "bce (the notes' V(D, G)), least_squares (LSGAN) or wasserstein (WGAN)"
    can_sample = True
    can_encode = False
    unsupported = (
        (
            ("train", "regularizers"),
            (
                "train.regularizers are activity penalties on an autoencoder's code (sparse, contractive); "
                "a gan has no "
                "code to penalise: remove them (kernel_regularizer on layers and train.weight_decay do apply to gans)"
            ),
        ),
        (
            ("train", "class_weight"),
            (
                "train.class_weight weights a loss by class label; the gan losses (real vs generated) have no class "
                "term, so it does not apply: remove it"
            ),
        ),
        (
            ("data", "corruption"),
            (
                "data.corruption trains a denoising autoencoder (noisy input, clean target); a gan has no "
                "reconstruction target: remove it (data.augment augments the real examples)"
            ),
        ),
        (
            ("train", "metrics"),
            (
                "a gan has no prediction target for metrics to compare with; it logs its own quantities (d_loss, "
                "g_loss, d_real, d_fake): remove train.metrics"
            ),
        ),
    )

    def network(self, model, num_classes):
        a = model.adversarial or Adversarial()
        nc = int(num_classes or 0) if (model.conditional or a.auxiliary_classifier) else 0
        return GANNet(
            Network(tuple(model.generator)),
            Network(tuple(model.discriminator)),
            model.latent_dim,
            nc,
            label_to_discriminator=not a.auxiliary_classifier,
            code_dim=code_width(a),
        )

    def thread(self, loaded, input_shape, info):
        m = loaded.spec.model
        a = m.adversarial or Adversarial()
        sink: tuple[list, list, dict] = ([], [], {})
        problems = sink[0]
        nc = info.num_classes if info is not None else None
        extra = 0
        if m.conditional or a.auxiliary_classifier:
            key = ("model", "conditional") if m.conditional else ("model", "adversarial", "auxiliary_classifier")
            what = "a conditional gan" if m.conditional else "an ACGAN"
            if not nc:
                why = f"{what} needs class labels: use a labelled dataset (e.g. builtin:ring or digits)"
                problems.append(loaded.problem(key, why))
            elif m.conditional and len(input_shape) != 1:
                problems.append(
                    loaded.problem(
                        key,
                        (
                            f"a conditional gan appends the one-hot label to the input, which needs vector inputs, got "
                            f"{list(input_shape)}"
                        ),
                    )
                )
            else:
                extra = nc
        gen_in = m.latent_dim + (extra if (m.conditional or a.auxiliary_classifier) else 0) + code_width(a)
        gen_out = part_shapes(loaded, "generator", m.generator, (gen_in,), sink)
        if gen_out is not None and tuple(gen_out) != tuple(input_shape):
            hint = " (add a reshape layer)" if gen_out and math.prod(gen_out) == math.prod(input_shape) else ""
            problems.append(
                loaded.problem(
                    ("model", "generator", len(m.generator) - 1),
                    (
                        f"the generator outputs {list(gen_out)} but the examples are {list(input_shape)}: "
                        f"its last layer "
                        f"must produce an example" + hint
                    ),
                )
            )
        d_in = (input_shape[0] + extra,) if (extra and m.conditional) else tuple(input_shape)
        d_out = part_shapes(loaded, "discriminator", m.discriminator, d_in, sink)
        want, why = discriminator_outputs(a, extra)
        if d_out is not None and math.prod(d_out) != want:
            problems.append(
                loaded.problem(
                    ("model", "discriminator", len(m.discriminator) - 1),
                    (
                        f"the discriminator must output {why} per example, got {list(d_out)}: "
                        f"end with {{type: dense, units: {want}}}"
                    ),
                )
            )
        return sink[2], ((nc,) if nc else (1,)), problems, sink[1]

    def implied_task(self, spec, info):
        nc = info.num_classes if info is not None else None
        return None if nc else "autoencoder"  # unlabelled: keep y = x (unused)

    def check(self, loaded, input_shape, info, shapes):
        problems = []
        for i, a in enumerate(loaded.spec.data.augment):
            msg = shape_problem(a, input_shape) if input_shape is not None else None
            if msg:
                problems.append(loaded.problem(("data", "augment", i), msg))
        p, w = adversarial_problems(loaded, LOSSES.canonical(loaded.spec.train.loss.type))
        return problems + p, w

    def objective(self, ctx: BuildContext) -> GAN:
        m, t = ctx.spec.model, ctx.spec.train
        chains, frozen, regs = {}, self.frozen_layers(m), []
        for part in self.parts:
            tp = t.model_copy(update={"optimizer": getattr(t, part) or t.optimizer})
            shape = {part: ctx.params_shape[part]}  # paths as generator/..., discriminator/...
            paths = param_paths(shape)
            groups = [g for g in t.param_groups if any(fnmatch.fnmatchcase(p, g.params) for p in paths)]
            chains[part] = build_chain(tp, shape, ctx.total_steps, ctx.steps_per_epoch, frozen, groups)
            regs += kernel_regularizers(getattr(m, part), self.prefix(part))
        kind = LOSS_KIND.get(LOSSES.canonical(t.loss.type), "least_squares")
        return GAN(
            net=ctx.net,
            kind=kind,
            chains=chains,
            latent_dim=m.latent_dim,
            conditional=m.conditional,
            clip=t.gradient_clipping,
            regularizers=tuple(regs),
            augment=tuple(ctx.spec.data.augment),
            compute_dtype=jnp.bfloat16 if t.precision == "bf16" else None,
            adversarial=m.adversarial,
        )

    def encodable(self, model):
        return []
