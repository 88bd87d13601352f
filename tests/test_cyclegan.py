"""CycleGAN (model.type: cyclegan): unpaired translation between the data's two classes, four networks built
from two architectures, the cycle-consistency term, and its spec checks."""

import json

import numpy as np
import pytest
from flax import serialization
from typer.testing import CliRunner

from nnctl.app import restore, train_run
from nnctl.cli import app
from nnctl.errors import SpecError
from nnctl.spec import load_spec, load_text
from tests.conftest import SPECS

BRIEF = ("data.n_samples=256", "train.epochs=1", "train.evaluate_test=false", "model.identity_weight=0.5")


def test_one_epoch_trains_four_networks_and_translates_both_ways(tmp_path):
    res = train_run(str(SPECS / "cyclegan_moons.yaml"), str(tmp_path / "r"), BRIEF)
    last = res.records[-1]
    assert {"train/d_loss", "train/g_loss", "train/cycle", "train/identity"} <= set(last)
    # loss = d_loss + g_loss + cycle_weight * cycle + identity_weight * identity
    want = last["train/d_loss"] + last["train/g_loss"] + 10 * last["train/cycle"] + 0.5 * last["train/identity"]
    assert last["train/loss"] == pytest.approx(want, rel=1e-5)
    params = serialization.msgpack_restore((res.run_dir / "weights.msgpack").read_bytes())["params"]
    assert set(params) == {"generator_ab", "generator_ba", "discriminator_a", "discriminator_b"}
    k = lambda n: np.asarray(params[n]["dense_0"]["kernel"])
    assert not np.allclose(k("generator_ab"), k("generator_ba"))  # two networks, not one shared


def test_freeze_acts_on_both_copies_of_a_layer():
    from nnctl.app.inspect import param_rows

    loaded = load_spec(SPECS / "cyclegan_moons.yaml", ("model.generator.0.trainable=false",))
    frozen = sorted({r.layer for r in param_rows(loaded) if r.kind == "frozen"})
    assert frozen == ["generator_ab/dense_0", "generator_ba/dense_0"]


CYC = """name: c
data: {{source: {source}}}
model:
  type: cyclegan
  generator: [{{type: dense, units: {g}}}]
  discriminator: [{{type: dense, units: {d}}}]
train: {{loss: least_squares}}
"""


@pytest.mark.parametrize(
    "source, g, d, where, says",
    [
        ("builtin:iris", 4, 1, "model.type", "this data has 3 classes"),
        ("builtin:moons", 3, 1, "model.generator[0]", "translates an example into an example"),
        ("builtin:moons", 2, 2, "model.discriminator[0]", "one value"),
    ],
)
def test_cyclegan_spec_errors(source, g, d, where, says):
    with pytest.raises(SpecError) as e:
        load_text(CYC.format(source=source, g=g, d=d), "c.yaml")
    assert where in str(e.value) and says in str(e.value), str(e.value)


def test_an_optimizer_that_both_parts_override_is_an_error_not_ignored():
    with pytest.raises(SpecError) as e:
        load_spec(SPECS / "cyclegan_moons.yaml", ("train.optimizer.type=sgd", "train.optimizer.learning_rate=0.1"))
    assert "train.optimizer is only the default of train.generator and train.discriminator" in str(e.value)
    load_spec(SPECS / "cyclegan_moons.yaml", ("train.generator.learning_rate=0.0005",))  # the way to change it
    gan = CYC.format(source="builtin:moons", g=2, d=1).replace("train: {", "train: {optimizer: {type: sgd}, ")
    load_text(gan, "c.yaml")  # without train.generator and train.discriminator it is their default: used


@pytest.mark.slow
def test_cyclegan_maps_the_upper_moon_onto_the_lower_one_and_back(tmp_path):
    res = train_run(str(SPECS / "cyclegan_moons.yaml"), str(tmp_path / "r"))
    r = restore(res.run_dir)
    x, y = r.built.data.x_train, r.built.data.y_train
    a, b = x[y == 0], x[y == 1]
    obj, w = r.built.loop.obj, r.weights
    g = np.asarray(obj.encode(w["params"], w["model_state"], a, "generator_ab"))
    back = np.asarray(obj.encode(w["params"], w["model_state"], g, "generator_ba"))
    near_b = np.linalg.norm(g[:, None] - b[None], axis=-1).min(1)
    covered = np.linalg.norm(b[:, None] - g[None], axis=-1).min(1)
    assert np.mean(near_b < 0.15) > 0.6  # translated A points lie on the B moon (measured: 76%)
    assert np.mean(covered < 0.15) > 0.5  # ... spread over it, no collapse onto a few points (68%)
    assert np.abs(back - a).mean() < 0.05  # the cycle comes back (0.011)
    np.savez(tmp_path / "x.npz", x=a[:5])
    for net in ("generator_ab", "generator_ba"):
        out = CliRunner().invoke(app, ["predict", str(res.run_dir), "-i", str(tmp_path / "x.npz"), "--encode", net])
        assert out.exit_code == 0, out.output
    doc = json.loads(
        CliRunner().invoke(app, ["predict", str(res.run_dir), "-i", str(tmp_path / "x.npz"), "--json"]).output
    )
    assert np.asarray(doc["probabilities"]).shape == (5, 2)  # (D_A, D_B) per example
