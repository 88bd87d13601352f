"""Data augmentation on device: `data.augment` is a list of transforms, each applied to an example with
its `probability`, with random parameters drawn from the run's RNG inside the jitted training step (no
per-step host work). Training batches only: validation, test, eval and predict see the data untouched.

Geometric transforms (flip, rotate, translate, scale, crops, pad, resize, contrast, cutout) need image-shaped
inputs [H, W] or [H, W, C]
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

    geometric: ClassVar[bool] = False  # needs [H, W] or [H, W, C] inputs
    rgb: ClassVar[bool] = False  # needs [H, W, 3] inputs

    def apply(self, x, key):  # one example (jitted, vmapped over the batch by `augment_batch`)
        raise NotImplementedError


class Flip(_Aug):
    """Mirror the image left-right (`horizontal`) and/or upside down (`vertical`)."""

    type: Literal["flip"]
    horizontal: bool = True
    vertical: bool = False
    probability: float = Field(0.5, ge=0, le=1)
    geometric: ClassVar[bool] = True

    def apply(self, x, key):
        out = jnp.flip(x, axis=1) if self.horizontal else x
        return jnp.flip(out, axis=0) if self.vertical else out


class Rotate(_Aug):
    """Rotate by an angle drawn uniformly from `degrees` ([low, high], or d for [-d, d]), counter-clockwise."""

    type: Literal["rotate"]
    degrees: SymmetricRange = 15.0
    geometric: ClassVar[bool] = True

    def apply(self, x, key):
        lo, hi = cast(list[float], self.degrees)  # validation (_range) turned a number d into [-d, d]
        th = jnp.deg2rad(jax.random.uniform(key, (), minval=lo, maxval=hi))
        c, s = jnp.cos(th), jnp.sin(th)
        # counter-clockwise on screen (rows grow downwards): sample the input at R(-theta) p
        m = jnp.stack([jnp.stack([c, s]), jnp.stack([-s, c])]).astype(x.dtype)
        return _affine(x, m, jnp.zeros(2, x.dtype))


class Translate(_Aug):
    """Shift by (dy, dx) pixels, each drawn uniformly from `pixels` ([low, high], or p for [-p, p])."""

    type: Literal["translate"]
    pixels: SymmetricRange = 1.0
    geometric: ClassVar[bool] = True

    def apply(self, x, key):
        lo, hi = cast(list[float], self.pixels)  # validation (_range) turned a number p into [-p, p]
        d = jax.random.uniform(key, (2,), minval=lo, maxval=hi).astype(x.dtype)
        return _affine(x, jnp.eye(2, dtype=x.dtype), -d)


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

    def apply(self, x, key):
        lo, hi = self.factor
        f = jax.random.uniform(key, (), minval=lo, maxval=hi).astype(x.dtype)
        return _affine(x, jnp.eye(2, dtype=x.dtype) / f, jnp.zeros(2, x.dtype))


class SaltAndPepperAug(_Aug):
    """Each value becomes `low` or `high` (equally likely) with probability `rate`."""

    type: Literal["salt_and_pepper"]
    rate: float = Field(0.05, gt=0, lt=1)
    low: float = 0.0
    high: float = 1.0

    def apply(self, x, key):
        k1, k2 = jax.random.split(key)
        hit = jax.random.uniform(k1, x.shape) < self.rate
        salt = jax.random.bernoulli(k2, 0.5, x.shape)
        return jnp.where(hit, jnp.where(salt, self.high, self.low), x).astype(x.dtype)


class GaussianNoiseAug(_Aug):
    """Add N(0, stddev^2) noise to every value."""

    type: Literal["gaussian_noise"]
    stddev: float = Field(0.1, gt=0)

    def apply(self, x, key):
        return x + self.stddev * jax.random.normal(key, x.shape, x.dtype)


PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge"}
PadMode = Literal["zeros", "reflect", "replicate"]


def _pad_img(x, p: int, mode: str):
    return jnp.pad(x, [(p, p), (p, p)] + [(0, 0)] * (x.ndim - 2), mode=PAD_MODE[mode])


def _resize_hw(x, h: int, w: int):
    return jax.image.resize(x, (h, w, *x.shape[2:]), method="linear")


def _window(x, key, h: int, w: int, random: bool):
    """An h x w window of x: at a uniformly random position, or centred."""
    if random:
        ky, kx = jax.random.split(key)
        oy = jax.random.randint(ky, (), 0, x.shape[0] - h + 1)
        ox = jax.random.randint(kx, (), 0, x.shape[1] - w + 1)
    else:
        oy, ox = (x.shape[0] - h) // 2, (x.shape[1] - w) // 2
    start = (oy, ox) + (0,) * (x.ndim - 2)
    return jax.lax.dynamic_slice(x, start, (h, w, *x.shape[2:]))


def _draw(key, r, dtype):  # uniform in r = [low, high]
    return jax.random.uniform(key, (), minval=r[0], maxval=r[1]).astype(dtype)


class RandomCrop(_Aug):
    """Pad `padding` pixels on every side (zeros, reflect or replicate), then crop the original size at a
    random position: shifts of up to `padding` pixels (the usual CIFAR augmentation)."""

    type: Literal["random_crop"]
    padding: int = Field(2, gt=0)
    mode: PadMode = "zeros"
    geometric: ClassVar[bool] = True

    def apply(self, x, key):
        return _window(_pad_img(x, self.padding, self.mode), key, x.shape[0], x.shape[1], True)


class Crop(_Aug):
    """Crop a `size` [h, w] window (random position with `random: true`, else the centre) and resize it back
    to the image's size (bilinear): a zoom into part of the image."""

    type: Literal["crop"]
    size: list[int] = Field(..., min_length=2, max_length=2)
    random: bool = True
    geometric: ClassVar[bool] = True

    def apply(self, x, key):
        return _resize_hw(_window(x, key, self.size[0], self.size[1], self.random), x.shape[0], x.shape[1])


