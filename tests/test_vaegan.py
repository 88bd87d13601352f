"""VAE-GAN (model.type: vaegan): its loss terms on hand-computed logits, which network each weight moves
(the encoder's update ignores adversarial_weight, the decoder's ignores beta, D's ignores both), its spec
errors, a one-epoch run that samples, interpolates, encodes and scores anomalies, and (slow) a full run whose
samples are closer to the digits than the untrained decoder's."""

import dataclasses
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from nnctl.app import build, predict_run, restore, train_run
from nnctl.cli import app
from nnctl.data.prepare import prepare
from nnctl.errors import SpecError
from nnctl.objectives.vaegan import vaegan_terms
from nnctl.spec import load_text
from tests.conftest import SPECS

SPEC = str(SPECS / "vaegan_digits.yaml")


def test_loss_terms_on_hand_computed_logits():
    # D's logits on a real example, its reconstruction and a decoded prior draw: 2, -1, 0
    t = vaegan_terms(jnp.array([5.0]), jnp.array([0.25]), jnp.array([2.0]), jnp.array([-1.0]), jnp.array([0.0]))
    sp = [math.log(1 + math.exp(v)) for v in (-2.0, -1.0, 0.0, 1.0)]  # softplus(-2), (-1), (0), (1)
    # generator: -log s(-1) - log s(0) = softplus(1) + softplus(0)
    assert float(t["g_loss"][0]) == pytest.approx(sp[3] + sp[2], rel=1e-6)
    assert float(t["g_loss"][0]) == pytest.approx(2.006409, abs=1e-6)
    # discriminator: -log s(2) - log(1 - s(-1)) - log(1 - s(0)) = softplus(-2) + softplus(-1) + softplus(0)
    assert float(t["d_loss"][0]) == pytest.approx(sp[0] + sp[1] + sp[2], rel=1e-6)
    assert float(t["d_loss"][0]) == pytest.approx(1.133337, abs=1e-6)
    assert float(t["reconstruction"][0]) == 5.0 and float(t["kl"][0]) == 0.25


SGD = ("train.optimizer={type: sgd, learning_rate: 0.1}", "train.discriminator={type: sgd, learning_rate: 0.1}")


@pytest.fixture(scope="module")
def one_step():
    """One jitted training step (SGD) from the same state and batch, adversarial_weight and beta as arguments:
    (params after it, the values it logs)."""
    loaded = load_text(Path(SPEC).read_text(), SPEC, overrides=SGD)
    b = build(loaded, prepare(loaded.spec, loaded.analysis, loaded.base_dir))
    x = jnp.asarray(b.data.x_train[:32])
    state = b.obj.init(jax.random.key(0), tuple(b.data.input_shape))

    @jax.jit
    def step(adversarial_weight, beta):
        obj = dataclasses.replace(b.obj, adversarial_weight=adversarial_weight, beta=beta)
        p = obj.propose(state, x, None, jnp.ones(32), jax.random.key(1))
        return p.proposed().params, p.values

    return lambda adv=0.5, beta=1.0: jax.device_get(step(adv, beta))


def _same(a, b, parts):
    return all(np.array_equal(u, v) for n in parts for u, v in zip(jax.tree.leaves(a[n]), jax.tree.leaves(b[n])))


def test_each_network_steps_on_its_own_loss(one_step):
    base, v = one_step()
    adv, _ = one_step(adv=3.0)
    beta, _ = one_step(beta=4.0)
    enc, dec = ("encoder", "z_mean", "z_log_var"), ("decoder",)
    assert _same(base, adv, enc) and not _same(base, adv, dec)  # the GAN term moves the decoder only
    assert _same(base, beta, dec) and not _same(base, beta, enc)  # the KL term moves the encoder only
    assert _same(base, adv, ("discriminator",)) and _same(base, beta, ("discriminator",))
    assert {"reconstruction", "kl", "g_loss", "d_loss", "d_real", "d_fake"} <= set(v)


