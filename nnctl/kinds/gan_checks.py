"""Spec checks of a gan's `model.adversarial` (which losses its keys go with, the discriminator's output width,
the generator's code width) and the loss families every adversarial kind (gan, cyclegan) reads. Not a kind
itself (it registers nothing)."""

from __future__ import annotations

from typing import Any

from nnctl.objectives.specs import Adversarial

# the registered loss (canonical name) -> the adversarial loss family of nnctl.objectives.gan_losses
LOSS_KIND = {
    "binary_crossentropy": "bce",
    "least_squares": "least_squares",
    "mse": "least_squares",
    "wasserstein": "wasserstein",
}


def code_width(a: Adversarial) -> int:
    """InfoGAN's codes appended to the generator's noise."""
    return 0 if a.info_codes is None else a.info_codes.categorical + a.info_codes.continuous


def discriminator_outputs(a: Adversarial, classes: int) -> tuple[int, str]:
    """(values the discriminator must output per example, how to say it)."""
    if a.auxiliary_classifier:
        return 1 + classes, f"1 + {classes} values (a real/fake logit, then the {classes} class logits of ACGAN)"
    if a.info_codes is not None:
        n = code_width(a)
        return 1 + n, f"1 + {n} values (a real/fake logit, then InfoGAN's Q head: the codes' predictions)"
    return 1, "one value (a real/fake logit)"


def adversarial_problems(loaded: Any, loss: str, where: tuple = ("model", "adversarial")) -> tuple[list, list]:
    """(problems, warnings) of model.adversarial against train.loss (canonical name) and the discriminator."""
    m = loaded.spec.model
    a = m.adversarial
    if a is None:
        if loss == "wasserstein":
            return [], [_unconstrained(loaded, ("train", "loss"))]
        return [], []
    problems, warnings = [], []
    kind = LOSS_KIND.get(loss)
    if a.generator_loss == "minimax" and kind != "bce":
        problems.append(
            loaded.problem(
                (*where, "generator_loss"),
                f"generator_loss: minimax is the notes' log(1 - D(G(z))) of the bce game; train.loss is {loss}: "
                "use loss: bce, or remove generator_loss",
            )
        )
    for key, what in (("clip_value", "WGAN's weight clipping"), ("gradient_penalty", "WGAN-GP's gradient penalty")):
        if getattr(a, key) is not None and kind != "wasserstein":
            problems.append(
                loaded.problem(
                    (*where, key),
                    f"{key} is {what}, which constrains a Wasserstein critic: set train.loss: wasserstein, or "
                    f"remove {key}",
                )
            )
    if kind == "wasserstein" and a.clip_value is None and a.gradient_penalty is None:
        warnings.append(_unconstrained(loaded, (*where,)))
    if a.gradient_penalty is not None and any(layer.type == "batch_norm" for layer in m.discriminator or []):
        warnings.append(
            loaded.problem(
                (*where, "gradient_penalty"),
                "batch_norm in the critic mixes the examples of a batch, so each example's gradient is no longer "
                "its own (WGAN-GP's paper uses layer_norm or none)",
            )
        )
    if a.auxiliary_classifier and a.info_codes is not None:
        problems.append(
            loaded.problem(
                (*where, "info_codes"), "use either auxiliary_classifier (ACGAN) or info_codes (InfoGAN), not both"
            )
        )
    if a.auxiliary_classifier and getattr(m, "conditional", False):
        problems.append(
            loaded.problem(
                (*where, "auxiliary_classifier"),
                "an ACGAN's generator already gets the label and its discriminator predicts it instead of reading "
                "it: remove model.conditional",
            )
        )
    if a.info_codes is not None and not code_width(a):
        problems.append(
            loaded.problem((*where, "info_codes"), "info_codes needs categorical > 0 or continuous > 0 codes")
        )
    return problems, warnings


def _unconstrained(loaded: Any, where: tuple) -> Any:
    return loaded.problem(
        where,
        "a wasserstein critic needs a Lipschitz constraint, else its scores grow without bound: set "
        "model.adversarial.clip_value (WGAN, e.g. 0.01) or gradient_penalty (WGAN-GP, e.g. 10)",
    )
