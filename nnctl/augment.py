"""Data augmentation on device: `data.augment` is a list of transforms, each applied to an example with
its `probability`, with random parameters drawn from the run's RNG inside the jitted training step (no
per-step host work). Training batches only: validation, test, eval and predict see the data untouched.

Geometric transforms (flip, rotate, translate, scale) need image-shaped inputs [H, W] or [H, W, C]
(channels last; e.g. digits with `model.input_shape: [8, 8, 1]` and a flatten layer first). Resampling is
bilinear; pixels from outside the image are 0.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Union, cast

import jax
import jax.numpy as jnp
from jax.scipy.ndimage import map_coordinates
from pydantic import AfterValidator, Field, field_validator

from nnctl.registry import Strict


def _range(v, symmetric: bool = True):
    if isinstance(v, (int, float)):
        return [-float(v), float(v)] if symmetric else [float(v), float(v)]
    if len(v) != 2 or v[0] > v[1]:
        raise ValueError(f"a range is a number or [low, high] with low <= high, got {v}")
    return [float(v[0]), float(v[1])]


# d means [-d, d]; [low, high] as given (validated by _range)
SymmetricRange = Annotated[Union[float, list[float]], AfterValidator(_range)]


class _Aug(Strict):
    probability: float = Field(1.0, ge=0, le=1, description="chance that an example gets this transform")

    geometric: ClassVar[bool] = False


class Flip(_Aug):
    """Mirror the image left-right (`horizontal`) and/or upside down (`vertical`)."""

    type: Literal["flip"]
    horizontal: bool = True
    vertical: bool = False
    probability: float = Field(0.5, ge=0, le=1)
    geometric: ClassVar[bool] = True


class Rotate(_Aug):
    """Rotate by an angle drawn uniformly from `degrees` ([low, high], or d for [-d, d]), counter-clockwise."""

    type: Literal["rotate"]
    degrees: SymmetricRange = 15.0
    geometric: ClassVar[bool] = True


class Translate(_Aug):
    """Shift by (dy, dx) pixels, each drawn uniformly from `pixels` ([low, high], or p for [-p, p])."""

    type: Literal["translate"]
    pixels: SymmetricRange = 1.0
    geometric: ClassVar[bool] = True


class Scale(_Aug):
    """Zoom about the centre by a factor drawn uniformly from `factor` ([low, high])."""

    type: Literal["scale"]
    factor: list[float] = Field(default_factory=lambda: [0.9, 1.1])
    geometric: ClassVar[bool] = True

    @field_validator("factor")
    @classmethod
    def _f(cls, v):
        v = _range(v)
        if v[0] <= 0:
            raise ValueError(f"scale factors must be positive, got {v}")
        return v


class SaltAndPepperAug(_Aug):
    """Each value becomes `low` or `high` (equally likely) with probability `rate`."""

    type: Literal["salt_and_pepper"]
    rate: float = Field(0.05, gt=0, lt=1)
    low: float = 0.0
    high: float = 1.0


class GaussianNoiseAug(_Aug):
    """Add N(0, stddev^2) noise to every value."""

    type: Literal["gaussian_noise"]
    stddev: float = Field(0.1, gt=0)


AugmentRef = Annotated[
    Union[Flip, Rotate, Translate, Scale, SaltAndPepperAug, GaussianNoiseAug], Field(discriminator="type")
]


def shape_problem(aug, input_shape) -> str | None:
    if aug.geometric and len(input_shape) not in (2, 3):
        return (
            f"({aug.type}) needs image-shaped inputs [H, W] or [H, W, C], got {list(input_shape)}: set "
            f"model.input_shape (e.g. [8, 8, 1] for digits) and start the model with a flatten layer"
        )
    return None


# ------------------------------------------------------------------------------------------ on device


def _affine(img, m, t):
    """Output pixel p (centred coordinates) samples the input at m @ p + t (bilinear, zeros outside)."""

    h, w = img.shape[0], img.shape[1]
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    rr, cc = jnp.meshgrid(jnp.arange(h, dtype=img.dtype), jnp.arange(w, dtype=img.dtype), indexing="ij")
    p = jnp.stack([rr - cy, cc - cx])
    src = jnp.einsum("ij,jhw->ihw", m, p) + t[:, None, None]
    coords = [src[0] + cy, src[1] + cx]
    if img.ndim == 2:
        return map_coordinates(img, coords, order=1, mode="constant", cval=0.0)
    return jax.vmap(lambda ch: map_coordinates(ch, coords, order=1, mode="constant", cval=0.0), in_axes=2, out_axes=2)(
        img
    )


def transform_one(aug, x, key):
    """One transform applied to one example (always; the probability is handled by `augment_batch`)."""

    if isinstance(aug, Flip):
        out = x
        if aug.horizontal:
            out = jnp.flip(out, axis=1)
        if aug.vertical:
            out = jnp.flip(out, axis=0)
        return out
    if isinstance(aug, Rotate):
        lo, hi = cast(list[float], aug.degrees)  # validation (_range) turned a number d into [-d, d]
        th = jnp.deg2rad(jax.random.uniform(key, (), minval=lo, maxval=hi))
        c, s = jnp.cos(th), jnp.sin(th)
        # counter-clockwise on screen (rows grow downwards): sample the input at R(-theta) p
        m = jnp.stack([jnp.stack([c, s]), jnp.stack([-s, c])]).astype(x.dtype)
        return _affine(x, m, jnp.zeros(2, x.dtype))
    if isinstance(aug, Translate):
        lo, hi = cast(list[float], aug.pixels)  # validation (_range) turned a number p into [-p, p]
        d = jax.random.uniform(key, (2,), minval=lo, maxval=hi).astype(x.dtype)
        return _affine(x, jnp.eye(2, dtype=x.dtype), -d)
    if isinstance(aug, Scale):
        lo, hi = aug.factor
        f = jax.random.uniform(key, (), minval=lo, maxval=hi).astype(x.dtype)
        return _affine(x, jnp.eye(2, dtype=x.dtype) / f, jnp.zeros(2, x.dtype))
    if isinstance(aug, SaltAndPepperAug):
        k1, k2 = jax.random.split(key)
        hit = jax.random.uniform(k1, x.shape) < aug.rate
        salt = jax.random.bernoulli(k2, 0.5, x.shape)
        return jnp.where(hit, jnp.where(salt, aug.high, aug.low), x).astype(x.dtype)
    if isinstance(aug, GaussianNoiseAug):
        return x + aug.stddev * jax.random.normal(key, x.shape, x.dtype)
    raise TypeError(f"unknown augmentation {aug!r}")


def augment_batch(augs, x, key):
    """Apply the transforms in order to every example of a batch, each with its probability."""

    if not augs:
        return x

    def one(xi, k):
        for i, aug in enumerate(augs):
            kp, ka = jax.random.split(jax.random.fold_in(k, i))
            use = jax.random.uniform(kp) < aug.probability
            xi = jnp.where(use, transform_one(aug, xi, ka), xi)
        return xi

    keys = jax.random.split(key, x.shape[0])
    return jax.vmap(one)(x, keys)


def corrupt(c, x, key):
    """The denoising autoencoder's input corruption (`data.corruption`), fresh for every batch."""

    if c is None:
        return x
    if c.type == "gaussian_noise":
        return x + c.stddev * jax.random.normal(key, x.shape, x.dtype)
    if c.type == "masking":
        return jnp.where(jax.random.uniform(key, x.shape) < c.rate, jnp.asarray(c.value, x.dtype), x)
    if c.type == "salt_and_pepper":
        k1, k2 = jax.random.split(key)
        hit = jax.random.uniform(k1, x.shape) < c.rate
        return jnp.where(hit, jnp.where(jax.random.bernoulli(k2, 0.5, x.shape), c.high, c.low), x).astype(x.dtype)
    raise TypeError(f"unknown corruption {c!r}")
