"""Training behaviour: batching, steps, clipping, freezing, non-finite losses, example specs (shrunk)."""

import json
import math

import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from nnctl.app import evaluate_run, train_run
from nnctl.errors import RunDirError
from tests.conftest import SPECS

BP = str(SPECS / "backprop_worked_example.yaml")


def weights(run_dir):
    return serialization.msgpack_restore((run_dir / "weights.msgpack").read_bytes())["params"]


INITIAL = {"dense_0": np.array([[0.15, 0.25], [0.20, 0.30]]), "dense_1": np.array([[0.40, 0.50], [0.45, 0.55]])}


@pytest.mark.parametrize(
    "clip,check",
    [
        ("{max_norm: 0.001}", lambda d: np.sqrt(sum((v**2).sum() for v in d.values())) <= 0.001 + 1e-7),
        (
            "{max_norm: 0.001, per_tensor: true}",
            lambda d: all(np.sqrt((v**2).sum()) <= 0.001 + 1e-7 for v in d.values()),
        ),
        ("{max_value: 0.0001}", lambda d: all(np.abs(v).max() <= 0.0001 + 1e-7 for v in d.values())),
    ],
)
def test_gradient_clipping_bounds_the_update(tmp_path, clip, check):
    res = train_run(
        BP,
        out=str(tmp_path / "r"),
        overrides=("train.epochs=1", "train.optimizer.learning_rate=1.0", f"train.gradient_clipping={clip}"),
    )
    w = weights(res.run_dir)
    delta = {k: np.asarray(w[k]["kernel"]) - INITIAL[k] for k in INITIAL}
    assert check(delta)
    rec = res.records[0]
    assert rec["clip_fraction"] == 1.0
    # the notes' gradients of w5..w8 and w1..w4 (biases are frozen, so they are not in the norm)
    grads = (
        0.0821670407,
        0.0826676278,
        -0.0226025404,
        -0.0227402422,
        0.000438568,
        0.000877136,
        0.000497713,
        0.000995425,
    )
    assert rec["grad_norm"] == pytest.approx(np.sqrt(sum(g * g for g in grads)), rel=1e-5)


def test_steps_and_short_last_batch(tmp_path):
    # 150 iris rows: 30 test, 24 validation, 96 train; batch 20 -> 5 batches, the last one of 16 rows
    res = train_run(
        str(SPECS / "iris.yaml"),
        out=str(tmp_path / "r"),
        overrides=(
            "train.epochs=null",
            "train.steps=12",
            "train.batch_size=20",
            "train.early_stopping=null",
            "train.evaluate_test=false",
        ),
    )
    assert "test" not in res.summary  # evaluate_test: false
    assert res.summary["steps"] == 12
    assert res.summary["epochs_run"] == 3 and res.summary["stop_reason"] == "steps"


def test_short_last_batch_counts_exactly(tmp_path):
    # everything frozen: the epoch's training loss is the plain mean over all 96 examples (batches 20 x 5)
    res = train_run(
        str(SPECS / "iris.yaml"),
        out=str(tmp_path / "r"),
        overrides=(
            "train.epochs=1",
            "train.batch_size=20",
            "train.early_stopping=null",
            "train.freeze=['*']",
            "model.layers[1].rate=0.0",
        ),
    )
    ev = evaluate_run(res.run_dir, "train")
    assert ev["examples"] == 96
    assert res.records[0]["train/loss"] == pytest.approx(ev["metrics"]["loss"], rel=1e-5)
    assert res.records[0]["train/accuracy"] == pytest.approx(ev["metrics"]["accuracy"])
    # train scored the held-out test split in its own process, as `nnctl eval` does from the run directory
    test = evaluate_run(res.run_dir)
    assert res.summary["test"]["metrics"] == test["metrics"] and res.summary["test"]["examples"] == 30
    assert (
        json.loads((res.run_dir / "summary.json").read_text())["test"]["confusion_matrix"] == test["confusion_matrix"]
    )


def test_steps_mode_compiles_the_step_once(tmp_path, monkeypatch):
    import nnctl.app.fitting as T

    made = []
    orig = T.steps_fns

    def spy(*args):
        fns = orig(*args)
        made.append(fns)
        return fns

    monkeypatch.setattr(T, "steps_fns", spy)
    train_run(
        str(SPECS / "iris.yaml"),
        out=str(tmp_path / "r"),
        overrides=("train.epochs=3", "train.fuse=steps", "train.early_stopping=null"),
    )
    assert (
        made[0].train.func._cache_size() == 1
    )  # (train binds the runtime inputs)  # the short last batch did not recompile


