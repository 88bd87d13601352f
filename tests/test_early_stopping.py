"""Early stopping pinned on fixed sequences (Keras 3 semantics + Lightning thresholds), and the fused
multi-epoch loop stopping exactly where per-epoch checks stop."""

import math

import pytest

from nnctl.early_stopping import REASONS, EarlyStopping


def run(seq, **kw):
    es = EarlyStopping.create(**kw)
    for epoch, v in enumerate(seq):
        es, _ = es.update(epoch, v)
        if bool(es.stopped):
            return epoch, REASONS[int(es.reason)], int(es.best_epoch)
    return None, "", int(es.best_epoch)


@pytest.mark.parametrize(
    "seq,kw,stop_epoch,reason,best",
    [
        # the patience-th epoch in a row without improvement stops (0-based epoch index)
        ([1.0, 0.9, 0.95, 0.92, 0.91], dict(patience=2), 3, "patience", 1),
        ([1.0, 0.9, 0.95, 0.92, 0.91], dict(patience=3), 4, "patience", 1),
        # min_delta: 0.97 is not better than 1.0 by more than 0.05
        ([1.0, 0.97, 0.96, 0.9], dict(patience=2, min_delta=0.05), 2, "patience", 0),
        # baseline: improving epochs never stop, but the counter only resets once the baseline is beaten
        ([1.0, 0.9, 0.95], dict(patience=2, baseline=0.5), 2, "patience", 1),
        ([1.0, 0.4, 0.45, 0.46], dict(patience=2, baseline=0.5), 3, "patience", 1),
        # epochs before start_from_epoch are ignored
        ([5, 4, 3, 3, 3], dict(patience=1, start_from_epoch=2), 3, "patience", 2),
        # max mode
        ([0.5, 0.6, 0.6, 0.6], dict(mode="max", patience=2), 3, "patience", 1),
        # patience 0 stops at the first non-improving epoch (never the first epoch)
        ([1.0, 2.0], dict(patience=0), 1, "patience", 0),
        # thresholds
        ([1.0, 0.6, 0.4, 0.3], dict(patience=10, stopping_threshold=0.5), 2, "stopping_threshold", 2),
        ([0.5, 0.7, 0.8], dict(mode="max", patience=10, stopping_threshold=0.75), 2, "stopping_threshold", 2),
        ([1.0, 20.0], dict(patience=10, divergence_threshold=10.0), 1, "divergence_threshold", 0),
        ([1.0, math.nan], dict(patience=10), 1, "nonfinite_monitor", 0),
        # never stops
        ([3, 2, 1, 0.5], dict(patience=1), None, "", 3),
    ],
)
def test_fixed_sequences(seq, kw, stop_epoch, reason, best):
    assert run(seq, **kw) == (stop_epoch, reason, best)


def test_fused_loop_stops_where_per_step_loop_stops(tmp_path):
    from nnctl.app import train_run
    from tests.conftest import SPECS

    common = ("train.epochs=60", "train.early_stopping.patience=3", "train.early_stopping.min_delta=0.01")
    fused = train_run(str(SPECS / "iris.yaml"), out=str(tmp_path / "a"), overrides=common + ("train.fuse=epochs",))
    stepped = train_run(str(SPECS / "iris.yaml"), out=str(tmp_path / "b"), overrides=common + ("train.fuse=steps",))
    assert fused.summary["stop_reason"] == "patience"
    assert fused.summary["epochs_run"] == stepped.summary["epochs_run"] < 60
    assert fused.summary["best_epoch"] == stepped.summary["best_epoch"]
    for a, b in zip(fused.records, stepped.records):
        assert a["val/loss"] == pytest.approx(b["val/loss"], rel=1e-4)
    # the same sequence through the host-side value reproduces the stop
    seq = [r["val/loss"] for r in fused.records]
    epoch, reason, best = run(seq, patience=3, min_delta=0.01)
    assert (epoch + 1, best + 1) == (fused.summary["epochs_run"], fused.summary["best_epoch"])


def test_restore_best_even_without_stopping(tmp_path):
    from nnctl.app import evaluate_run, train_run
    from tests.conftest import SPECS

    res = train_run(
        str(SPECS / "iris.yaml"),
        out=str(tmp_path / "r"),
        overrides=("train.epochs=15", "train.early_stopping.patience=100"),
    )
    assert res.summary["status"] == "finished" and res.summary["restored_best"]
    val = evaluate_run(res.run_dir, "val")
    assert val["metrics"]["loss"] == pytest.approx(res.summary["best_value"], rel=1e-4)


@pytest.mark.parametrize("monitor", ["val_auc", "val_accuracy", "val_loss"])
def test_monitor_direction_comes_from_the_metric_registry(tmp_path, monitor):
    """Early stopping on any registered metric records its best epoch in its own direction (auc: max)."""
    from nnctl.app import train_run
    from nnctl.metrics import METRICS
    from tests.conftest import SPECS

    res = train_run(
        str(SPECS / "iris.yaml"),
        out=str(tmp_path / "r"),
        overrides=(
            "train.epochs=12",
            "train.metrics=[accuracy, auc]",
            f"train.early_stopping={{monitor: {monitor}, patience: 100}}",
        ),
    )
    s = res.summary
    key = monitor.replace("val_", "val/")
    values = [r[key] for r in res.records]
    assert s["monitor"] == key and s["best_epoch"] is not None
    metric = key.split("/")[1]
    best = max(values) if metric in METRICS and METRICS.get(metric).mode == "max" else min(values)
    assert s["best_value"] == pytest.approx(best)
    assert values[s["best_epoch"] - 1] == pytest.approx(best)


def test_best_epoch_without_early_stopping_uses_the_metric_direction(tmp_path):
    """No early stopping: the best epoch of the default monitor (val/loss: lowest)."""
    from nnctl.app import train_run
    from tests.conftest import SPECS

    res = train_run(
        str(SPECS / "iris.yaml"), out=str(tmp_path / "r"), overrides=("train.epochs=8", "train.early_stopping=null")
    )
    losses = [r["val/loss"] for r in res.records]
    assert res.summary["best_epoch"] == 1 + losses.index(min(losses))
