"""The layer families end to end: example specs validate and train (shrunken with overrides), `inspect`
shows shapes, warnings and non-trainable statistics, and sequence tagging runs with (N, T) labels."""

from __future__ import annotations

import pytest

from tests.conftest import SPECS

EXAMPLES = [
    "digits_cnn",
    "digits_resnet",
    "digits_inception",
    "waveforms_lstm",
    "parity_bigru",
    "token_tagger",
    "majority_attention",
    "signal_bigru",
]

# tiny runs: one epoch over a few dozen examples, no validation split (one compile fewer)
SHRINK = {
    "digits": ("train.epochs=1", "data.validation_split=0", "data.test_split=0.9"),
    "generated": ("train.epochs=1", "data.n_samples=96", "data.validation_split=0", "train.batch_size=32"),
}
FAST = {"digits_cnn", "signal_bigru", "token_tagger"}  # one conv, one recurrent, one many-to-many run


@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in EXAMPLES])
def test_example_spec_trains_shrunken(name, tmp_path):
    from nnctl.app import evaluate_run, train_run

    shrink = SHRINK["digits" if name.startswith("digits") else "generated"]
    res = train_run(str(SPECS / f"{name}.yaml"), str(tmp_path / name), shrink)
    assert res.summary["status"] == "finished"
    assert res.summary["task"] == "classification"
    if name == "token_tagger":  # per-step labels through eval: every step of every test sequence is counted
        ev = evaluate_run(tmp_path / name, "test")
        assert 0.0 <= ev["metrics"]["accuracy"] <= 1.0
        assert sum(map(sum, ev["confusion_matrix"])) == ev["examples"] * 20
        import numpy as np

        from nnctl.app import predict_run, restore

        x = restore(tmp_path / name).built.data.x_test[:3]
        np.savez(tmp_path / "x.npz", x=x)
        predict_run(tmp_path / name, str(tmp_path / "x.npz"), str(tmp_path / "tags.csv"))
        lines = (tmp_path / "tags.csv").read_text().splitlines()
        assert len(lines) == 4 and lines[0].split(",")[:2] == ["class_0", "class_1"] and len(lines[1].split(",")) == 20


def test_example_specs_document_a_measured_accuracy():
    for name in EXAMPLES:
        head = (SPECS / f"{name}.yaml").read_text().split("\nname:")[0]
        assert "Full settings" in head and "XX%" not in head, name


def _loaded(name, *overrides):
    from nnctl.spec import load_spec

    return load_spec(SPECS / f"{name}.yaml", overrides)


def test_tagger_labels_are_per_step():
    from nnctl.data.prepare import prepare

    loaded = _loaded("token_tagger", "data.n_samples=50")
    assert loaded.analysis.output_shape == (20, 2)
    data = prepare(loaded.spec, loaded.analysis, loaded.base_dir)
    assert data.task == "classification" and data.y_train.shape[1:] == (20,)


def test_per_step_confusion_counts_every_step():
    import jax.numpy as jnp

    from nnctl.metrics import batch_sums

    out = jnp.asarray([[[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], [[0.1, 0.9], [0.1, 0.9], [0.9, 0.1]]])
    y = jnp.asarray([[0, 1, 1], [1, 1, 1]], jnp.int32)
    cm = batch_sums({"confusion"}, out, y, jnp.asarray([1.0, 0.0]), 2)["confusion"]  # 2nd example is padding
    assert cm.tolist() == [[1, 0], [1, 1]]


def test_inspect_model_shows_nested_shapes_and_warnings():
    from nnctl.app.inspect import model_report

    rep = model_report(_loaded("digits_resnet"))
    shapes = {r["name"]: r["output_shape"] for r in rep["layers"]}
    assert shapes["residual_3"] == [4, 4, 32]
    assert shapes["residual_3/conv2d_0"] == [4, 4, 32]
    assert shapes["global_avg_pool_4"] == [32]
    rep = model_report(_loaded("signal_bigru"))
    assert [r["output_shape"] for r in rep["layers"]] == [[40, 1], [19, 25], [19, 12], [228], [10]]
    assert any("(40 + 2 − 5)/2 + 1 = 19.5" in w for w in rep["warnings"])


def test_batch_norm_statistics_are_non_trainable_in_inspect_params():
    from nnctl.app.inspect import params_report

    rows = params_report(_loaded("digits_resnet"))["parameters"]
    stats = [r for r in rows if "mean" in r["path"] or "var" in r["path"]]
    assert stats and all(r["kind"] == "non-trainable" and r["path"].startswith("batch_stats:") for r in stats)
    assert {r["path"] for r in rows if r["kind"] == "trainable"} >= {
        "residual_3/projection/kernel",
        "residual_3/conv2d_0/kernel",
    }


def test_cli_inspect_model_and_validate_print_the_tiling_warning():
    from typer.testing import CliRunner

    from nnctl.cli import app

    for args in (["inspect", "model"], ["validate"]):
        r = CliRunner().invoke(app, [*args, str(SPECS / "signal_bigru.yaml")], env={"COLUMNS": "200"})
        assert r.exit_code == 0, r.output
        assert "19.5" in r.output and "the last step is dropped" in r.output


def test_kernel_larger_than_input_is_a_located_spec_error(tmp_path):
    from nnctl.errors import SpecError
    from nnctl.spec import load_text

    text = (SPECS / "digits_cnn.yaml").read_text().replace("kernel_size: 3, padding: same", "kernel_size: 9", 1)
    with pytest.raises(SpecError) as e:
        load_text(text, "cnn.yaml")
    msg = str(e.value)
    assert "model.layers[0]" in msg and "kernel (9) is larger than the padded input (8 + 0 = 8)" in msg
