"""`train.clip`: per-layer gradient and weight clip ranges (golden on a one-layer model, validation, bounds)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import serialization

from nnctl.app import train_run
from nnctl.chain import build_chain
from nnctl.errors import SpecError
from nnctl.objectives.specs import ClipRange
from nnctl.spec import load_spec, load_text
from tests.conftest import SPECS

ONE_LAYER = """
name: clip-golden
data: {source: inline, x: [[1.0, 2.0]], y: [[0.0, 0.0]], task: regression, shuffle: false}
model:
  layers:
    - type: dense
      units: 2
      kernel_init: {type: values, values: [[1.0, -1.0], [0.5, 2.0]]}
      bias_init: zeros
train:
  loss: mse
  optimizer: {type: sgd, learning_rate: 0.1}
  batch_size: full
  epochs: 1
  clip:
    - {params: "dense_0/kernel", grad_value: 2.5, weight_min: -1.0, weight_max: 1.5}
    - {params: "dense_0/*", grad_norm: 1.0}
"""


def test_one_step_equals_hand_computation(tmp_path):
    spec = tmp_path / "clip.yaml"
    spec.write_text(ONE_LAYER)
    res = train_run(str(spec), out=str(tmp_path / "run"))
    p = serialization.msgpack_restore((tmp_path / "run" / "weights.msgpack").read_bytes())["params"]["dense_0"]
    # o = x W = [2, 3]; mse = mean((o - 0)^2) = 6.5; dL/do = o = [2, 3]
    # dL/dW = x^T dL/do = [[2, 3], [4, 6]] -> clipped to 2.5: [[2, 2.5], [2.5, 2.5]]
    # W - 0.1 g = [[0.8, -1.25], [0.25, 1.75]] -> clipped to [-1, 1.5]: [[0.8, -1.0], [0.25, 1.5]]
    np.testing.assert_allclose(p["kernel"], [[0.8, -1.0], [0.25, 1.5]], atol=1e-7)
    # the bias takes the second entry: dL/db = [2, 3], norm sqrt(13) -> [2, 3] / sqrt(13); b = -0.1 * that
    np.testing.assert_allclose(p["bias"], -0.1 * np.array([2.0, 3.0]) / np.sqrt(13.0), atol=1e-7)
    assert res.records[0]["train/loss"] == pytest.approx(6.5)


def _train(*entries: dict, freeze: tuple = (), lr: float = 1.0):
    t = load_text(ONE_LAYER).spec.train
    return t.model_copy(
        update={
            "clip": [ClipRange(**e) for e in entries],
            "freeze": list(freeze),
            "optimizer": t.optimizer.model_copy(update={"learning_rate": lr}),
        }
    )


def test_chain_description_names_the_clip_ranges():
    t = load_text(ONE_LAYER).spec.train
    params = {"dense_0": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}}
    assert build_chain(t, params, 1, 1, ()).description.startswith("clip_ranges(2) -> sgd")


def test_norm_clip_is_joint_over_the_matched_arrays():
    params = {"a": {"kernel": jnp.ones((2,))}, "b": {"kernel": jnp.ones((2,))}, "c": {"kernel": jnp.ones((2,))}}
    t = _train({"params": "[ab]/*", "grad_norm": 1.0})
    chain = build_chain(t, params, 1, 1, ())
    grads = {
        "a": {"kernel": jnp.array([3.0, 0.0])},
        "b": {"kernel": jnp.array([0.0, 4.0])},
        "c": {"kernel": jnp.array([3.0, 4.0])},
    }
    upd, _ = chain.tx.update(grads, chain.tx.init(params), params)
    np.testing.assert_allclose(upd["a"]["kernel"], [-0.6, 0.0], atol=1e-7)  # joint norm of a and b is 5
    np.testing.assert_allclose(upd["b"]["kernel"], [0.0, -0.8], atol=1e-7)
    np.testing.assert_allclose(upd["c"]["kernel"], [-3.0, -4.0])  # unmatched: untouched


def test_weight_clip_holds_exactly_after_every_update():
    key = jax.random.key(0)
    params = {"d": {"kernel": jax.random.normal(key, (4000,)) * 100.0}}
    t = _train({"params": "*", "weight_min": -0.01, "weight_max": 0.01})
    chain = build_chain(t, params, 1, 1, ())
    state = chain.tx.init(params)
    for i in range(3):
        g = {"d": {"kernel": jax.random.normal(jax.random.fold_in(key, i + 1), (4000,)) * 10.0 ** (i - 1)}}
        upd, state = chain.tx.update(g, state, params)
        params = jax.jit(optax.apply_updates)(params, upd)
        w = np.asarray(params["d"]["kernel"])
        assert w.min() >= np.float32(-0.01) and w.max() <= np.float32(0.01)


def test_frozen_parameters_are_not_moved_by_the_weight_clip():
    params = {"d": {"kernel": jnp.full((3,), 5.0)}}
    t = _train({"params": "*", "weight_min": -1.0, "weight_max": 1.0}, freeze=("*",))
    chain = build_chain(t, params, 1, 1, ())
    upd, _ = chain.tx.update({"d": {"kernel": jnp.ones(3)}}, chain.tx.init(params), params)
    np.testing.assert_array_equal(upd["d"]["kernel"], 0.0)


@pytest.mark.parametrize(
    ("entry", "key", "words"),
    [
        ('{params: "dense_9/*", grad_value: 1.0}', "train.clip[0].params", "matches no parameter"),
        ('{params: "*", weight_min: 1.0, weight_max: -1.0}', "train.clip[0]", "must be below"),
        ('{params: "*"}', "train.clip[0]", "at least one of"),
        ('{params: "*", grad_value: -1}', "train.clip[0].grad_value", "greater than 0"),
        ('{params: "*", grad_vlaue: 1}', "train.clip[0].grad_vlaue", "grad_value"),
    ],
)
def test_bad_entries_are_located_errors(entry, key, words):
    text = ONE_LAYER.split("  clip:")[0] + f"  clip:\n    - {entry}\n"
    with pytest.raises(SpecError) as e:
        load_text(text)
    msg = str(e.value)
    assert key in msg and words in msg, msg


GAN_CLIP = (
    "train.clip=[{params: 'discriminator/*', weight_min: -0.01, weight_max: 0.01}]",
    "train.epochs=1",
    "data.n_samples=256",
)


def test_gan_discriminator_globs_are_checked():
    load_spec(SPECS / "gan_ring.yaml", overrides=GAN_CLIP)
    with pytest.raises(SpecError) as e:
        load_spec(SPECS / "gan_ring.yaml", overrides=("train.clip=[{params: 'critic/*', weight_max: 1}]",))
    assert "'critic/*' matches no parameter" in str(e.value)


@pytest.mark.slow
def test_gan_weight_clipping_keeps_the_discriminator_in_its_box(tmp_path):
    train_run(str(SPECS / "gan_ring.yaml"), out=str(tmp_path / "run"), overrides=GAN_CLIP)
    p = serialization.msgpack_restore((tmp_path / "run" / "weights.msgpack").read_bytes())["params"]
    disc = np.concatenate([np.ravel(a) for a in jax.tree.leaves(p["discriminator"])])
    gen = np.concatenate([np.ravel(a) for a in jax.tree.leaves(p["generator"])])
    assert disc.min() >= np.float32(-0.01) and disc.max() <= np.float32(0.01)
    assert np.abs(disc).max() == np.float32(0.01)  # some weights sit on the box's edge
    assert np.abs(gen).max() > 0.1  # the generator is not clipped
