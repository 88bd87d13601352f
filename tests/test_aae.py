"""The adversarial autoencoder (model.type: aae): its spec checks, and (slow) its codes take the prior's shape
while it samples, scores anomalies and interpolates. Its one-epoch training test is tests/test_latent.py's
aae run."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from nnctl.app import predict_run, restore, train_run
from nnctl.cli import app
from nnctl.errors import SpecError
from nnctl.spec import load_text
from tests.conftest import SPECS

AAE = """name: a
data: {{source: builtin:digits}}
model:
  type: aae
  latent_dim: 2
  encoder: [{{type: dense, units: {code}}}]
  decoder: [{{type: dense, units: 64}}]
  discriminator: [{{type: dense, units: {d}}}]
train: {{loss: mse}}
"""


@pytest.mark.parametrize(
    "code, d, where, says",
    [(3, 1, "model.encoder[0]", "latent_dim = 2"), (2, 2, "model.discriminator[0]", "one logit per code")],
)
def test_aae_spec_errors(code, d, where, says):
    with pytest.raises(SpecError) as e:
        load_text(AAE.format(code=code, d=d), "a.yaml")
    assert where in str(e.value) and says in str(e.value), str(e.value)


@pytest.mark.slow
def test_aae_codes_take_the_shape_of_the_prior(tmp_path):
    res = train_run(str(SPECS / "aae_digits.yaml"), str(tmp_path / "r"))
    r = restore(res.run_dir)
    w = r.weights
    z = np.asarray(r.built.loop.obj.encode(w["params"], w["model_state"], r.built.data.x_test, "code"))
    assert np.all(np.abs(z.mean(0)) < 0.3) and np.all((z.std(0) > 0.6) & (z.std(0) < 1.5))
    assert res.records[-1]["train/reconstruction"] < res.records[0]["train/reconstruction"]
    out = CliRunner().invoke(app, ["sample", str(res.run_dir), "--n", "4", "--json"])
    assert out.exit_code == 0, out.output
    assert np.load(json.loads(out.output)["npz"])["samples"].shape == (4, 64)
    r = restore(res.run_dir)
    np.savez(tmp_path / "x.npz", x=r.scalers[0].invert(r.built.data.x_test[:5]))
    pred = predict_run(res.run_dir, str(tmp_path / "x.npz"))
    assert len(pred["anomaly_scores"]) == 5 and all(s > 0 for s in pred["anomaly_scores"])
    out = CliRunner().invoke(
        app, ["sample", str(res.run_dir), "--interpolate", "0,4", "--steps", "3", "-i", str(tmp_path / "x.npz")]
    )
    assert out.exit_code == 0, out.output
