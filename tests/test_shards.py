"""Data larger than memory: `nnctl data convert` writes a shard folder, `data.source: shards` streams it from
disk. The same batches and numbers as the in-memory streamed run; resume after a signal mid-epoch is
bit-identical; a truncated or mismatched data set is refused with an error naming the file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nnctl import rundir
from nnctl.app import predict_run, resume_run, train_run
from nnctl.app.convert import convert_data
from nnctl.cli import app
from nnctl.data.convert_read import Chunks
from nnctl.data.scaling import Scaler
from nnctl.data.shard_writer import ShardWriter, partial_dir, verify
from nnctl.data.shards import Rows, Store
from nnctl.errors import DataError, RunDirError, TrainingInterrupted

BASE = """\
name: shards
seed: 3
model:
  layers:
    - {type: dense, units: 16, activation: relu}
    - {type: dense, units: 4, activation: softmax}
train:
  loss: categorical_crossentropy
  metrics: [accuracy]
  optimizer: {type: adam, learning_rate: 0.003}
  batch_size: 50
  epochs: 3
  data_placement: stream
  stream: {window: 3}
  checkpoint: {every_epochs: 1, keep: 2}
"""
DATA = "validation_split: 0.2, test_split: 0.1, normalize: minmax"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("shards")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 12)).astype(np.float32)
    y = ((x[:, 0] + x[:, 1] > 0) * 2 + (x[:, 2] > 0)).astype(np.int64)
    np.savez(d / "d.npz", x=x, y=y)
    convert_data(d / "d.npz", d / "d.shards", chunk_rows=70, shard_mb=0.01)  # 7 blocks, 3 shards of 218 rows
    return d, x, y


def spec(d: Path, data: str, window: int = 3, epochs: int = 3) -> str:
    p = d / f"spec{abs(hash(data))}-{window}-{epochs}.yaml"
    text = BASE.replace("window: 3", f"window: {window}").replace("epochs: 3", f"epochs: {epochs}")
    p.write_text(text + f"data: {{{data}, {DATA}}}\n")
    return str(p)


def lines(run: Path) -> list[str]:
    return (run / rundir.METRICS).read_text().splitlines()


def test_convert_writes_the_rows_in_order_in_checked_shards(files):
    d, x, y = files
    m = json.loads((d / "d.shards" / "manifest.json").read_text())
    assert m["rows"] == 600 and [s["rows"] for s in m["shards"]] == [218, 218, 164]
    store = Store(d / "d.shards")
    rows = Rows(store, np.arange(600), (12,))
    np.testing.assert_array_equal(np.asarray(rows), x)
    np.testing.assert_array_equal(store.y, y)
    idx = np.array([599, 0, 250, 417, 3])
    np.testing.assert_array_equal(rows.take(idx, np.empty((5, 12), np.float32)), x[idx])
    assert verify(d / "d.shards") == []


def test_disk_streamed_training_equals_the_in_memory_streamed_run(files, tmp_path, monkeypatch):
    """Same split, same minmax statistics (one pass over the shards), same batches: bit-identical records and
    weights. The data set is never read whole: only the small test split is (saved with the run)."""
    d, _, _ = files
    a = train_run(spec(d, "source: npz, path: d.npz, x: x, y: y"), out=str(tmp_path / "a")).run_dir

    whole: list[int] = []
    real_array = Rows.__array__
    monkeypatch.setattr(Rows, "__array__", lambda self, *a, **k: whole.append(len(self)) or real_array(self, *a, **k))
    reads: list[int] = []
    real = Store.read
    monkeypatch.setattr(Store, "read", lambda self, g, out: reads.append(len(g)) or real(self, g, out))
    b = train_run(spec(d, "source: shards, path: d.shards"), out=str(tmp_path / "b")).run_dir
    assert lines(a) == lines(b)
    for name in (rundir.WEIGHTS, rundir.OPT_STATE):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert whole == [60]  # the test split (10%), saved in the run directory because it is small
    assert len(reads) > 10
    assert sorted(reads)[-3] <= 3 * 50  # every read but the statistics pass and the test split: one window
    assert predict_run(b, str(d / "d.shards"))["examples"] == 600  # predict reads a converted folder too


def test_signal_mid_epoch_while_streaming_from_disk_resumes_identical(files, tmp_path):
    """Resumed on other data (the shards converted anew), a run is refused; on its own data it ends
    bit-identical to an uninterrupted run."""
    d, _, _ = files
    own = d / "own.shards"  # its own copy (changed below), named relative to the spec (absolute in the run)
    shutil.copytree(d / "d.shards", own)
    s = spec(d, "source: shards, path: own.shards", window=1, epochs=5)
    ref = train_run(s, out=str(tmp_path / "ref")).run_dir
    run = tmp_path / "run"

    def on_epoch(r):
        if r["epoch"] == 2:
            threading.Timer(0.002, os.kill, (os.getpid(), signal.SIGINT)).start()

    with pytest.raises(TrainingInterrupted):
        train_run(s, out=str(run), on_epoch=on_epoch)
    assert rundir.read_json(run / rundir.SUMMARY)["status"] == "interrupted"
    manifest = (own / "manifest.json").read_text()
    edit_manifest(own, lambda m: m["shards"][0].update(x_sha256="0" * 64))  # the data set was converted anew
    with pytest.raises(RunDirError, match=r"cannot be resumed: the data of .* changed since this run was trained"):
        resume_run(run)
    (own / "manifest.json").write_text(manifest)
    resume_run(run)
    assert lines(run) == lines(ref)
    for name in (rundir.WEIGHTS, rundir.OPT_STATE):
        assert (run / name).read_bytes() == (ref / name).read_bytes()


AE = """\
name: ae
seed: 0
data: {{{data}, task: autoencoder, normalize: minmax}}
model:
  layers: [{{type: dense, units: 4, activation: relu}}, {{type: dense, units: 12}}]
