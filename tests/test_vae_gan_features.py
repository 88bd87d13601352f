"""VAE and GAN with the supervised path's features: each newly supported (kind, feature) pair has its effect,
and each pair that is not meaningful is a located spec error.

Compiling is what costs here, so there is one training (the VAE with metrics, kernel and activity
regularizers and a param group), one compiled initialisation per kind, and otherwise single jitted training
steps from that initialisation, compared with the kind's base spec (the GAN's base freezes one layer by a
glob, one by `trainable: false` and one by a param group of scale 0)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnctl.app import build, fit
from nnctl.data.prepare import prepare
from nnctl.errors import SpecError
from nnctl.spec import load_text

VAE = """
name: vae-features
data: {source: builtin:digits, normalize: minmax, validation_split: 0.2}
model:
  type: vae
  latent_dim: 2
  encoder: [{type: dense, units: 8, activation: sigmoid}]
  decoder: [{type: dense, units: 8, activation: relu}, {type: dense, units: 64, activation: sigmoid}]
train: {loss: binary_crossentropy, optimizer: {type: adam, learning_rate: 0.01}, batch_size: 256, epochs: 2}
"""
GAN = """
name: gan-features
data: {source: builtin:ring, n_samples: 256}
model:
  type: gan
  latent_dim: 4
  generator: [{type: dense, units: 8, activation: relu}, {type: dense, units: 8, activation: relu},
              {type: dense, units: 2}]
  discriminator: [{type: dense, units: 8, activation: relu},
                  {type: dense, units: 8, activation: relu, trainable: false}, {type: dense, units: 1}]
train:
  loss: bce
  optimizer: {type: adam, learning_rate: 0.01}
  batch_size: 64
  epochs: 2
  freeze: ['generator/dense_0/*']
  param_groups: [{params: 'discriminator/dense_0/*', learning_rate_scale: 0.0}]
