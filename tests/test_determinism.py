"""Same spec, same seed, same machine: identical metrics.jsonl and weights. Wall-clock time per epoch is
kept out of metrics.jsonl (it goes to timing.jsonl, metrics.csv and TensorBoard under the name `time`)."""

from __future__ import annotations

import json
import struct

import pytest

from nnctl import rundir
from nnctl.app import train_run

SPEC = """\
name: det
seed: 7
data: {source: builtin:iris, validation_split: 0.2, normalize: standard}
model:
  layers:
    - {type: dense, units: 8, activation: relu}
    - {type: dropout, rate: 0.3}
    - {type: dense, units: 3, activation: softmax}
train:
  loss: categorical_crossentropy
  metrics: [accuracy]
  optimizer: {type: adam, learning_rate: 0.02}
  batch_size: 16
  epochs: 12
  log: [csv, tensorboard]
"""


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("det")
    (d / "s.yaml").write_text(SPEC)
    a = train_run(str(d / "s.yaml"), out=str(d / "a")).run_dir
    b = train_run(str(d / "s.yaml"), out=str(d / "b")).run_dir
    c = train_run(str(d / "s.yaml"), out=str(d / "c"), seed=8).run_dir
    return a, b, c


def test_same_seed_identical_metrics_and_weights(two_runs):
    a, b, c = two_runs
    for name in (rundir.METRICS, rundir.WEIGHTS, rundir.OPT_STATE):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / rundir.METRICS).read_bytes() != (c / rundir.METRICS).read_bytes()


def test_time_is_kept_out_of_metrics_jsonl(two_runs):
    a = two_runs[0]
    recs = [json.loads(line) for line in (a / rundir.METRICS).read_text().splitlines()]
    assert len(recs) == 12 and all("time" not in r for r in recs)
    assert {"train/loss", "val/loss", "train/accuracy", "val/accuracy", "lr", "grad_norm", "epoch"} <= set(recs[0])
    timing = [json.loads(line) for line in (a / rundir.TIMING).read_text().splitlines()]
    assert [t["epoch"] for t in timing] == list(range(1, 13)) and all(t["time"] >= 0 for t in timing)


def test_csv_uses_the_same_names_plus_time(two_runs):
    import csv

    a = two_runs[0]
    rows = list(csv.DictReader((a / "metrics.csv").open()))
    recs = [json.loads(line) for line in (a / rundir.METRICS).read_text().splitlines()]
    assert len(rows) == 12
    assert set(rows[0]) == set(recs[0]) | {"time"}
    assert float(rows[3]["val/accuracy"]) == recs[3]["val/accuracy"]


def read_events(path):
    """Scalars of a TensorBoard event file (TFRecord framing, tensorboardX's own protobuf)."""
    from tensorboardX.proto import event_pb2

    data, out, i = path.read_bytes(), {}, 0
    while i < len(data):
        (n,) = struct.unpack("<Q", data[i : i + 8])
        ev = event_pb2.Event.FromString(data[i + 12 : i + 12 + n])
        i += 12 + n + 4
        for v in ev.summary.value:
            out.setdefault(v.tag, []).append((ev.step, v.simple_value))
    return out


def test_tensorboard_events(two_runs):
    a = two_runs[0]
    files = list((a / "tb").glob("events.out.tfevents.*"))
    assert len(files) == 1
    scalars = read_events(files[0])
    recs = [json.loads(line) for line in (a / rundir.METRICS).read_text().splitlines()]
    for tag in ("train/loss", "val/accuracy", "lr", "grad_norm", "time"):
        assert [s for s, _ in scalars[tag]] == list(range(1, 13)), tag
    assert scalars["val/loss"][4][1] == pytest.approx(recs[4]["val/loss"], rel=1e-6)


def test_tensorboard_missing_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    from nnctl.errors import NnctlError
    from nnctl.logs import RunLogs

    real = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("tensorboardX"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(NnctlError, match=r"pip install tensorboardX"):
        RunLogs(tmp_path, ("tensorboard",))
