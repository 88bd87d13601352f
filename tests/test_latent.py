"""The latent space of a vae or an adversarial autoencoder from the command line (`sample --interpolate`,
`sample --codes`) and the reconstruction-error anomaly scores of `predict` for vaes, aaes and autoencoders.
The default suite runs them on a one-epoch aae (which is also the aae's training test); the vae run is slow."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from nnctl.app import evaluate_run, predict_run, restore, train_run
from nnctl.cli import app
from tests.conftest import SPECS

GENERATIVE = {
    "aae": ("aae_digits.yaml", ("train.batch_size=256", "model.adversarial_weight=0.5")),
    "vae": ("vae_digits.yaml", ()),
}


@pytest.fixture(scope="module", params=["aae", pytest.param("vae", marks=pytest.mark.slow)])
def trained(request, tmp_path_factory):
    spec, extra = GENERATIVE[request.param]
    out = tmp_path_factory.mktemp(request.param) / "run"
    return train_run(str(SPECS / spec), str(out), ("train.epochs=1", "train.evaluate_test=false", *extra))


@pytest.fixture
def run_dir(trained):
    return trained.run_dir


def test_the_run_logs_its_terms(trained):
    last = trained.records[-1]
    if "train/g_loss" in last:  # the aae: loss = reconstruction + adversarial_weight * g_loss
        assert {"train/reconstruction", "train/d_loss", "train/d_real", "train/d_fake"} <= set(last)
        assert last["train/loss"] == pytest.approx(last["train/reconstruction"] + 0.5 * last["train/g_loss"], rel=1e-5)
    else:  # the vae: loss = reconstruction + kl
        assert last["train/loss"] == pytest.approx(last["train/reconstruction"] + last["train/kl"], rel=1e-4)


def _cli(*args):
    res = CliRunner().invoke(app, [*map(str, args), "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_interpolation_ends_are_the_reconstructions_and_codes_decode_the_same(run_dir, tmp_path):
    r = restore(run_dir)
    x = r.scalers[0].invert(r.built.data.x_test[:6])  # the test split in pixel units, as a user has it
    np.savez(tmp_path / "x.npz", x=x)
    doc = _cli("sample", run_dir, "--interpolate", "1,4", "--steps", "5", "--input", tmp_path / "x.npz")
    got = np.load(doc["npz"])
    assert got["samples"].shape == (5, 64) and got["codes"].shape == (5, 4) and doc["png"]
    np.testing.assert_allclose(got["t"], [0, 0.25, 0.5, 0.75, 1])
    # t = 0 and t = 1 decode the means of examples 1 and 4: their reconstructions (predict's values)
    recon = r.scalers[0].invert(np.asarray(predict_run(run_dir, str(tmp_path / "x.npz"))["values"]))
    np.testing.assert_allclose(got["samples"][[0, -1]], recon[[1, 4]], rtol=1e-4, atol=1e-4)
    # the codes on the line are evenly spaced: z(0.5) = (z(0) + z(1)) / 2
    np.testing.assert_allclose(got["codes"][2], got["codes"][[0, -1]].mean(0), rtol=1e-5, atol=1e-6)
    # decoding those codes again (from .npy and from CSV) gives the same examples
    np.save(tmp_path / "z.npy", got["codes"])
    again = np.load(_cli("sample", run_dir, "--codes", tmp_path / "z.npy", "-o", tmp_path / "d.npz")["npz"])
    np.testing.assert_allclose(again["samples"], got["samples"], rtol=1e-5, atol=1e-5)
    (tmp_path / "z.csv").write_text(
        "z0,z1,z2,z3\n" + "\n".join(",".join(f"{v:.9g}" for v in row) for row in got["codes"])
    )
    csv = np.load(_cli("sample", run_dir, "--codes", tmp_path / "z.csv", "-o", tmp_path / "c.npz")["npz"])
    np.testing.assert_allclose(csv["samples"], got["samples"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "args, says",
    [
        (("--interpolate", "1"), "two example indices"),
        (("--interpolate", "0,100000"), "examples (0.."),
        (("--interpolate", "0,1", "--steps", "1"), "at least 2"),
        (("--codes", "missing.npy"), "no such file"),
        (("--input", "x.npz"), "goes with --interpolate"),
    ],
)
def test_latent_mistakes_are_messages(run_dir, args, says):
    res = CliRunner().invoke(app, ["sample", str(run_dir), *args])
    assert res.exit_code == 2 and says in res.output, res.output


def test_wrong_code_width_is_named(run_dir, tmp_path):
    np.save(tmp_path / "z.npy", np.zeros((2, 3), np.float32))
    res = CliRunner().invoke(app, ["sample", str(run_dir), "--codes", str(tmp_path / "z.npy")])
    assert res.exit_code == 2 and "codes of 4" in res.output, res.output


def test_anomaly_scores_average_to_evals_reconstruction(run_dir, tmp_path):
    r = restore(run_dir)
    np.savez(tmp_path / "x.npz", x=r.scalers[0].invert(r.built.data.x_test))
    pred = predict_run(run_dir, str(tmp_path / "x.npz"), str(tmp_path / "p.csv"))
    scores = np.asarray(pred["anomaly_scores"])
    assert scores.shape == (len(r.built.data.x_test),) and np.all(scores > 0)
    assert scores.mean() == pytest.approx(evaluate_run(run_dir, "test")["metrics"]["reconstruction"], rel=1e-4)
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0].split(",")[-1] == "anomaly_score" and float(lines[1].split(",")[-1]) == pytest.approx(scores[0])
    # noise looks less like a digit than the digits do
    noise = np.random.default_rng(0).uniform(0, 16, (20, 64)).astype(np.float32)
    np.savez(tmp_path / "noise.npz", x=noise)
    assert np.mean(predict_run(run_dir, str(tmp_path / "noise.npz"))["anomaly_scores"]) > scores.mean()


AE = """name: ae
seed: 0
data: {source: builtin:digits, task: autoencoder, normalize: minmax, test_split: 0.2}
model:
  layers:
    - {type: dense, units: 8, activation: relu}
    - {type: dense, units: 64, activation: sigmoid}
train: {loss: mse, batch_size: 256, epochs: 1}
"""


@pytest.mark.slow
def test_autoencoder_anomaly_scores_average_to_evals_loss(tmp_path):
    (tmp_path / "ae.yaml").write_text(AE)
    run = train_run(str(tmp_path / "ae.yaml"), str(tmp_path / "ae")).run_dir
    r = restore(run)
    np.savez(tmp_path / "x.npz", x=r.scalers[0].invert(r.built.data.x_test))
    scores = np.asarray(predict_run(run, str(tmp_path / "x.npz"), str(tmp_path / "p.npz"))["anomaly_scores"])
    assert scores.mean() == pytest.approx(evaluate_run(run, "test")["metrics"]["loss"], rel=1e-4)
    np.testing.assert_allclose(np.load(tmp_path / "p.npz")["anomaly_scores"], scores)