"""
VAE_ALL = (
    "train.metrics=[mse, mae, rmse, r2]",
    (
        "train.regularizers=[{type: activity_l1, layer: dense_0, weight: 0.01}, "
        "{type: activity_kl, layer: dense_0, target: 0.1}, {type: contractive, layer: dense_0, weight: 0.01}]"
    ),
    "model.encoder[0].kernel_regularizer={l2: 0.01}",
    "model.decoder[1].kernel_regularizer={l1: 0.001}",
    "train.param_groups=[{params: 'decoder/dense_0/*', learning_rate_scale: 0.0}]",
)
_DATA, _INIT, _STEPS = {}, {}, {}


def built(text, *overrides):
    """The built spec; the prepared data is shared between specs of one kind (features do not change it)."""
    loaded = load_text(text, overrides=overrides)
    if text not in _DATA:
        _DATA[text] = prepare(loaded.spec, loaded.analysis, loaded.base_dir)
    return build(loaded, _DATA[text])


def one_step(text, *overrides):
    """One jitted training step on the first batch from the kind's initial state (compiled once per kind):
    the built spec and {"init": params, "new": params, "loss", "values": what the step logs}."""
    b = built(text, *overrides)
    x, y = jnp.asarray(b.data.x_train[:64]), jnp.asarray(b.data.y_train[:64])
    if text not in _INIT:
        _INIT[text] = jax.jit(lambda k: built(text).obj.init(k, tuple(b.data.input_shape)))(jax.random.key(0))

    def step(state):
        p = b.obj.propose(state, x, y, jnp.ones(64), jax.random.key(1))
        return {"init": state.params, "new": p.proposed().params, "loss": p.loss, "values": p.values}

    if (text, overrides) not in _STEPS:
        _STEPS[(text, overrides)] = jax.device_get(jax.jit(step)(_INIT[text]))
    return b, _STEPS[(text, overrides)]


def leaf(params, path):
    for k in path.split("/"):
        params = params[k]
    return np.asarray(params)


@pytest.fixture(scope="module")
def vae_run():
    b = built(VAE, *VAE_ALL)
    init = jax.jit(b.loop.start, static_argnums=0)(tuple(b.data.input_shape)).state.params  # fit's own init
    return b, jax.device_get(init), fit(b)


# --- vae ---------------------------------------------------------------------------------------------------
def test_vae_metrics_compare_the_reconstruction_with_the_input(vae_run):
    b, _, r = vae_run
    last = r.records[-1]
    for k in ("mse", "mae", "rmse", "r2"):
        assert np.isfinite(last[f"train/{k}"]) and np.isfinite(last[f"val/{k}"])
    assert last["val/rmse"] == pytest.approx(last["val/mse"] ** 0.5, rel=1e-5)
    p = r.carry.state
    recon = np.asarray(b.obj.predict(p.params, p.model_state, jnp.asarray(b.data.x_val)))  # decoded means
    assert last["val/mse"] == pytest.approx(float(np.mean((recon - b.data.x_val) ** 2)), rel=1e-4)


def test_vae_kernel_and_activity_regularizers_are_in_the_loss(vae_run):
    _, _, r = vae_run
    last = r.records[-1]
    acts = [last[f"val/{k}"] for k in ("activity_l1", "activity_kl", "contractive")]
    assert all(a > 0 for a in acts) and all(last[f"train/{k}"] > 0 for k in ("activity_l1", "activity_kl"))
    p = r.carry.state.params  # the weights the last validation pass used
    kernel = 0.01 * (leaf(p, "encoder/dense_0/kernel") ** 2).sum()
    kernel += 0.001 * np.abs(leaf(p, "decoder/dense_1/kernel")).sum()
    assert last["val/loss"] == pytest.approx(last["val/reconstruction"] + last["val/kl"] + sum(acts) + kernel, rel=1e-5)


def test_vae_param_group_scale_zero_leaves_its_weights(vae_run):
    b, init, r = vae_run
    p = jax.device_get(r.carry.state.params)
    assert "param_groups(1)" in b.obj.describe()
    for w in ("kernel", "bias"):
        assert np.array_equal(leaf(p, f"decoder/dense_0/{w}"), leaf(init, f"decoder/dense_0/{w}"))
    assert not np.array_equal(leaf(p, "encoder/dense_0/kernel"), leaf(init, "encoder/dense_0/kernel"))


def test_vae_augments_input_and_target_and_corrupts_the_input_only():
    plain, s0 = one_step(VAE)
    b, s = one_step(
        VAE, "data.augment=[{type: gaussian_noise, stddev: 0.2}]", "data.corruption={type: masking, rate: 0.5}"
    )
    x = plain.data.x_train[:64]
    assert np.array_equal(s0["values"].target, x) and s["loss"] != s0["loss"]
    noisy, clean = b.obj.perturb(jnp.asarray(x), jax.random.key(1))  # the step's key: the same draws
    assert not np.allclose(clean, x)  # augmented ...
    np.testing.assert_allclose(s["values"].target, clean, rtol=1e-6, atol=1e-6)  # ... and the target (not noisy)
    masked = np.asarray(noisy != clean)
    assert masked.any() and np.all(np.asarray(noisy)[masked] == 0)  # the encoded input: masked


def _bf16_dots(jaxpr) -> bool:
    return any("dot_general" in line and "bf16" in line for line in str(jaxpr).splitlines())


@pytest.mark.parametrize("text", [VAE, GAN], ids=["vae", "gan"])
def test_bf16_computes_in_bfloat16_and_keeps_float32_state(text):
    b32, b16 = built(text), built(text, "train.precision=bf16")
    state = jax.eval_shape(lambda k: b32.obj.init(k, tuple(b32.data.input_shape)), jax.random.key(0))
    x, y = jnp.asarray(b32.data.x_train[:8]), jnp.asarray(b32.data.y_train[:8])
    args = (state, x, y, jnp.ones(8), jax.random.key(1))
    assert _bf16_dots(jax.make_jaxpr(lambda *a: b16.obj.propose(*a).proposed())(*args))
    assert not _bf16_dots(jax.make_jaxpr(lambda *a: b32.obj.propose(*a).proposed())(*args))
    out = jax.eval_shape(lambda *a: b16.obj.propose(*a).proposed(), *args)
    floats = [a.dtype for a in jax.tree.leaves((out.params, out.opt_state)) if jnp.issubdtype(a.dtype, jnp.floating)]
    assert floats and all(d == jnp.float32 for d in floats)


# --- gan ---------------------------------------------------------------------------------------------------
def test_gan_freeze_and_param_groups_leave_their_weights():
    b, s = one_step(GAN)
    desc = b.obj.describe()
    assert "generator: adam -> freeze;" in desc and "discriminator: adam -> param_groups(1) -> freeze" in desc
    for layer in ("generator/dense_0", "discriminator/dense_1", "discriminator/dense_0"):  # glob, trainable, scale 0
        for w in ("kernel", "bias"):
            assert np.array_equal(leaf(s["new"], f"{layer}/{w}"), leaf(s["init"], f"{layer}/{w}")), layer
    for layer in ("generator/dense_1", "generator/dense_2", "discriminator/dense_2"):  # trained
        assert not np.array_equal(leaf(s["new"], f"{layer}/kernel"), leaf(s["init"], f"{layer}/kernel")), layer


def test_gan_kernel_regularizer_is_added_to_its_own_network_loss():
    _, s0 = one_step(GAN)
    _, sg = one_step(GAN, "model.generator[1].kernel_regularizer={l2: 0.5}")
    _, sd = one_step(GAN, "model.discriminator[2].kernel_regularizer={l1: 0.01}")
    g_pen = 0.5 * float((leaf(s0["init"], "generator/dense_1/kernel") ** 2).sum())
    d_pen = 0.01 * float(np.abs(leaf(s0["init"], "discriminator/dense_2/kernel")).sum())
    v0, vg, vd = s0["values"], sg["values"], sd["values"]
    assert float(vg["d_loss"]) == pytest.approx(float(v0["d_loss"]), rel=1e-6)  # not in D's loss
    assert float(vg["g_loss"]) == pytest.approx(float(v0["g_loss"]) + g_pen, rel=1e-5)
    assert float(vd["d_loss"]) == pytest.approx(float(v0["d_loss"]) + d_pen, rel=1e-5)
    assert not np.allclose(leaf(sg["new"], "generator/dense_1/kernel"), leaf(s0["new"], "generator/dense_1/kernel"))


def test_gan_augment_changes_what_the_discriminator_sees():
    _, s0 = one_step(GAN)
    _, sa = one_step(GAN, "data.augment=[{type: gaussian_noise, stddev: 0.5}]")
    assert float(sa["values"]["d_real"]) != pytest.approx(float(s0["values"]["d_real"]), rel=1e-4)
    assert float(sa["values"]["d_fake"]) == pytest.approx(float(s0["values"]["d_fake"]), rel=1e-6)  # fakes: as is


# --- refused: not meaningful ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,patch,where,fragment",
    [
        (VAE, "train.class_weight=balanced", "train.class_weight", "no labels"),
        (VAE, "train.metrics=[mse, accuracy]", "train.metrics[1]", "does not apply to a vae"),
        (
            VAE,
            "train.regularizers=[{type: activity_l1, layer: dense_1}]",
            "train.regularizers[0].layer",
            "decoder layer",
        ),
        (VAE, "data.augment=[{type: flip}]", "data.augment[0]", "image-shaped"),
        (GAN, "data.corruption={type: masking}", "data.corruption", "no reconstruction target"),
        (GAN, "train.class_weight=balanced", "train.class_weight", "no class term"),
        (GAN, "train.metrics=[mse]", "train.metrics", "no prediction target"),
        (GAN, "train.regularizers=[{type: activity_l1, layer: dense_0}]", "train.regularizers", "no code"),
        (GAN, "data.augment=[{type: rotate}]", "data.augment[0]", "image-shaped"),
    ],
    ids=lambda v: v if isinstance(v, str) and "=" in v else None,
)
def test_not_meaningful_features_are_located_spec_errors(text, patch, where, fragment):
    with pytest.raises(SpecError) as e:
        load_text(text, overrides=(patch,))
    msg = str(e.value)
    assert f"{where}:" in msg and fragment in msg and "yet" not in msg