train: {{loss: mse, batch_size: 100, epochs: 1, data_placement: stream, evaluate_test: false}}
"""


def test_an_autoencoder_streams_its_targets_from_disk_too(files, tmp_path):
    d, _, _ = files
    runs = []
    for i, data in enumerate(("source: shards, path: d.shards", "source: npz, path: d.npz, x: x, y: x")):
        (d / f"ae{i}.yaml").write_text(AE.format(data=data))
        runs.append(train_run(str(d / f"ae{i}.yaml"), out=str(tmp_path / f"r{i}")).run_dir)
    assert lines(runs[0]) == lines(runs[1])
    assert (runs[0] / rundir.WEIGHTS).read_bytes() == (runs[1] / rundir.WEIGHTS).read_bytes()


def test_streaming_statistics_equal_the_in_memory_ones():
    x = np.random.default_rng(1).normal(3, 2, size=(1000, 5)).astype(np.float32)
    blocks = lambda: (x[i : i + 130] for i in range(0, 1000, 130))
    for kind in ("standard", "minmax", "global_standard", "global_minmax", "none"):
        a, b = Scaler.fit(kind, x), Scaler.fit_blocks(kind, blocks())
        np.testing.assert_allclose(b.shift, a.shift, rtol=1e-6)
        np.testing.assert_allclose(b.scale, a.scale, rtol=1e-5)


def copy_of(files, tmp_path) -> Path:
    root = tmp_path / "copy.shards"
    shutil.copytree(files[0] / "d.shards", root)
    return root


def edit_manifest(root: Path, f) -> None:
    m = json.loads((root / "manifest.json").read_text())
    f(m)
    (root / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: (r / "manifest.json").unlink(), r"manifest.json: missing: .* is not a complete data set"),
        (
            lambda r: edit_manifest(r, lambda m: m["shards"][0].update(rows=217)),
            r"the shards hold 599 rows but the manifest says 600",
        ),
        (
            lambda r: edit_manifest(r, lambda m: (m["shards"][0].update(rows=217), m.update(rows=599))),
            r"x-00000\.npy: the shard holds shape \[218, 12\] but the manifest says \[217, 12\]",
        ),
        (
            lambda r: edit_manifest(r, lambda m: m["x"].update(dtype="float64")),
            r"x-00000\.npy: the shard's dtype is float32 but the manifest says float64",
        ),
        (lambda r: (r / "x-00001.npy").unlink(), r"x-00001\.npy: missing or unreadable shard"),
        (
            lambda r: os.truncate(r / "x-00002.npy", 1000),
            r"x-00002\.npy: the file has 1,000 bytes but its \[164, 12\] rows need .*: truncated",
        ),
        (lambda r: (r / "manifest.json").write_text("{"), r"manifest.json: not a readable manifest"),
        (lambda r: edit_manifest(r, lambda m: m.pop("shards")), r"manifest.json: manifest has no 'shards'"),
    ],
)
def test_damaged_data_sets_are_refused_with_the_file_named(files, tmp_path, damage, message):
    root = copy_of(files, tmp_path)
    damage(root)
    with pytest.raises(DataError, match=message):
        Store(root)


def test_an_interrupted_convert_leaves_no_data_set_and_a_rerun_finishes(files, tmp_path, monkeypatch):
    d, x, y = files
    out = tmp_path / "out"

    def stopping(p, xn, yn, rows):
        def blocks():
            yield x[:100], y[:100]
            raise KeyboardInterrupt

        return Chunks(600, None, blocks())

    monkeypatch.setattr("nnctl.app.convert.npz_chunks", stopping)
    with pytest.raises(KeyboardInterrupt):
        convert_data(d / "d.npz", out, chunk_rows=100, shard_mb=0.001)
    assert not out.exists() and not partial_dir(out).exists()
    monkeypatch.undo()
    w = ShardWriter(out, 50)  # a convert killed (SIGKILL) halfway: shards written, no manifest, no rename
    w.add(x[:120], y[:120])
    assert partial_dir(out).exists() and not out.exists()
    res = convert_data(d / "d.npz", out)
    assert res["rows"] == 600 and not partial_dir(out).exists()
    np.testing.assert_array_equal(np.asarray(Rows(Store(out), np.arange(600), (12,))), x)
    with pytest.raises(DataError, match="already exists"):
        convert_data(d / "d.npz", out)


def test_convert_tables_with_text_labels_and_their_errors(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.5, 0.25, 0.0, 1.0], "kind": ["y", "x", "y", "z"]})
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_csv(tmp_path / "t.csv", index=False)
    for name in ("t.parquet", "t.csv"):
        res = convert_data(tmp_path / name, tmp_path / f"{name}.shards", target="kind", chunk_rows=3)
        assert res["class_names"] == ["x", "y", "z"] and res["rows"] == 4 and res["x_shape"] == [2]
        store = Store(tmp_path / f"{name}.shards")
        assert store.y.tolist() == [1, 0, 1, 2]
    with pytest.raises(DataError, match=r"t\.parquet: no column 'knd' for the target\. Did you mean 'kind'\?"):
        convert_data(tmp_path / "t.parquet", tmp_path / "o1", target="knd")
    with pytest.raises(DataError, match=r"needs --target"):
        convert_data(tmp_path / "t.parquet", tmp_path / "o1")
    with pytest.raises(DataError, match=r"--image-size do\(es\) not apply to parquet sources"):
        convert_data(tmp_path / "t.parquet", tmp_path / "o1", target="kind", image_size=(4, 4))
    frame.assign(a=["1", "2", "three", "4"]).to_csv(tmp_path / "text.csv", index=False)
    with pytest.raises(DataError, match=r"text\.csv, row 3, column 'a': text value 'three'"):
        convert_data(tmp_path / "text.csv", tmp_path / "o2", target="kind")
    frame.assign(b=[0.5, None, 1.0, 2.0]).to_parquet(tmp_path / "nan.parquet")
    with pytest.raises(DataError, match=r"nan\.parquet, row 2, column 'b': missing or infinite value nan"):
        convert_data(tmp_path / "nan.parquet", tmp_path / "o3", target="kind", chunk_rows=1)
    assert not any(p.name.startswith(("o1", "o2", "o3", ".o")) for p in tmp_path.iterdir())


def test_convert_an_image_folder_and_the_cli(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / "img" / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (6, 5, 3), np.uint8)).save(tmp_path / "img" / c / f"{i}.png")
    r = CliRunner().invoke(app, ["data", "convert", str(tmp_path / "img"), str(tmp_path / "o"), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["rows"] == 6 and doc["x_shape"] == [6, 5, 3] and doc["x_dtype"] == "uint8"
    assert doc["class_names"] == ["cat", "dog"]
    first = np.asarray(Image.open(tmp_path / "img" / "cat" / "0.png"), np.float32)
    np.testing.assert_array_equal(np.asarray(Rows(Store(tmp_path / "o"), np.arange(6), (6, 5, 3)))[0], first)
    r = CliRunner().invoke(app, ["data", "convert", str(tmp_path / "img"), str(tmp_path / "o")])
    assert r.exit_code == 2 and "already exists" in r.output
    r = CliRunner().invoke(app, ["data", "convert", str(tmp_path / "img"), str(tmp_path / "g"), "--color-mode", "grey"])
    assert r.exit_code == 2 and "--color-mode 'grey': choose rgb or grayscale" in r.output


@pytest.mark.slow
def test_the_memory_bench_runs_and_reports(tmp_path):
    """bench/stream_memory.py end to end on a small data set (four training processes)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.stream_memory",
            "--rows",
            "4096",
            "--repeats",
            "1",
            "--epochs",
            "2",
            "--json",
            str(tmp_path / "m.json"),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    ).stdout
    assert "| disk |" in out and "| memory-stream |" in out and "| memory-device |" in out
    res = json.loads((tmp_path / "m.json").read_text())
    assert {r["n_train"] for r in res["runs"]["disk"]} == {3891}
