"""The crop, pad, resize, brightness/contrast/colour-jitter and cutout augmentations on known images."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnctl.errors import SpecError
from nnctl.spec import load_text
from tests.conftest import SPECS
from tests.test_augment import IMG, apply, aug

RNG = np.random.default_rng(0)
RGB = RNG.uniform(size=(6, 6, 3)).astype(np.float32)


def shifts(x, p):
    padded = np.pad(x, ((p, p), (p, p), (0, 0)))
    h, w = x.shape[:2]
    return [padded[i : i + h, j : j + w] for i in range(2 * p + 1) for j in range(2 * p + 1)]


def test_random_crop_is_a_shift_of_the_zero_padded_image_and_varies():
    outs = apply(aug(type="random_crop", padding=1), n=32)
    cands = shifts(IMG, 1)
    assert all(any(np.allclose(o, c) for c in cands) for o in outs)
    assert len({o.tobytes() for o in outs}) > 3  # fresh positions per example


@pytest.mark.parametrize("mode", ["reflect", "replicate"])
def test_pad_modes_keep_a_constant_image_constant(mode):
    ones = np.ones((6, 6, 1), np.float32)
    np.testing.assert_allclose(apply(aug(type="random_crop", padding=2, mode=mode), ones, n=4), 1.0)
    np.testing.assert_allclose(apply(aug(type="pad", padding=2, mode=mode), ones)[0], 1.0, atol=1e-6)


def test_pad_with_zeros_shrinks_the_content_into_a_dark_border():
    out = apply(aug(type="pad", padding=1), np.ones((6, 6, 1), np.float32))[0, ..., 0]
    assert out[0, 0] < 1 and out[3, 3] == pytest.approx(1.0)


def test_centre_crop_is_the_centre_resized_back():
    out = apply(aug(type="crop", size=[3, 3], random=False))[0]
    want = jax.image.resize(jnp.asarray(IMG[1:4, 1:4]), (5, 5, 1), method="linear")
    np.testing.assert_allclose(out, np.asarray(want), atol=1e-6)
    np.testing.assert_allclose(apply(aug(type="crop", size=[5, 5]))[0], IMG, atol=1e-6)  # the whole image


def test_resize_to_the_same_size_is_the_identity_and_smaller_loses_detail():
    np.testing.assert_allclose(apply(aug(type="resize", size=[5, 5]))[0], IMG, atol=1e-6)
    small = apply(aug(type="resize", size=[2, 2]))[0]
    assert small.shape == IMG.shape and not np.allclose(small, IMG)


def test_brightness_and_contrast_formulas():
    np.testing.assert_allclose(apply(aug(type="brightness", delta=[0.5, 0.5]))[0], IMG + 0.5, atol=1e-6)
    m = IMG.mean(axis=(0, 1), keepdims=True)
    np.testing.assert_allclose(apply(aug(type="contrast", factor=[2, 2]))[0], (IMG - m) * 2 + m, atol=1e-5)


def test_color_jitter_saturation_zero_gives_the_luma_gray():
    out = apply(aug(type="color_jitter", brightness=[0, 0], contrast=[1, 1], saturation=[0, 0]), RGB)[0]
    gray = RGB @ np.array([0.299, 0.587, 0.114], np.float32)
    for c in range(3):
        np.testing.assert_allclose(out[..., c], gray, atol=1e-5)
    same = apply(aug(type="color_jitter", brightness=[0, 0], contrast=[1, 1], saturation=[1, 1]), RGB)[0]
    np.testing.assert_allclose(same, RGB, atol=1e-5)


def test_cutout_blanks_one_clipped_square():
    outs = apply(aug(type="cutout", size=2, value=-1.0), np.ones((6, 6, 1), np.float32), n=32)
    for o in outs[..., 0]:
        rows, cols = np.nonzero(o == -1.0)
        assert 1 <= len(rows) <= 4 and set(np.unique(o)) <= {1.0, -1.0}
        assert len(rows) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # one rectangle


@pytest.mark.parametrize(
    "extra,fragment",
    [
        ("{type: color_jitter}", "(color_jitter) needs RGB images [H, W, 3], got [8, 8, 1]"),
        ("{type: crop, size: [9, 4]}", "(crop) size [9, 4] is larger than the image [8, 8]"),
        ("{type: random_crop, padding: 8, mode: reflect}", "reflect padding 8 needs images larger than it"),
    ],
)
def test_spec_errors_for_impossible_settings(extra, fragment):
    text = (SPECS / "augment_digits.yaml").read_text()
    with pytest.raises(SpecError) as e:
        load_text(text, overrides=(f"data.augment=[{extra}]",))
    assert fragment in str(e.value)


def test_every_new_transform_is_accepted_by_a_spec():
    text = (SPECS / "augment_digits.yaml").read_text()
    augs = (
        "[{type: random_crop, padding: 1}, {type: crop, size: [6, 6]}, {type: pad, padding: 1, mode: replicate},"
        " {type: resize, size: [4, 4]}, {type: brightness, delta: 0.1}, {type: contrast}, {type: cutout, size: 3}]"
    )
    loaded = load_text(text, overrides=(f"data.augment={augs}",))
    assert [a.type for a in loaded.spec.data.augment][:2] == ["random_crop", "crop"]