VG = """name: v
data: {{source: builtin:digits}}
model:
  type: vaegan
  latent_dim: 2
  encoder: [{{type: dense, units: 8}}]
  decoder: [{{type: dense, units: {out}}}]
  discriminator: [{{type: dense, units: {d}}}]
train: {{loss: mse{extra}}}
"""


@pytest.mark.parametrize(
    "out, d, extra, where, says",
    [
        (64, 2, "", "model.discriminator[0]", "one logit per example"),
        (32, 1, "", "model.decoder[0]", "the input's shape"),
        (64, 1, ", generator: adam", "train.generator", "train.optimizer"),
        (64, 1, ", metrics: [mse]", "train.metrics", "vaegan"),
    ],
)
def test_vaegan_spec_errors(out, d, extra, where, says):
    with pytest.raises(SpecError) as e:
        load_text(VG.format(out=out, d=d, extra=extra), "v.yaml")
    assert where in str(e.value) and says in str(e.value), str(e.value)


def _cli(*args):
    res = CliRunner().invoke(app, [*map(str, args), "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_one_epoch_trains_samples_interpolates_and_scores(tmp_path):
    res = train_run(
        SPEC,
        str(tmp_path / "r"),
        ("train.epochs=1", "train.batch_size=256", "train.evaluate_test=false", "data.validation_split=0"),
    )
    last = res.records[-1]
    total = last["train/reconstruction"] + last["train/kl"] + 0.5 * last["train/g_loss"]
    assert last["train/loss"] == pytest.approx(total, rel=1e-5)
    assert 0 < last["train/d_real"] < 1 and 0 < last["train/d_fake"] < 1 and last["train/d_loss"] > 0
    samples = np.load(_cli("sample", res.run_dir, "--n", "4")["npz"])["samples"]
    assert samples.shape == (4, 64) and np.all(samples >= 0) and np.all(samples <= 16.0001)  # pixel units
    r = restore(res.run_dir)
    np.savez(tmp_path / "x.npz", x=r.scalers[0].invert(r.built.data.x_test[:5]))
    got = np.load(_cli("sample", res.run_dir, "--interpolate", "0,3", "--steps", "3", "-i", tmp_path / "x.npz")["npz"])
    pred = predict_run(res.run_dir, str(tmp_path / "x.npz"))
    recon = r.scalers[0].invert(np.asarray(pred["values"]))
    np.testing.assert_allclose(got["samples"][[0, -1]], recon[[0, 3]], rtol=1e-4, atol=1e-4)  # the ends
    assert len(pred["anomaly_scores"]) == 5 and all(s > 0 for s in pred["anomaly_scores"])
    codes = _cli("predict", res.run_dir, "-i", tmp_path / "x.npz", "--encode", "z_mean")["codes"]
    np.testing.assert_allclose(np.asarray(codes)[[0, 3]], got["codes"][[0, -1]], rtol=1e-5, atol=1e-6)


def _nearest(samples, data):
    """Mean distance from each sample to its nearest example."""
    d = ((samples[:, None, :] - data[None, :, :]) ** 2).sum(-1)
    return float(np.sqrt(d.min(1)).mean())


@pytest.mark.slow
def test_full_run_samples_look_more_like_digits_than_the_untrained_decoders(tmp_path):
    res = train_run(SPEC, str(tmp_path / "r"))
    assert res.records[-1]["train/reconstruction"] < 0.7 * res.records[0]["train/reconstruction"]
    r = restore(res.run_dir)
    obj, data = r.built.loop.obj, r.built.data.x_train
    w = r.weights
    trained = np.asarray(obj.sample(w["params"], w["model_state"], jax.random.key(3), 200))
    init = obj.init(jax.random.key(0), tuple(r.built.data.input_shape))
    untrained = np.asarray(obj.sample(init.params, init.model_state, jax.random.key(3), 200))
    assert _nearest(trained, data) < 0.7 * _nearest(untrained, data)
