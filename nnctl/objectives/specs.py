"""Spec types of the learning setups beyond plain supervised training (no JAX here: the spec loader
imports this module).

* `train.regularizers`: activity penalties on a named layer's output (`activity_l1`, `activity_kl`,
  `contractive`), each logged separately in metrics.jsonl.
* `data.corruption`: the denoising autoencoder's input noise (training only, fresh every step).
* `train.param_groups`: per-glob learning-rate scales (transfer learning: smaller steps for early layers).
* `train.clip`: per-glob gradient and weight clip ranges.
* `model.adversarial`: a gan's objective beyond `train.loss` (the notes' min-max generator loss, WGAN weight
  clipping, WGAN-GP, critic steps, ACGAN's auxiliary classifier, InfoGAN's latent codes).
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import Field, model_validator

from nnctl.registry import Strict


class ActivityL1(Strict):
    """weight * sum_j |h_j| of the layer's output h, averaged over the examples (sparse autoencoder)."""

    type: Literal["activity_l1"]
    layer: str = Field(..., description="name of the layer whose output is penalised")
    weight: float = Field(1e-3, ge=0)


class ActivityKL(Strict):
    """weight * sum_j KL(target || mean activation of unit j over the batch) (Bernoulli KL; sigmoid units)."""

    type: Literal["activity_kl"]
    layer: str
    target: float = Field(0.05, gt=0, lt=1, description="desired mean activation of each unit (rho)")
    weight: float = Field(1.0, ge=0)


class Contractive(Strict):
    """weight * ||dh/dx||_F^2, the squared Frobenius norm of the layer's Jacobian w.r.t. the input."""

    type: Literal["contractive"]
    layer: str
    weight: float = Field(1e-3, ge=0)


RegularizerRef = Annotated[Union[ActivityL1, ActivityKL, Contractive], Field(discriminator="type")]


class GaussianNoise(Strict):
    """x + N(0, stddev^2)."""

    type: Literal["gaussian_noise"]
    stddev: float = Field(0.1, gt=0)


class Masking(Strict):
    """Each input value set to `value` (default 0) with probability `rate`."""

    type: Literal["masking"]
    rate: float = Field(0.2, gt=0, lt=1)
    value: float = 0.0


class SaltAndPepper(Strict):
    """Each input value set to `low` or `high` (equally likely) with probability `rate`."""

    type: Literal["salt_and_pepper"]
    rate: float = Field(0.1, gt=0, lt=1)
    low: float = 0.0
    high: float = 1.0


CorruptionRef = Annotated[Union[GaussianNoise, Masking, SaltAndPepper], Field(discriminator="type")]


class ParamGroup(Strict):
    """Parameters matching `params` (a glob over paths as `inspect params` prints them) get
    learning rate * `learning_rate_scale`."""

    params: str
    learning_rate_scale: float = Field(..., ge=0)


class ClipRange(Strict):
    """Per-layer clip ranges for the parameters matching `params` (a glob over paths as `inspect params` prints
    them; each parameter takes the first entry that matches it): the gradient clipped elementwise to
    [-grad_value, grad_value], then scaled so that the joint L2 norm of the entry's arrays is at most
    `grad_norm`; after each update the weights are clipped to [weight_min, weight_max] (WGAN's weight
    clipping: weight_min: -0.01, weight_max: 0.01)."""

    params: str
    grad_value: Optional[float] = Field(None, gt=0, description="clip each gradient value to [-v, v]")
    grad_norm: Optional[float] = Field(
        None, gt=0, description="scale the gradients of the matched arrays so their joint L2 norm is at most this"
    )
    weight_min: Optional[float] = Field(None, description="after each update, weights below this are set to it")
    weight_max: Optional[float] = Field(None, description="after each update, weights above this are set to it")

    @model_validator(mode="after")
    def _some(self) -> ClipRange:
        if all(v is None for v in (self.grad_value, self.grad_norm, self.weight_min, self.weight_max)):
            raise ValueError("give at least one of grad_value, grad_norm, weight_min, weight_max")
        if self.weight_min is not None and self.weight_max is not None and self.weight_min >= self.weight_max:
            raise ValueError(f"weight_min ({self.weight_min}) must be below weight_max ({self.weight_max})")
        return self


class InfoCodes(Strict):
    """InfoGAN's latent codes c, appended to the generator's noise; the discriminator's extra outputs (the Q
    head) predict them from generated examples and both networks minimise weight * L_I."""

    categorical: int = Field(default=0, ge=0, le=1000, description="categories of one categorical code (0: none)")
    continuous: int = Field(default=0, ge=0, le=100, description="continuous codes, uniform on [-1, 1]")
    weight: float = Field(default=1.0, ge=0, description="lambda of the mutual-information term L_I")
    continuous_weight: float = Field(
        default=1.0, ge=0, description="factor of the continuous codes' 1/2 squared error inside L_I"
    )


class Adversarial(Strict):
    """How a gan's two networks play (model.adversarial); train.loss names the family: bce (the notes'
    V(D, G)), least_squares (LSGAN) or wasserstein (WGAN: a linear critic, no sigmoid)."""

    generator_loss: Literal["non_saturating", "minimax"] = Field(
        default="non_saturating",
        description="bce only: non_saturating, G minimises -log D(G(z)); minimax, the notes' min-max form, G "
        "minimises log(1 - D(G(z))) (saturates when D rejects G's examples)",
    )
    n_critic: int = Field(default=1, ge=1, le=100, description="discriminator (critic) steps per generator step")
    clip_value: Optional[float] = Field(
        default=None, gt=0, description="wasserstein: clip every critic weight to [-c, c] after each critic step (WGAN)"
    )
    gradient_penalty: Optional[float] = Field(
        default=None,
        ge=0,
        description="wasserstein: lambda of lambda * (||grad D(x_hat)||_2 - 1)^2 on x_hat = e x + (1 - e) G(z), "
        "e ~ U[0, 1] per example (WGAN-GP)",
    )
    auxiliary_classifier: bool = Field(
        default=False,
        description="ACGAN: the generator gets the one-hot class label, the discriminator outputs 1 + classes "
        "values (real/fake, class logits) and both add the class cross-entropy",
    )
    auxiliary_weight: float = Field(default=1.0, ge=0, description="ACGAN: weight of the class cross-entropy")
    info_codes: Optional[InfoCodes] = Field(
        default=None, description="InfoGAN: latent codes and the mutual-information term"
    )


def regularizer_keys(regs) -> list[str]:
    """The metrics.jsonl name of each regularizer: its type, or type/layer when a type repeats."""
    types = [r.type for r in regs]
    return [r.type if types.count(r.type) == 1 else f"{r.type}/{r.layer}" for r in regs]


__all__ = [
    "Adversarial",
    "InfoCodes",
    "RegularizerRef",
    "CorruptionRef",
    "ParamGroup",
    "ClipRange",
    "Optional",
    "regularizer_keys",
]