class Pad(_Aug):
    """Pad `padding` pixels on every side (zeros, reflect or replicate) and resize back to the image's size:
    the content shrinks inside a border."""

    type: Literal["pad"]
    padding: int = Field(2, gt=0)
    mode: PadMode = "zeros"
    geometric: ClassVar[bool] = True

    def apply(self, x, key):
        return _resize_hw(_pad_img(x, self.padding, self.mode), x.shape[0], x.shape[1])


class Resize(_Aug):
    """Resize to `size` [h, w] and back (bilinear): the detail another resolution keeps; same output size."""

    type: Literal["resize"]
    size: list[int] = Field(..., min_length=2, max_length=2)
    geometric: ClassVar[bool] = True

    def apply(self, x, key):
        return _resize_hw(_resize_hw(x, self.size[0], self.size[1]), x.shape[0], x.shape[1])


class Brightness(_Aug):
    """Add a value drawn uniformly from `delta` ([low, high], or d for [-d, d]) to every pixel."""

    type: Literal["brightness"]
    delta: SymmetricRange = 0.1

    def apply(self, x, key):
        return x + _draw(key, self.delta, x.dtype)


class Contrast(_Aug):
    """(x - m) * f + m with m each channel's mean over the image and f drawn uniformly from `factor`."""

    type: Literal["contrast"]
    factor: list[float] = Field(default_factory=lambda: [0.8, 1.2], min_length=2, max_length=2)
    geometric: ClassVar[bool] = True

    def apply(self, x, key):
        m = jnp.mean(x, axis=(0, 1), keepdims=True)
        return (x - m) * _draw(key, self.factor, x.dtype) + m


class ColorJitter(_Aug):
    """Brightness (+b), contrast (x f about the mean) and saturation (gray + s (x - gray), gray the pixel's
    luma 0.299 R + 0.587 G + 0.114 B) with b, f, s drawn uniformly from their ranges, in that order; RGB
    images [H, W, 3]."""

    type: Literal["color_jitter"]
    brightness: SymmetricRange = 0.1
    contrast: list[float] = Field(default_factory=lambda: [0.8, 1.2], min_length=2, max_length=2)
    saturation: list[float] = Field(default_factory=lambda: [0.8, 1.2], min_length=2, max_length=2)
    geometric: ClassVar[bool] = True
    rgb: ClassVar[bool] = True

    def apply(self, x, key):
        kb, kc, ks = jax.random.split(key, 3)
        x = x + _draw(kb, self.brightness, x.dtype)
        m = jnp.mean(x, axis=(0, 1), keepdims=True)
        x = (x - m) * _draw(kc, self.contrast, x.dtype) + m
        gray = jnp.tensordot(x, jnp.asarray([0.299, 0.587, 0.114], x.dtype), axes=1)[..., None]
        return gray + _draw(ks, self.saturation, x.dtype) * (x - gray)


class Cutout(_Aug):
    """Set a `size` [h, w] square (or an integer for h = w) centred at a uniformly random pixel to `value`;
    the part outside the image is cut off (DeVries and Taylor's cutout)."""

    type: Literal["cutout"]
    size: Union[int, list[int]] = 4
    value: float = 0.0
    geometric: ClassVar[bool] = True

    def apply(self, x, key):
        h, w = (self.size, self.size) if isinstance(self.size, int) else self.size
        ky, kx = jax.random.split(key)
        cy, cx = jax.random.randint(ky, (), 0, x.shape[0]), jax.random.randint(kx, (), 0, x.shape[1])
        rows, cols = jnp.arange(x.shape[0])[:, None], jnp.arange(x.shape[1])[None, :]
        hole = (rows >= cy - h // 2) & (rows < cy - h // 2 + h) & (cols >= cx - w // 2) & (cols < cx - w // 2 + w)
        hole = hole.reshape(hole.shape + (1,) * (x.ndim - 2))
        return jnp.where(hole, jnp.asarray(self.value, x.dtype), x)


AugmentRef = Annotated[
    Union[Flip, Rotate, Translate, Scale, SaltAndPepperAug, GaussianNoiseAug, RandomCrop, Crop, Pad, Resize]
    | Union[Brightness, Contrast, ColorJitter, Cutout],
    Field(discriminator="type"),
]


def shape_problem(aug, input_shape) -> str | None:
    if aug.geometric and len(input_shape) not in (2, 3):
        return (
            f"({aug.type}) needs image-shaped inputs [H, W] or [H, W, C], got {list(input_shape)}: set "
            f"model.input_shape (e.g. [8, 8, 1] for digits) and start the model with a flatten layer"
        )
    if aug.rgb and (len(input_shape) != 3 or input_shape[-1] != 3):
        return f"({aug.type}) needs RGB images [H, W, 3], got {list(input_shape)}"
    size = getattr(aug, "size", None)
    if isinstance(size, list) and aug.type == "crop" and (size[0] > input_shape[0] or size[1] > input_shape[1]):
        return f"(crop) size {size} is larger than the image {list(input_shape[:2])}"
    if aug.type in ("random_crop", "pad") and aug.mode == "reflect" and aug.padding >= min(input_shape[:2]):
        return f"({aug.type}) reflect padding {aug.padding} needs images larger than it, got {list(input_shape[:2])}"
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


def transform_one(aug, x, key):  # always; the probability is handled by `augment_batch`
    return aug.apply(x, key)


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
