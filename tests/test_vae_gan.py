"""VAE and GAN: losses logged separately, sampling from a trained run, and a GAN that covers the modes
of a ring of Gaussians."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from nnctl.app import train_run
from nnctl.cli import app
from nnctl.data.builtin_gen import ring_centres
from nnctl.errors import SpecError
from nnctl.spec import load_text
from tests.conftest import SPECS


def test_vae_logs_kl_and_reconstruction_and_samples(tmp_path):
    res = train_run(str(SPECS / "vae_digits.yaml"), str(tmp_path / "vae"), ("train.epochs=6",))
    recs = [json.loads(line) for line in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    for k in ("train/kl", "train/reconstruction", "val/kl", "val/reconstruction"):
        assert k in recs[-1]
    assert recs[-1]["train/loss"] == pytest.approx(recs[-1]["train/reconstruction"] + recs[-1]["train/kl"], rel=1e-4)
    assert recs[-1]["train/loss"] < recs[0]["train/loss"]
    assert recs[-1]["train/kl"] > 0
    out = CliRunner().invoke(app, ["sample", str(res.run_dir), "--n", "16", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    samples = np.load(doc["npz"])["samples"]
    assert samples.shape == (16, 64) and np.all(samples >= 0) and np.all(samples <= 16.0001)  # pixel units again
    assert doc["png"] and (res.run_dir / "samples.png").stat().st_size > 0
    ev = CliRunner().invoke(app, ["eval", str(res.run_dir), "--json"])
    assert ev.exit_code == 0 and "kl" in json.loads(ev.output)["metrics"]
    np.savez(tmp_path / "x.npz", x=np.random.default_rng(0).uniform(0, 16, (3, 64)).astype(np.float32))
    enc = CliRunner().invoke(
        app, ["predict", str(res.run_dir), "-i", str(tmp_path / "x.npz"), "--encode", "z_mean", "--json"]
    )
    assert enc.exit_code == 0, enc.output
    assert np.asarray(json.loads(enc.output)["codes"]).shape == (3, 4)


def _coverage(samples, radius=0.25):
    c = ring_centres()
    d = np.linalg.norm(samples[:, None] - c[None], axis=-1)
    near = d.min(1) < radius
    counts = np.bincount(d.argmin(1)[near], minlength=len(c))
    return near.mean(), counts


GAN_FAST = ("train.epochs=100", "train.generator.learning_rate=0.002", "train.discriminator.learning_rate=0.002")


def test_gan_covers_the_modes_of_the_ring(tmp_path):
    res = train_run(str(SPECS / "gan_ring.yaml"), str(tmp_path / "gan"), GAN_FAST)
    last = json.loads((res.run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"train/d_loss", "train/g_loss", "train/d_real", "train/d_fake"} <= set(last)
    out = CliRunner().invoke(app, ["sample", str(res.run_dir), "--n", "2000", "--json"])
    assert out.exit_code == 0, out.output
    near, counts = _coverage(np.load(json.loads(out.output)["npz"])["samples"])
    assert near > 0.5, (near, counts)  # most generated points lie near a mode
    assert (counts >= 0.02 * 2000).sum() >= 6, counts  # most modes receive points


def test_conditional_gan_and_lsgan_train(tmp_path):
    res = train_run(str(SPECS / "cgan_ring.yaml"), str(tmp_path / "cgan"), ("train.epochs=3",))
    assert res.summary["status"] == "finished"
    out = CliRunner().invoke(app, ["sample", str(res.run_dir), "--n", "8", "--label", "3", "--json"])
    assert out.exit_code == 0, out.output
    z = np.load(json.loads(out.output)["npz"])
    assert z["samples"].shape == (8, 2) and list(z["labels"]) == [3] * 8


@pytest.mark.parametrize(
    "patch,fragment",
    [
        ("model.discriminator[2].units=2", "the discriminator must output one value"),
        ("model.generator[2].units=3", "the generator outputs [3]"),
        ("train.loss=hinge", "a gan takes loss bce"),
        ("train.metrics=[mse]", "a gan has no prediction target"),  # (train.freeze is supported now)
        ("model.latent_dim=null", "model type gan needs latent_dim"),
    ],
)
def test_gan_spec_errors(patch, fragment):
    with pytest.raises(SpecError) as e:
        load_text((SPECS / "gan_ring.yaml").read_text(), overrides=(patch,))
    assert fragment in str(e.value)


def test_vae_spec_errors():
    with pytest.raises(SpecError) as e:
        load_text((SPECS / "vae_digits.yaml").read_text(), overrides=("model.decoder[1].units=10",))
    assert "the decoder outputs [10]" in str(e.value)
    with pytest.raises(SpecError) as e:
        load_text((SPECS / "vae_digits.yaml").read_text(), overrides=("model.layers=[{type: dense, units: 3}]",))
    assert "does not use layers" in str(e.value)


def test_gan_logs_gradient_clipping(tmp_path):
    res = train_run(
        str(SPECS / "gan_ring.yaml"),
        str(tmp_path / "gan"),
        ("train.epochs=1", "train.gradient_clipping={max_norm: 1.0e-6}"),
    )
    assert res.records[0]["clip_fraction"] == 1.0