def test_nonfinite_loss_stops_and_keeps_last_good_weights(tmp_path):
    res = train_run(
        str(SPECS / "sine_regression.yaml"),
        out=str(tmp_path / "r"),
        overrides=(
            "train.optimizer={type: sgd, learning_rate: 1.0e+6}",
            "train.epochs=20",
            "train.early_stopping=null",
        ),
    )
    s = res.summary
    assert s["status"] == "failed" and s["stop_reason"] == "nonfinite"
    assert s["nonfinite"]["quantity"] in ("loss", "gradients") and s["nonfinite"]["epoch"] >= 1
    assert "non-finite" in s["message"] and f"epoch {s['nonfinite']['epoch']}" in s["message"]
    w = weights(res.run_dir)
    assert all(np.all(np.isfinite(np.asarray(v))) for layer in w.values() for v in layer.values())


def test_skip_step_keeps_training(tmp_path):
    res = train_run(
        str(SPECS / "sine_regression.yaml"),
        out=str(tmp_path / "r"),
        overrides=(
            "train.optimizer={type: sgd, learning_rate: 1.0e+6}",
            "train.epochs=3",
            "train.on_nonfinite=skip_step",
            "train.early_stopping=null",
        ),
    )
    assert res.summary["epochs_run"] == 3
    assert sum(r["skipped_steps"] for r in res.records) > 0


def test_trainable_false_and_regularizer(tmp_path):
    res = train_run(BP, out=str(tmp_path / "r"), overrides=("train.epochs=5", "model.layers[0].trainable=false"))
    w = weights(res.run_dir)
    np.testing.assert_array_equal(np.asarray(w["dense_0"]["kernel"]), INITIAL["dense_0"].astype(np.float32))
    assert not np.allclose(np.asarray(w["dense_1"]["kernel"]), INITIAL["dense_1"])
    reg = train_run(
        BP, out=str(tmp_path / "g"), overrides=("train.epochs=1", "model.layers[0].kernel_regularizer={l2: 1.0}")
    )
    assert reg.records[0]["train/loss"] == pytest.approx(0.298371109 + (INITIAL["dense_0"] ** 2).sum(), rel=1e-5)


def test_schedule_drives_logged_learning_rate(tmp_path):
    res = train_run(
        BP,
        out=str(tmp_path / "r"),
        overrides=(
            "train.epochs=4",
            "train.optimizer.learning_rate={type: exponential, initial: 0.5, decay_rate: 0.5, decay_steps: 1}",
        ),
    )
    # lr logged after each epoch's step
    assert [r["lr"] for r in res.records] == pytest.approx([0.25, 0.125, 0.0625, 0.03125])


def test_run_directory_contents_and_no_overwrite(tmp_path):
    res = train_run(str(SPECS / "xor.yaml"), out=str(tmp_path / "r"), overrides=("train.epochs=3",))
    for f in (
        "spec.yaml",
        "weights.msgpack",
        "opt_state.msgpack",
        "scalers.json",
        "rng.json",
        "metrics.jsonl",
        "summary.json",
    ):
        assert (res.run_dir / f).exists(), f
    lines = (res.run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["epoch"] == 1
    with pytest.raises(RunDirError, match="already exists"):
        train_run(str(SPECS / "xor.yaml"), out=str(tmp_path / "r"))
    # default directories are suffixed, never overwritten
    a = train_run(str(SPECS / "xor.yaml"), overrides=("train.epochs=1",), runs_root=str(tmp_path / "runs"))
    b = train_run(str(SPECS / "xor.yaml"), overrides=("train.epochs=1",), runs_root=str(tmp_path / "runs"))
    assert a.run_dir.name == "xor" and b.run_dir.name == "xor-2"


@pytest.mark.parametrize(
    "spec,over,metric,least",
    [
        ("iris.yaml", ("train.epochs=40",), "accuracy", 0.8),
        ("digits_mlp.yaml", ("train.epochs=6",), "accuracy", 0.85),
        ("diabetes_regression.yaml", ("train.epochs=20",), "r2", 0.2),
        ("sine_regression.yaml", ("train.epochs=40",), "r2", 0.5),
        ("residual_mlp.yaml", ("train.epochs=4",), "accuracy", 0.85),
        ("loans_csv.yaml", ("train.epochs=15",), "accuracy", 0.7),
    ],
)
def test_example_specs_train_shrunk(tmp_path, spec, over, metric, least):
    res = train_run(str(SPECS / spec), out=str(tmp_path / "r"), overrides=over)
    ev = evaluate_run(res.run_dir, "test")
    assert ev["metrics"][metric] >= least and math.isfinite(ev["metrics"]["loss"])


def test_regression_metrics_are_in_the_datas_units(tmp_path):
    from nnctl.app import predict_run, restore

    res = train_run(
        str(SPECS / "sine_regression.yaml"),
        out=str(tmp_path / "r"),
        overrides=("train.epochs=5", "data.normalize_target=standard", "train.metrics=[mae, rmse, r2]"),
    )
    ev = evaluate_run(res.run_dir, "test")
    data = restore(res.run_dir).built.data
    np.savez(tmp_path / "x.npz", x=data.x_test)
    pred = np.asarray(predict_run(res.run_dir, str(tmp_path / "x.npz"))["values"]).reshape(-1)
    y = data.target_scaler.invert(data.y_test).reshape(-1)
    assert ev["metrics"]["mae"] == pytest.approx(np.abs(pred - y).mean(), rel=1e-4)
    assert ev["metrics"]["rmse"] == pytest.approx(np.sqrt(((pred - y) ** 2).mean()), rel=1e-4)
    assert ev["metrics"]["r2"] == pytest.approx(1 - ((pred - y) ** 2).sum() / ((y - y.mean()) ** 2).sum(), rel=1e-4)


def test_classification_metrics_on_a_regression_task_are_spec_errors(tmp_path):
    from nnctl.errors import SpecError

    spec = tmp_path / "s.yaml"
    spec.write_text(
        "data: {source: builtin:diabetes}\nmodel: {layers: [{type: dense, units: 1}]}\n"
        "train: {loss: mse, metrics: [mae, auc], epochs: 1}\n"
    )
    with pytest.raises(SpecError) as e:
        train_run(str(spec), out=str(tmp_path / "r"))
    assert "s.yaml:3:" in str(e.value) and "train.metrics[1]: 'auc' does not apply to a regression task" in str(e.value)
    assert not (tmp_path / "r").exists()  # refused before a run directory was made


CW_SPEC = """
seed: 0
data: {source: npz, path: d.npz, x: x, y: y, task: binary}
model: {layers: [{type: dense, units: 1, activation: sigmoid}]}
train: {loss: binary_crossentropy, metrics: [recall], epochs: 30, batch_size: 50,
        optimizer: {type: adam, learning_rate: 0.05}}
"""


def _imbalanced(tmp_path):
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.1).astype(np.int64)  # 10% positives, overlapping with the negatives
    x = rng.normal(size=(500, 2)).astype(np.float32) + y[:, None] * 1.5
    np.savez(tmp_path / "d.npz", x=x, y=y)
    (tmp_path / "s.yaml").write_text(CW_SPEC)
    return y


