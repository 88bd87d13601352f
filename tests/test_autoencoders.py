"""Autoencoders: each regularizer does what its name says, on the digits, trained the same way."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from nnctl.app import restore, train_run
from nnctl.cli import app
from nnctl.errors import SpecError
from nnctl.spec import load_text
from tests.conftest import SPECS

SHRINK = ("train.epochs=12",)
SPEC = str(SPECS / "sparse_autoencoder_digits.yaml")  # code: 32 sigmoid units, decoder: 64 sigmoid


def _train(tmp, name, spec=SPEC, extra=()):
    return train_run(spec, str(tmp / name), SHRINK + tuple(extra))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ae")
    plain = _train(tmp, "plain", extra=("train.regularizers=[]",))
    return tmp, plain


def _test_codes(run_dir, layer="code", noise=0.0):
    r = restore(run_dir)
    obj = r.built.obj
    x = jnp.asarray(r.built.data.x_test)
    h = obj.encode(r.weights["params"], r.weights["model_state"], x, layer)
    return r, obj, x, np.asarray(h)


def test_undercomplete_spec_trains_and_eval_reports_reconstruction(runs):
    tmp, _ = runs
    res = train_run(str(SPECS / "autoencoder_digits.yaml"), str(tmp / "under"), ("train.epochs=8",))
    ev = CliRunner().invoke(app, ["eval", str(res.run_dir), "--json"])
    assert ev.exit_code == 0, ev.output
    m = json.loads(ev.output)["metrics"]
    assert m["reconstruction"] == pytest.approx(m["loss"]) and m["reconstruction"] < 0.08
    assert res.summary["task"] == "autoencoder"


def test_sparse_l1_and_kl_lower_the_mean_code_activation(runs):
    tmp, plain = runs
    kl = _train(tmp, "kl")
    l1 = _train(tmp, "l1", extra=("train.regularizers=[{type: activity_l1, layer: code, weight: 0.003}]",))
    mean = {name: _test_codes(r.run_dir)[3].mean() for name, r in (("plain", plain), ("kl", kl), ("l1", l1))}
    assert mean["kl"] < 0.6 * mean["plain"], mean
    assert mean["l1"] < 0.6 * mean["plain"], mean
    # each regularizer is logged on its own, next to the reconstruction error
    last = json.loads((kl.run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"train/activity_kl", "train/reconstruction", "val/activity_kl"} <= set(last)
    assert last["train/loss"] == pytest.approx(last["train/reconstruction"] + last["train/activity_kl"], rel=1e-4)
    last = json.loads((l1.run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert "train/activity_l1" in last


def _jacobian_norm(run_dir):
    r, obj, x, _ = _test_codes(run_dir)
    p, ms = r.weights["params"], r.weights["model_state"]
    j = jax.vmap(jax.jacrev(lambda xi: obj.encode(p, ms, xi[None], "code")[0]))(x)
    return float(jnp.sqrt((j.reshape(len(x), -1) ** 2).sum(1)).mean())


def test_contractive_penalty_lowers_the_jacobian_norm(runs):
    tmp, plain = runs
    con = _train(tmp, "con", extra=("train.regularizers=[{type: contractive, layer: code, weight: 0.05}]",))
    assert _jacobian_norm(con.run_dir) < 0.7 * _jacobian_norm(plain.run_dir)
    last = json.loads((con.run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert "train/contractive" in last


def test_denoising_reconstructs_noisy_digits_better(runs):
    tmp, plain = runs
    den = _train(tmp, "den", extra=("data.corruption={type: gaussian_noise, stddev: 0.3}", "train.regularizers=[]"))

    def noisy_error(run_dir):
        r = restore(run_dir)
        x = r.built.data.x_test
        noisy = x + 0.3 * np.random.default_rng(0).normal(size=x.shape).astype(np.float32)
        out = np.asarray(r.built.obj.predict(r.weights["params"], r.weights["model_state"], jnp.asarray(noisy)))
        return float(((out - x) ** 2).mean())

    assert noisy_error(den.run_dir) < noisy_error(plain.run_dir)


def test_predict_encode_writes_the_codes(runs, tmp_path):
    _, plain = runs
    x = np.random.default_rng(0).uniform(0, 16, size=(5, 64)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    res = CliRunner().invoke(
        app,
        [
            "predict",
            str(plain.run_dir),
            "-i",
            str(tmp_path / "in.npz"),
            "--encode",
            "code",
            "-o",
            str(tmp_path / "codes.npz"),
        ],
    )
    assert res.exit_code == 0, res.output
    codes = np.load(tmp_path / "codes.npz")["codes"]
    assert codes.shape == (5, 32) and np.all((codes >= 0) & (codes <= 1))
    bad = CliRunner().invoke(app, ["predict", str(plain.run_dir), "-i", str(tmp_path / "in.npz"), "--encode", "cod"])
    assert bad.exit_code == 2 and "did you mean 'code'" in bad.output.lower()


@pytest.mark.parametrize(
    "patch,fragment",
    [
        ("train.regularizers=[{type: activity_l1, layer: cod}]", "unknown layer 'cod'"),
        ("data.task=regression", "data.corruption trains a denoising autoencoder"),
        ("train.regularizers=[{type: sparse, layer: code}]", "activity_l1"),
    ],
)
def test_spec_errors(patch, fragment):
    text = (SPECS / "denoising_autoencoder_digits.yaml").read_text()
    from nnctl.spec import apply_override  # noqa: F401  (overrides go through load_text)

    with pytest.raises(SpecError) as e:
        load_text(text, overrides=(patch,))
    assert fragment in str(e.value)


@pytest.mark.parametrize(
    "spec,key",
    [
        ("contractive_autoencoder_digits.yaml", "train/contractive"),
        ("denoising_autoencoder_digits.yaml", "train/reconstruction"),
    ],
)
def test_example_specs_train_shrunk(tmp_path, spec, key):
    res = train_run(str(SPECS / spec), str(tmp_path / "r"), ("train.epochs=3",))
    recs = [json.loads(line) for line in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert res.summary["status"] == "finished" and key in recs[-1]
    assert recs[-1]["train/reconstruction"] < recs[0]["train/reconstruction"]
