"""Several outputs with loss weights (`model.outputs`, `train.loss_weights`): the loss is the weighted sum of
the outputs' losses, each output has its own records, predictions come from the model's output (the last
layer), and mistakes in the two keys are located spec errors."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from nnctl.errors import SpecError
from tests.conftest import SPECS

SPEC = str(SPECS / "digits_aux_heads.yaml")


def test_two_head_model_trains_and_its_loss_is_the_weighted_sum(tmp_path):
    from nnctl.app import restore, train_run

    res = train_run(SPEC, str(tmp_path / "run"), ("train.epochs=3", "data.test_split=0.5"))
    assert res.summary["status"] == "finished"
    for r in res.records:
        for split in ("train", "val"):
            total = 1.0 * r[f"{split}/main_loss"] + 0.3 * r[f"{split}/aux_loss"]
            assert r[f"{split}/loss"] == pytest.approx(total, rel=1e-5)
            assert 0.0 <= r[f"{split}/aux_accuracy"] <= 1.0
    first, last = res.records[0], res.records[-1]
    assert last["train/main_loss"] < first["train/main_loss"] and last["train/aux_loss"] < first["train/aux_loss"]
    assert last["val/accuracy"] > 0.8 and last["val/aux_accuracy"] > 0.5  # chance: 0.1
    # predictions are the main head's probabilities, not the auxiliary one's
    r = restore(tmp_path / "run")
    obj, params, ms = r.built.obj, r.weights["params"], r.weights["model_state"]
    x = np.asarray(r.built.data.x_test[:5])
    pred = obj.predict(params, ms, x)
    variables = {"params": params, **ms}
    main, aux = obj.net.apply(variables, x, outputs=("main", "aux"))
    np.testing.assert_allclose(pred, main, rtol=1e-6)
    np.testing.assert_allclose(obj.net.apply(variables, x), main, rtol=1e-6)  # the plain network: the last layer
    assert not np.allclose(main, aux)
    assert jax.tree.leaves(pred)[0].shape == (5, 10)


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (("model.outputs=[main, auxx]",), "unknown layer 'auxx'"),
        (("model.outputs=[aux]", "train.loss_weights=[1]"), "the last layer 'main'"),
        (("train.loss_weights=[1, 0.3, 0.3]",), "3 weights for 2 outputs"),
        (("model.outputs=null",), "train.loss_weights needs model.outputs"),
        (("model.outputs=[main, trunk]",), "output 'trunk' has shape (64,)"),
        (("train.loss_weights=[1, -1]",), "loss_weights"),
    ],
)
def test_output_mistakes_are_located_errors(overrides, fragment):
    from nnctl.spec import load_spec

    with pytest.raises(SpecError) as e:
        load_spec(SPEC, overrides)
    assert fragment in str(e.value)