def test_class_weight_scales_each_examples_training_loss(tmp_path):
    from sklearn.utils.class_weight import compute_class_weight

    from nnctl.app import build
    from nnctl.data.prepare import prepare
    from nnctl.spec import load_spec

    y = _imbalanced(tmp_path)
    loaded = load_spec(tmp_path / "s.yaml", ("train.class_weight=balanced",))
    data = prepare(loaded.spec, loaded.analysis, loaded.base_dir)
    obj = build(loaded, data).obj
    np.testing.assert_allclose(obj.class_weight, compute_class_weight("balanced", classes=np.arange(2), y=y), rtol=1e-6)
    logits = jnp.asarray(np.random.default_rng(1).normal(size=(8, 1)), jnp.float32)
    yb = jnp.asarray(data.y_train[:8])
    want = np.asarray(obj.per_example(logits, yb)) * np.asarray(obj.class_weight)[np.asarray(yb).astype(int).ravel()]
    np.testing.assert_allclose(np.asarray(obj.train_per_example(logits, yb)), want, rtol=1e-6)


def test_balanced_class_weight_raises_minority_recall(tmp_path):
    _imbalanced(tmp_path)
    plain = train_run(str(tmp_path / "s.yaml"), out=str(tmp_path / "plain"))
    weighted = train_run(str(tmp_path / "s.yaml"), out=str(tmp_path / "w"), overrides=("train.class_weight=balanced",))
    assert weighted.summary["final"]["train/recall"] > plain.summary["final"]["train/recall"] + 0.2


@pytest.mark.parametrize(
    "value, fragments",
    [
        ("{7: 3}", ["train.class_weight.7", "unknown class", "indices 0..1"]),
        ("{1: -1}", ["train.class_weight.1", "weight must be > 0, got -1"]),
    ],
)
def test_bad_class_weights_are_located_spec_errors(tmp_path, value, fragments):
    from nnctl.errors import SpecError

    _imbalanced(tmp_path)
    with pytest.raises(SpecError) as e:
        train_run(str(tmp_path / "s.yaml"), out=str(tmp_path / "r"), overrides=(f"train.class_weight={value}",))
    assert all(f in str(e.value) for f in fragments), str(e.value)


def test_class_weight_on_regression_is_refused(tmp_path):
    from nnctl.errors import SpecError

    with pytest.raises(SpecError, match="class_weight applies to one class label per example, not to a regression"):
        train_run(
            str(SPECS / "diabetes_regression.yaml"), out=str(tmp_path / "r"), overrides=("train.class_weight=balanced",)
        )
