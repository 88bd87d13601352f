"""Transfer learning: init_from copies by layer name where shapes match, freeze keeps weights bit for bit,
param_groups scale the learning rate of matching parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nnctl import rundir
from nnctl.app import train_run
from nnctl.app.transfer import copy_matching
from nnctl.chain import scale_by_groups
from nnctl.objectives.specs import ParamGroup
from tests.conftest import SPECS


def _weights(run):
    return rundir.read_msgpack(run / rundir.WEIGHTS)["params"]


def test_finetune_into_a_new_head_keeps_frozen_weights(tmp_path):
    src = train_run(
        str(SPECS / "digits_mlp.yaml"), str(tmp_path / "src"), ("train.epochs=3", "train.early_stopping=null")
    )
    res = train_run(
        str(SPECS / "transfer_digits.yaml"), str(tmp_path / "ft"), (f"model.init_from={src.run_dir}", "train.epochs=3")
    )
    before, after = _weights(src.run_dir), _weights(res.run_dir)
    # frozen: bit for bit
    for k in ("kernel", "bias"):
        assert np.array_equal(np.asarray(before["dense_0"][k]), np.asarray(after["dense_0"][k]))
    # copied, then trained (at a tenth of the rate)
    assert not np.array_equal(np.asarray(before["dense_2"]["kernel"]), np.asarray(after["dense_2"]["kernel"]))
    rep = res.summary["init_from"]
    assert set(rep["copied"]) == {"dense_0/kernel", "dense_0/bias", "dense_2/kernel", "dense_2/bias"}
    assert set(rep["new"]) == {"new_head/kernel", "new_head/bias"}
    assert set(rep["unused"]) == {"dense_3/kernel", "dense_3/bias"}
    assert res.summary["final"]["train/accuracy"] > 0.5


def test_shape_mismatch_is_skipped_and_reported():
    target = {"params": {"a": {"kernel": jnp.zeros((2, 3))}, "b": {"kernel": jnp.zeros((3, 1))}}}
    source = {"params": {"a": {"kernel": np.ones((2, 3))}, "b": {"kernel": np.ones((3, 2))}}}
    out, rep = copy_matching(target, source)
    assert np.all(out["params"]["a"]["kernel"] == 1) and np.all(out["params"]["b"]["kernel"] == 0)
    assert rep["copied"] == ["params/a/kernel"]
    assert rep["skipped"] == [{"path": "params/b/kernel", "source_shape": [3, 2], "target_shape": [3, 1]}]


def test_param_groups_scale_the_learning_rate():
    params = {"early": {"kernel": jnp.ones(3)}, "late": {"kernel": jnp.ones(3)}}
    tx = optax.chain(optax.sgd(0.1), scale_by_groups(params, [ParamGroup(params="early/*", learning_rate_scale=0.1)]))
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = tx.update(grads, tx.init(params), params)
    assert float(updates["late"]["kernel"][0]) == pytest.approx(-0.1)
    assert float(updates["early"]["kernel"][0]) == pytest.approx(-0.01)


def test_missing_source_is_a_clear_error(tmp_path):
    from nnctl.errors import SpecError

    with pytest.raises(SpecError, match="is not a finished run directory"):
        train_run(
            str(SPECS / "transfer_digits.yaml"),
            str(tmp_path / "ft"),
            (f"model.init_from={tmp_path / 'nope'}", "train.epochs=1"),
        )
    assert not (tmp_path / "ft").exists()  # nothing was created
