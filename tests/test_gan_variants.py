"""The gan variants of model.adversarial trained from their example specs: the notes' minimax loss, WGAN
(weight clipping), WGAN-GP, ACGAN and InfoGAN. All slow (each compiles its own training program): the default
suite checks their losses on hand-computed values and their spec checks (tests/test_gan_losses.py)."""

import json

import numpy as np
import pytest
from flax import serialization
from typer.testing import CliRunner

from nnctl.app import train_run
from nnctl.app.sample import sample_run
from nnctl.cli import app
from nnctl.data.builtin_gen import ring_centres
from tests.conftest import SPECS

BRIEF = ("data.n_samples=256", "train.epochs=1", "train.evaluate_test=false")


def brief(tmp_path, name, *more):
    return train_run(str(SPECS / f"{name}.yaml"), str(tmp_path / name), BRIEF + more)


def weights(run_dir):
    return serialization.msgpack_restore((run_dir / "weights.msgpack").read_bytes())["params"]


@pytest.mark.slow
def test_wgan_clips_every_critic_weight_and_takes_five_critic_steps(tmp_path):
    res = brief(tmp_path, "wgan_ring")
    assert res.summary["status"] == "finished"
    leaves = [np.asarray(v) for v in _leaves(weights(res.run_dir)["discriminator"])]
    assert max(float(np.abs(v).max()) for v in leaves) <= 0.05 + 1e-7  # clip_value
    assert any(float(np.abs(v).max()) > 0.049 for v in leaves)  # the clip is reached, not vacuous
    last = res.records[-1]
    # the critic's loss is E[D(G(z))] - E[D(x)] (no gradient penalty term here)
    assert last["train/d_loss"] == pytest.approx(last["train/d_fake"] - last["train/d_real"], abs=1e-5)


def _leaves(tree):
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _leaves(v)
    else:
        yield tree


def _ring_stats(run_dir):
    x = np.load(sample_run(run_dir, 2000, seed=1)["npz"])
    s = x["samples"]
    d = np.linalg.norm(s[:, None] - ring_centres()[None], axis=-1)
    annulus = np.mean(np.abs(np.linalg.norm(s, axis=1) - 2.0) < 0.3)
    return d, annulus, x


@pytest.mark.slow
def test_acgan_trains_and_samples_by_label(tmp_path):
    res = train_run(str(SPECS / "acgan_ring.yaml"), str(tmp_path / "r"), ("train.epochs=100",))
    assert {"train/d_loss", "train/g_loss", "train/class_loss", "train/class_accuracy"} <= set(res.records[-1])
    d, _, x = _ring_stats(res.run_dir)
    assert np.mean(d.argmin(1) == x["labels"]) > 0.9  # each label is drawn from its own mode
    assert res.records[-1]["train/class_accuracy"] > 0.95
    out = CliRunner().invoke(app, ["sample", str(res.run_dir), "--n", "6", "--label", "3", "--json"])
    assert out.exit_code == 0, out.output
    got = np.load(json.loads(out.output)["npz"])
    assert got["samples"].shape == (6, 2) and list(got["labels"]) == [3] * 6
    bad = CliRunner().invoke(app, ["sample", str(res.run_dir), "--label", "8"])
    assert bad.exit_code == 2 and "between 0 and 7" in bad.output


@pytest.mark.slow
def test_infogan_categories_pick_modes_without_labels(tmp_path):
    res = train_run(str(SPECS / "infogan_ring.yaml"), str(tmp_path / "r"), ("train.epochs=100",))
    d, _, x = _ring_stats(res.run_dir)
    nearest, cat = d.argmin(1), x["labels"]
    purity = np.mean([np.bincount(nearest[cat == k], minlength=8).max() / np.sum(cat == k) for k in range(8)])
    assert purity > 0.8  # each category of the code draws (mostly) from one mode
    assert res.records[-1]["train/info_loss"] < res.records[0]["train/info_loss"]
    one = np.load(sample_run(res.run_dir, 50, label=2)["npz"])  # category 2 alone: one mode
    assert np.bincount(np.linalg.norm(one["samples"][:, None] - ring_centres()[None], axis=-1).argmin(1)).max() > 40


@pytest.mark.slow
def test_wgan_gp_estimate_falls_and_points_reach_the_ring(tmp_path):
    res = train_run(str(SPECS / "wgan_gp_ring.yaml"), str(tmp_path / "r"), ("train.epochs=300",))
    w = [r["train/d_real"] - r["train/d_fake"] for r in res.records]
    assert w[-1] < 0.25 * max(w)  # the critic's Wasserstein estimate falls as G learns
    assert all(r["train/gradient_penalty"] < 1.0 for r in res.records[10:])  # ||grad D|| stays near 1
    d, annulus, _ = _ring_stats(res.run_dir)
    assert annulus > 0.5 and np.mean(d.min(1) < 0.25) > 0.3


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gan_minimax_ring", "wgan_ring"])
def test_minimax_and_wgan_put_points_on_the_ring(name, tmp_path):
    res = train_run(str(SPECS / f"{name}.yaml"), str(tmp_path / "r"), ("train.epochs=100",))
    d, annulus, _ = _ring_stats(res.run_dir)
    assert annulus > 0.8
    near = d.min(1) < 0.25
    assert np.all(np.bincount(d.argmin(1)[near], minlength=8) > 0)  # every mode is reached
