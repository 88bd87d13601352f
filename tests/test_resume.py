"""Interrupts, crashes and resume: a run killed (SIGKILL) or stopped (SIGINT/SIGTERM) at random points and
resumed ends bit-identical to an uninterrupted run; checkpoints are atomic, checked and never pickled."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nnctl import checkpoint, rundir, sums
from nnctl.app import resume_run, train_run
from nnctl.errors import RunDirError

SPEC = """\
name: digits-ck
seed: 5
data: {source: builtin:digits, validation_split: 0.2, normalize: standard}
model:
  layers:
    - {type: dense, units: 32, activation: relu}
    - {type: dropout, rate: 0.1}
    - {type: dense, units: 10, activation: softmax}
train:
  loss: categorical_crossentropy
  metrics: [accuracy]
  optimizer: {type: adam, learning_rate: 0.003}
  batch_size: 64
  epochs: EPOCHS
  early_stopping: {monitor: val_accuracy, patience: 1000}
  checkpoint: {every_epochs: 3, keep: 2}
  fuse: FUSE
"""


def write_spec(d: Path, epochs: int, fuse: str = "epochs") -> Path:
    p = d / "spec.yaml"
    p.write_text(SPEC.replace("EPOCHS", str(epochs)).replace("FUSE", fuse))
    return p


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A persistent compilation cache shared by the subprocesses: the same programs, compiled once."""
    return tmp_path_factory.mktemp("jaxcache")


def env(cache: Path) -> dict:
    e = dict(os.environ)
    e.update(
        JAX_COMPILATION_CACHE_DIR=str(cache),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1",
        JAX_PLATFORMS="cpu",
        PYTHONUNBUFFERED="1",
    )
    return e


def launch(args: list[str], cache: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "nnctl", "train", "-q", *args],
        env=env(cache),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def newest(run: Path) -> int:
    c = checkpoint.list_checkpoints(run)
    return c[-1][0] if c else -1


def wait_for_checkpoint(p: subprocess.Popen, run: Path, after: int, timeout: float = 90) -> bool:
    """Until the process writes a checkpoint newer than `after` (True) or exits (False)."""
    t = time.time()
    while time.time() - t < timeout:
        if p.poll() is not None:
            return False
        if newest(run) > after:
            return True
        time.sleep(0.02)
    raise AssertionError("no checkpoint appeared")


def same_files(a: Path, b: Path, names=(rundir.WEIGHTS, rundir.OPT_STATE, rundir.METRICS)) -> None:
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes(), f"{n} differs between {a} and {b}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache):
    """The uninterrupted run, in a subprocess like the others (it also fills the compilation cache)."""
    d = tmp_path_factory.mktemp("ref")
    p = launch([str(write_spec(d, 240)), "--out", str(d / "run")], cache)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    return d / "run"


def finished(run: Path) -> bool:
    f = run / rundir.SUMMARY
    return f.exists() and rundir.read_json(f).get("status") == "finished"


def finish(run: Path, cache: Path) -> None:
    p = launch(["--resume", str(run)], cache)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err


def test_killed_and_stopped_at_random_points_then_resumed_is_bit_identical(tmp_path, reference, cache):
    """SIGKILL twice, then SIGINT, then SIGTERM, each at a random moment after a fresh checkpoint; every
    time resumed with `nnctl train --resume`. The end is byte-identical to the uninterrupted run."""
    spec = write_spec(tmp_path, 240)
    run = tmp_path / "run"
    rng = random.Random(20261122)
    plan = [(signal.SIGKILL, -9), (signal.SIGKILL, -9), (signal.SIGINT, 130), (signal.SIGTERM, 143)]
    p = launch([str(spec), "--out", str(run)], cache)
    done = 0
    for sig, code in plan:
        if not wait_for_checkpoint(p, run, newest(run)):
            break  # finished before this signal: the remaining ones are not needed
        time.sleep(rng.uniform(0.0, 0.3))
        p.send_signal(sig)
        out, err = p.communicate(timeout=120)
        if p.returncode == 0 or finished(run):
            # the signal came after the last epoch's files were written (the process may still have been
            # shutting down, with the default handlers back, and died of it): nothing was interrupted
            assert "Traceback" not in err
            break
        assert p.returncode == code, err
        assert "Traceback" not in err
        if sig != signal.SIGKILL:
            assert f"nnctl train --resume {run}" in err.replace("\n", "")
            s = rundir.read_json(run / rundir.SUMMARY)
            assert s["status"] == "interrupted" and newest(run) == s["epochs_run"]
        done += 1
        p = launch(["--resume", str(run)], cache)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0 or (finished(run) and p.returncode in (-9, -15, 130)), err
    assert done >= 2, "the run ended before enough interruptions"
    same_files(reference, run)
    s = rundir.read_json(run / rundir.SUMMARY)
    assert s["status"] == "finished" and s["epochs_run"] == 240
    assert len(rundir.read_json(run / rundir.RUN)["resumed"]) == done


