"""Data streamed from host memory (`train.data_placement: stream`): the same batches, the same numbers as a
device-resident run, with only a few windows of batches on the device at a time."""

from __future__ import annotations

import json
import os
import signal
import threading

import numpy as np
import pytest

from nnctl.app import batched_predict, evaluate_run, resume_run, train_run
from nnctl.data.stream import choose_placement, eval_index, window_size, windows

SPEC = """\
name: stream
seed: 3
data: {source: builtin:digits, validation_split: 0.2, test_split: 0.1, normalize: standard}
model:
  layers:
    - {type: dense, units: 16, activation: relu}
    - {type: dropout, rate: 0.2}
    - {type: dense, units: 10, activation: softmax}
train:
  loss: categorical_crossentropy
  metrics: [accuracy]
  optimizer: {type: adam, learning_rate: 0.003}
  batch_size: 100
  epochs: 4
  checkpoint: {every_epochs: 1, keep: 2}
"""


def spec_file(tmp_path, extra: str = ""):
    p = tmp_path / "spec.yaml"
    p.write_text(SPEC + extra)
    return p


def metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def numbers(recs):
    return [{k: v for k, v in r.items() if k.startswith(("train/", "val/"))} for r in recs]


@pytest.fixture(scope="module")
def device_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("dev")
    return train_run(str(spec_file(d)), out=str(d / "run"), overrides=("train.data_placement=device",))


@pytest.mark.parametrize("window", [1, 3, 64])
def test_streamed_training_matches_device_resident(tmp_path, device_run, window):
    """Windows of 1 (one call per step), 3 (ten batches: three full windows and a short one) and all batches:
    every epoch's numbers and the final weights equal the device-resident run's."""
    res = train_run(
        str(spec_file(tmp_path)),
        out=str(tmp_path / "run"),
        overrides=("train.data_placement=stream", f"train.stream.window={window}"),
    )
    assert res.summary["data_placement"] == "stream"
    a, b = numbers(metrics(device_run.run_dir)), numbers(metrics(res.run_dir))
    assert len(a) == len(b) == 4
    for ra, rb in zip(a, b):
        assert ra.keys() == rb.keys()
        for k in ra:
            assert rb[k] == pytest.approx(ra[k], rel=1e-5, abs=1e-6), k
    from nnctl import rundir

    wa = rundir.read_msgpack(device_run.run_dir / rundir.WEIGHTS)
    wb = rundir.read_msgpack(res.run_dir / rundir.WEIGHTS)
    import jax

    for x, y in zip(jax.tree.leaves(wa), jax.tree.leaves(wb)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_eval_and_predict_of_a_streamed_run(tmp_path, device_run):
    res = train_run(
        str(spec_file(tmp_path)),
        out=str(tmp_path / "run"),
        overrides=("train.data_placement=stream", "train.stream.window=2"),
    )
    a = evaluate_run(device_run.run_dir, "test")
    b = evaluate_run(res.run_dir, "test")
    assert b["examples"] == a["examples"] > 0
    for k, v in a["metrics"].items():
        assert b["metrics"][k] == pytest.approx(v, rel=1e-5, abs=1e-6)
    assert b["confusion_matrix"] == a["confusion_matrix"]


def test_signal_mid_epoch_while_streaming_resumes_identical(tmp_path):
    """A signal is honoured after the window in flight; the partial epoch is dropped and redone on resume."""
    from nnctl import rundir
    from nnctl.errors import TrainingInterrupted

    over = ("train.data_placement=stream", "train.stream.window=1", "train.epochs=6")
    ref = train_run(str(spec_file(tmp_path)), out=str(tmp_path / "ref"), overrides=over).run_dir
    run = tmp_path / "run"

    def on_epoch(r):
        if r["epoch"] == 2:
            threading.Timer(0.002, os.kill, (os.getpid(), signal.SIGTERM)).start()

    with pytest.raises(TrainingInterrupted) as e:
        train_run(str(spec_file(tmp_path)), out=str(run), overrides=over, on_epoch=on_epoch)
    assert e.value.exit_code == 143
    assert rundir.read_json(run / rundir.SUMMARY)["status"] == "interrupted"
    resume_run(run)
    for name in (rundir.WEIGHTS, rundir.OPT_STATE, rundir.METRICS):
        if name == rundir.METRICS:
            assert numbers(metrics(run)) == numbers(metrics(ref))
        else:
            assert (run / name).read_bytes() == (ref / name).read_bytes()


def test_auto_streams_when_the_data_exceeds_the_device_budget(tmp_path, monkeypatch):
    assert choose_placement("auto", 10) == "device"
    monkeypatch.setenv("NNCTL_DEVICE_DATA_BUDGET", "1000")
    assert choose_placement("auto", 1001) == "stream" and choose_placement("device", 10**12) == "device"
    res = train_run(str(spec_file(tmp_path)), out=str(tmp_path / "run"), overrides=("train.epochs=1",))
    assert res.summary["data_placement"] == "stream"


def test_windows_cover_every_batch_in_order_and_close_early():
    x = np.arange(50, dtype=np.float32).reshape(25, 2)
    y = np.arange(25, dtype=np.int32)
    rng = np.random.default_rng(0)
    idx = rng.permutation(28) % 25
    idx = idx.reshape(7, 4)
    mask = np.ones((7, 4), np.float32)
    mask[-1, 1:] = 0
    put = lambda t: tuple(np.array(a) for a in t)
    got = list(windows(x, y, idx, mask, 3, put, prefetch=2))
    assert [g[0] for g in got] == [0, 3, 6] and [len(g[1]) for g in got] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate([g[2] for g in got]), idx)
    np.testing.assert_array_equal(np.concatenate([g[1] for g in got]), x[idx])
    np.testing.assert_array_equal(np.concatenate([g[3] for g in got]), mask)
    gen = windows(x, y, idx, mask, 1, put, prefetch=3)
    next(gen)
    gen.close()  # a stop signal: the windows in flight are waited for, nothing hangs


def test_window_size_and_eval_index():
    assert window_size(None, "steps", 1000, 50) == 1
    assert window_size(None, "epochs", 1 << 20, 500) == 64
    assert window_size(None, "epochs", 32 << 20, 500) == 2
    assert window_size(None, "epochs", 1000, 5) == 5
    assert window_size(7, "steps", 1000, 50) == 7
    idx, mask = eval_index(10, 4)
    assert idx.shape == (3, 4) and mask.sum() == 10 and idx.ravel()[10:].tolist() == [0, 1]


def test_batched_predict_equals_one_call():
    import jax.numpy as jnp

    w = {"params": {"k": jnp.arange(6.0).reshape(3, 2)}, "model_state": {}}
    f = lambda p, s, x: jnp.tanh(x @ p["k"])
    x = np.random.default_rng(1).normal(size=(11, 3)).astype(np.float32)
    np.testing.assert_allclose(batched_predict(f, w, x, 4), np.asarray(f(w["params"], {}, x)), rtol=1e-6)
