"""Augmentation: each transform's effect on a known image, applied on device with its probability, and
only to training batches."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pydantic import TypeAdapter

from nnctl.app import build
from nnctl.augment import AugmentRef, augment_batch, corrupt
from nnctl.data.prepare import prepare
from nnctl.errors import SpecError
from nnctl.objectives.specs import CorruptionRef
from nnctl.spec import load_spec, load_text
from tests.conftest import SPECS

IMG = np.zeros((5, 5, 1), np.float32)
IMG[0, 1, 0], IMG[1, 3, 0], IMG[2, 2, 0] = 1.0, 2.0, 3.0


def aug(**kw):
    return TypeAdapter(AugmentRef).validate_python(kw)


def apply(a, x=IMG, n=1, seed=0):
    fn = jax.jit(lambda xs, k: augment_batch((a,), xs, k))
    return np.asarray(fn(jnp.asarray(np.stack([x] * n)), jax.random.key(seed)))


@pytest.mark.parametrize(
    "spec,expected",
    [
        ({"type": "flip", "probability": 1.0}, IMG[:, ::-1]),
        ({"type": "flip", "horizontal": False, "vertical": True, "probability": 1.0}, IMG[::-1]),
        ({"type": "rotate", "degrees": [90, 90]}, np.rot90(IMG)),  # counter-clockwise
        ({"type": "rotate", "degrees": [180, 180]}, IMG[::-1, ::-1]),
        ({"type": "translate", "pixels": [1, 1]}, np.pad(IMG, ((1, 0), (1, 0), (0, 0)))[:5, :5]),
        ({"type": "scale", "factor": [1, 1]}, IMG),
    ],
)
def test_geometric_transforms_on_a_known_image(spec, expected):
    np.testing.assert_allclose(apply(aug(**spec))[0], expected, atol=1e-5)


def test_scale_zooms_about_the_centre():
    out = apply(aug(type="scale", factor=[2, 2]))[0, ..., 0]
    assert out[2, 2] == pytest.approx(3.0)  # the centre stays
    assert out[0, 2] == pytest.approx(IMG[1, 2, 0] * 1 + 0)  # row 0 samples row 1 (centre 2 - 2/2)


def test_noise_transforms():
    x = np.full((16, 16, 1), 0.5, np.float32)
    sp = apply(aug(type="salt_and_pepper", rate=0.2, probability=1.0), x, n=8)
    changed = sp != 0.5
    assert 0.15 < changed.mean() < 0.25 and set(np.unique(sp[changed])) <= {0.0, 1.0}
    gn = apply(aug(type="gaussian_noise", stddev=0.1, probability=1.0), x, n=8)
    assert (gn - 0.5).std() == pytest.approx(0.1, rel=0.1)


def test_probability_and_fresh_draws():
    x = np.ones((4, 4, 1), np.float32)
    out = apply(aug(type="gaussian_noise", stddev=1.0, probability=0.5), x, n=400)
    touched = np.any(out != 1.0, axis=(1, 2, 3))
    assert 0.4 < touched.mean() < 0.6
    a, b = apply(aug(type="rotate"), IMG, seed=1), apply(aug(type="rotate"), IMG, seed=2)
    assert not np.allclose(a, b)  # a new key, new draws


def test_corruptions():
    x = jnp.full((4, 100), 0.5)
    k = jax.random.key(0)
    c = TypeAdapter(CorruptionRef).validate_python
    m = np.asarray(jax.jit(lambda x, k: corrupt(c({"type": "masking", "rate": 0.3}), x, k))(x, k))
    assert 0.2 < (m == 0).mean() < 0.4
    g = np.asarray(jax.jit(lambda x, k: corrupt(c({"type": "gaussian_noise", "stddev": 0.2}), x, k))(x, k))
    assert (g - 0.5).std() == pytest.approx(0.2, rel=0.15)


def test_training_only_evaluation_untouched():
    loaded = load_spec(SPECS / "augment_digits.yaml")
    data = prepare(loaded.spec, loaded.analysis, loaded.base_dir)
    obj = build(loaded, data).obj
    state = obj.init(jax.random.key(0), tuple(data.input_shape))
    x, y = jnp.asarray(data.x_val[:32]), jnp.asarray(data.y_val[:32])
    mask = jnp.ones(32)
    # the training step sees perturbed inputs ...
    assert not np.allclose(np.asarray(jax.jit(obj.perturb)(x, jax.random.key(1))), np.asarray(x))
    # ... evaluation sees exactly the data: the same sums as the plain supervised objective
    import dataclasses

    from nnctl.objectives.supervised import Supervised

    plain = Supervised(**{f.name: getattr(obj, f.name) for f in dataclasses.fields(Supervised)})
    z = obj.zero_sums((10,), y.dtype)
    a = jax.jit(obj.eval_step)(state, z, x, y, mask)
    b = jax.jit(plain.eval_step)(state, plain.zero_sums((10,), y.dtype), x, y, mask)
    assert float(a["loss"]) == float(b["loss"])


def test_trains_shrunk(tmp_path):
    from nnctl.app import train_run

    res = train_run(str(SPECS / "augment_digits.yaml"), str(tmp_path / "aug"), ("train.epochs=4",))
    assert res.summary["final"]["val/accuracy"] > 0.7


def test_geometric_needs_images():
    with pytest.raises(SpecError) as e:
        load_text(
            (SPECS / "augment_digits.yaml").read_text(),
            overrides=("model.input_shape=null", "model.layers[0].type=activation"),
        )
    assert "(rotate) needs image-shaped inputs" in str(e.value)