def test_steps_mode_signal_mid_epoch_resumes_bit_identical(tmp_path):
    """fuse: steps honours a signal after the step in flight; the partial epoch is dropped and redone."""
    import threading

    from nnctl.errors import TrainingInterrupted

    spec = write_spec(tmp_path, 8, "steps")
    ref = train_run(str(spec), out=str(tmp_path / "ref")).run_dir
    run = tmp_path / "run"
    seen = []

    def on_epoch(r):
        seen.append(r["epoch"])
        if r["epoch"] == 3:  # fire in the middle of epoch 4
            threading.Timer(0.002, os.kill, (os.getpid(), signal.SIGTERM)).start()

    with pytest.raises(TrainingInterrupted) as e:
        train_run(str(spec), out=str(run), on_epoch=on_epoch)
    assert e.value.exit_code == 143 and f"nnctl train --resume {run}" in str(e.value)
    assert newest(run) == seen[-1] and 3 <= seen[-1] < 8
    resume_run(run)
    same_files(ref, run)


def test_atomic_write_survives_sigkill_mid_write(tmp_path):
    """A writer killed between writing the temporary file and renaming it leaves the old file intact."""
    target = tmp_path / "checkpoints" / "ckpt-000003.msgpack"
    code = f"""
import os, sys, time
from pathlib import Path
from nnctl import rundir
p = Path({str(target)!r})
rundir.atomic_write(p, b"old" * 1000)
real = os.fsync
def slow(fd):
    print("writing", flush=True)
    time.sleep(60)
os.fsync = slow
rundir.atomic_write(p, b"new" * 100000)
"""
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "writing"
    p.kill()
    p.wait()
    assert target.read_bytes() == b"old" * 1000
    leftovers = list(target.parent.glob(".*.tmp"))
    assert leftovers, "the half-written temporary should still be there"
    assert checkpoint.list_checkpoints(tmp_path) == [(3, target)]
    checkpoint.clean_temporaries(tmp_path)
    assert not list(target.parent.glob(".*.tmp"))


# ------------------------------------------------------------------------- bad checkpoints and run dirs

XOR = """\
seed: 0
data: {source: builtin:xor}
model:
  layers:
    - {type: dense, units: UNITS, activation: tanh}
    - {type: dense, units: 1, activation: sigmoid}
train:
  loss: binary_crossentropy
  optimizer: {type: adam, learning_rate: 0.1}
  batch_size: full
  epochs: 6
  checkpoint: {every_epochs: 2, keep: 5}
"""


@pytest.fixture(scope="module")
def xor_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("xor")
    (d / "s.yaml").write_text(XOR.replace("UNITS", "3"))
    return train_run(str(d / "s.yaml"), out=str(d / "run")).run_dir


@pytest.fixture
def killed(xor_run, tmp_path):
    """A copy of the finished run without its summary: what a run killed after epoch 6 looks like."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(xor_run, run)
    (run / rundir.SUMMARY).unlink()
    return run


def built(spec_text: str):
    from nnctl.app import build
    from nnctl.data.prepare import prepare
    from nnctl.spec import load_text

    loaded = load_text(spec_text)
    return build(loaded, prepare(loaded.spec, loaded.analysis, Path(".")))


def test_truncated_checkpoint_falls_back_to_the_previous_one(killed):
    run = killed
    ck = checkpoint.list_checkpoints(run)
    assert [e for e, _ in ck] == [2, 4, 6]
    data = ck[-1][1].read_bytes()
    ck[-1][1].write_bytes(data[: len(data) // 2])
    from nnctl.app import carry_template

    b = built(XOR.replace("UNITS", "3"))
    carry, meta, notes = checkpoint.load_latest(run, carry_template(b), b.loaded.spec)
    assert meta["epoch"] == 4 and int(carry.epoch) == 4
    assert len(notes) == 1 and "ckpt-000006.msgpack is damaged" in notes[0]
    assert "resuming from the previous checkpoint, ckpt-000004.msgpack" in notes[0]
    for _, p in ck[:-1]:  # every checkpoint damaged: a clear error
        p.write_bytes(b"garbage")
    with pytest.raises(RunDirError, match=r"ckpt-000002.msgpack is damaged.*no earlier checkpoint is left"):
        checkpoint.load_latest(run, carry_template(b), b.loaded.spec)


def test_garbage_and_pickle_checkpoints_are_refused_without_executing(killed, tmp_path):
    import pickle

    run = killed
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    newest_path = checkpoint.list_checkpoints(run)[-1][1]
    newest_path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(RunDirError, match="is damaged"):
        checkpoint._load(newest_path)
    sums.save(newest_path, pickle.dumps(Evil()))  # even with a matching checksum
    with pytest.raises(RunDirError, match="corrupt or truncated|not an nnctl checkpoint"):
        checkpoint._load(newest_path)
    (run / rundir.WEIGHTS).write_bytes(pickle.dumps(Evil()))
    from nnctl.app import evaluate_run

    with pytest.raises(RunDirError):
        evaluate_run(run, "train")
    assert not marker.exists()


def test_checkpoint_of_a_different_spec_is_refused(killed, reference):
    run = killed
    newest_path = checkpoint.list_checkpoints(run)[-1][1]
    saved = newest_path.read_bytes()
    sums.save(newest_path, checkpoint.list_checkpoints(reference)[-1][1].read_bytes())  # a good file, other spec
    with pytest.raises(RunDirError, match="written for a different spec"):
        resume_run(run)
    sums.save(newest_path, saved)
    spec = run / rundir.SPEC  # an edited spec.yaml is caught too
    sums.save(spec, spec.read_text().replace("learning_rate: 0.1", "learning_rate: 0.2").encode())
    with pytest.raises(RunDirError, match="written for a different spec"):
        resume_run(run)
    spec.write_text(spec.read_text().replace("learning_rate: 0.2", "learning_rate: 0.1"))  # edited by hand
    with pytest.raises(RunDirError, match=r"spec.yaml is damaged: its SHA-256"):
        resume_run(run)


def test_shape_mismatch_names_the_array(killed):
    from nnctl.app import carry_template

    b = built(XOR.replace("UNITS", "4"))
    path = checkpoint.list_checkpoints(killed)[-1][1]
    doc = checkpoint._load(path)
    with pytest.raises(RunDirError, match=r"\['bias'\] is float32\[3\], this spec needs float32\[4\]"):
        checkpoint.unflatten_into(carry_template(b), doc["carry"], str(path))


def test_resume_errors(tmp_path, xor_run, killed):
    with pytest.raises(RunDirError, match="no such run directory"):
        resume_run(tmp_path / "nope")
    with pytest.raises(RunDirError, match="already ended \\(status: finished\\)"):
        resume_run(xor_run)
    import shutil

    shutil.rmtree(killed / checkpoint.DIR)
    with pytest.raises(RunDirError, match="no checkpoint to resume from"):
        resume_run(killed)


def test_keep_and_best(xor_run):
    run = xor_run
    assert [e for e, _ in checkpoint.list_checkpoints(run)] == [2, 4, 6]
    weights, meta = checkpoint.load_best(run)
    assert 1 <= meta["epoch"] <= 6 and np.isfinite(meta["value"])
    assert any("kernel" in k for k in weights)


# ---------------------------------------------------------------------------------------- non-finite

NONFINITE = """\
seed: 0
data: {source: inline, x: [[1.0], [2.0], [3.0], [4.0]], y: [[2.0], [4.0], [6.0], [8.0]], task: regression}
model:
  layers: [{type: dense, units: 1}]
train:
  loss: mse
  optimizer: {type: sgd, learning_rate: 1.0e+18}
  batch_size: 2
  epochs: 8
  on_nonfinite: MODE
"""


def test_nonfinite_stop_names_epoch_step_quantity_and_keeps_good_weights(tmp_path):
    from typer.testing import CliRunner

    from nnctl.cli import app

    (tmp_path / "s.yaml").write_text(NONFINITE.replace("MODE", "stop"))
    r = CliRunner().invoke(app, ["train", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "run")])
    assert r.exit_code == 1 and "Traceback" not in r.output
    s = rundir.read_json(tmp_path / "run" / rundir.SUMMARY)
    assert s["status"] == "failed" and s["stop_reason"] == "nonfinite"
    nf = s["nonfinite"]
    assert nf["quantity"] in ("loss", "gradients") and nf["epoch"] >= 1 and nf["step"] >= 0
    msg = f"non-finite {nf['quantity']} at epoch {nf['epoch']}, step {nf['step']}"
    assert msg in s["message"] and msg in " ".join(r.output.split())
    import jax
    from flax import serialization

    w = serialization.msgpack_restore((tmp_path / "run" / rundir.WEIGHTS).read_bytes())
    assert all(np.all(np.isfinite(a)) for a in jax.tree.leaves(w))


def test_nonfinite_skip_step_continues(tmp_path):
    """Skipped steps are counted; an epoch that skipped all its steps has no train metrics (NaN); such epochs
    in a row fail the run only after train.max_skipped_epochs of them (tests/test_integrity.py)."""
    spec = NONFINITE.replace("MODE", "skip_step\n  max_skipped_epochs: 100")
    (tmp_path / "s.yaml").write_text(spec)
    res = train_run(str(tmp_path / "s.yaml"), out=str(tmp_path / "run"))
    assert res.summary["epochs_run"] == 8 and res.summary["status"] == "finished"
    assert sum(r["skipped_steps"] for r in res.records) > 0
    for r in res.records:
        assert np.isnan(r["train/loss"]) == (r["skipped_steps"] == 2)
