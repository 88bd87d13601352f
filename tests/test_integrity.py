"""Nothing lost, nothing silent (issue 17): checksummed run files, locks and atomic run directories, strict JSON,
absurd sizes, damaged logs, dead skip_step runs, disk errors, -q errors."""

from __future__ import annotations

import errno
import json
import threading
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nnctl import checkpoint, rundir, strictjson, sums
from nnctl.app import evaluate_run, resume_run, train_run
from nnctl.app.runs import list_runs, run_row
from nnctl.cli import app
from nnctl.errors import DataError, RunDirError, SpecError
from nnctl.logs import read_records
from nnctl.spec import load_spec

XOR = """\
seed: 0
data: {source: builtin:xor}
model:
  layers:
    - {type: dense, units: 3, activation: tanh}
    - {type: dense, units: 1, activation: sigmoid}
train:
  loss: binary_crossentropy
  optimizer: {type: adam, learning_rate: 0.1}
  batch_size: full
  epochs: 6
  checkpoint: {every_epochs: 2, keep: 5}
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    d = tmp_path_factory.mktemp("xor")
    (d / "s.yaml").write_text(XOR)
    return train_run(str(d / "s.yaml"), out=str(d / "run")).run_dir


@pytest.fixture
def run(finished, tmp_path):
    import shutil

    shutil.copytree(finished, tmp_path / "run")
    return tmp_path / "run"


def flip_bit(p: Path, offset: int | None = None) -> None:
    data = bytearray(p.read_bytes())
    i = len(data) - 5 if offset is None else offset  # near the end: inside the last array of a msgpack file
    data[i] ^= 0x10
    p.write_bytes(bytes(data))


# ----------------------------------------------------------------------------------------- 1: checksums

TRUSTED = [rundir.WEIGHTS, rundir.OPT_STATE, rundir.SCALERS, rundir.RNG, rundir.SPEC, rundir.SUMMARY, "origin.json"]


def test_every_trusted_file_is_in_a_manifest(run):
    listed = {n for _, n in sums.read_manifest(run)}
    assert set(TRUSTED) <= listed
    ck = {n for _, n in sums.read_manifest(run / checkpoint.DIR)}
    assert ck == {"ckpt-000002.msgpack", "ckpt-000004.msgpack", "ckpt-000006.msgpack", checkpoint.BEST}
    assert sums.check_dir(run) == [] and sums.check_dir(run / checkpoint.DIR) == []


@pytest.mark.parametrize("name", TRUSTED + [f"{checkpoint.DIR}/{checkpoint.BEST}"])
def test_a_flipped_bit_in_any_trusted_file_is_an_error_naming_it(run, name):
    flip_bit(run / name, offset=len((run / name).read_bytes()) // 2)
    with pytest.raises(RunDirError, match=rf"{Path(name).name} is damaged: its SHA-256"):
        rundir.read_bytes(run / name)
    assert any(Path(name).name in p for p in sums.check_dir((run / name).parent))


def test_eval_refuses_flipped_weights(run):
    assert evaluate_run(run, "train")["examples"] == 4
    flip_bit(run / rundir.WEIGHTS)
    with pytest.raises(RunDirError, match=r"weights.msgpack is damaged"):
        evaluate_run(run, "train")


def test_resume_skips_a_flipped_checkpoint_and_says_so(run):
    (run / rundir.SUMMARY).unlink()  # what a run killed after epoch 6 looks like
    flip_bit(run / checkpoint.DIR / "ckpt-000006.msgpack")
    with pytest.warns(rundir.RunNote, match=r"ckpt-000006.msgpack is damaged.*previous checkpoint, ckpt-000004"):
        res = resume_run(run)
    assert res.summary["status"] == "finished" and res.summary["resumed_from_epoch"] == 4
    assert [r["epoch"] for r in res.records] == [1, 2, 3, 4, 5, 6]


def test_any_file_written_through_the_run_directory_helper_is_checked(run):
    """Generic: a new kind of run file (e.g. a data fingerprint) is covered without naming it anywhere."""
    rundir.atomic_write(run / "fingerprint.bin", b"abc" * 100)
    rundir.write_json(run / "split.json", {"train": [1, 2]})
    assert rundir.read_bytes(run / "fingerprint.bin") == b"abc" * 100
    flip_bit(run / "fingerprint.bin", 7)
    flip_bit(run / "split.json", 3)
    with pytest.raises(RunDirError, match="fingerprint.bin is damaged"):
        rundir.read_bytes(run / "fingerprint.bin")
    with pytest.raises(RunDirError, match="split.json is damaged"):
        rundir.read_json(run / "split.json")


def test_an_interrupted_manifest_update_is_not_a_false_alarm(tmp_path):
    """Between the three steps of `save` the file matches one of the digests listed for it."""
    p = tmp_path / "f.bin"
    sums.save(p, b"old")
    sums._edit(tmp_path, lambda es: es + [(sums.digest(b"new"), "f.bin")])  # step 1 done, killed before 2
    assert sums.load(p) == b"old"
    sums.atomic_write(p, b"new")  # step 2 done, killed before 3
    assert sums.load(p) == b"new"
    sums.save(p, b"new")
    assert sums.read_manifest(tmp_path) == [(sums.digest(b"new"), "f.bin")]


# ------------------------------------------------------------------------------ 5: run directories, locks


def test_racing_for_one_out_directory_gives_it_to_one(tmp_path):
    out, got, errors = str(tmp_path / "r"), [], []

    def claim():
        try:
            got.append(rundir.new_run_dir(out, "x"))
        except RunDirError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 1 and len(errors) == 7
    assert all("already exists" in e or "just taken" in e for e in errors)
    got[0][1].release()


def test_racing_for_default_names_gives_each_its_own(tmp_path):
    got: list = []
    threads = [
        threading.Thread(target=lambda: got.append(rundir.new_run_dir(None, "x", str(tmp_path)))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(p.name for p, _ in got) == sorted(["x"] + [f"x-{i}" for i in range(2, 9)])
    for _, lock in got:
        lock.release()


def test_a_run_being_written_cannot_be_resumed_twice(run):
    (run / rundir.SUMMARY).unlink()
    lock = rundir.RunLock.take(run)
    try:
        assert rundir.is_locked(run) and run_row(run)["status"] == "running"
        with pytest.raises(RunDirError, match="being written by another nnctl process"):
            resume_run(run)
    finally:
        lock.release()
    assert not rundir.is_locked(run)


def test_out_that_cannot_be_created_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match="cannot create the run directory"):
        rundir.new_run_dir(str(tmp_path / "file" / "run"), "x")


# ------------------------------------------------------------------------------------------ 8: strict JSON


def test_strict_json_round_trip():
    doc = {"a": float("nan"), "b": float("inf"), "c": [1.0, float("-inf")], "d": np.float32("nan"), "e": 1}
    text = strictjson.dumps(doc)
    assert "NaN" not in text.replace('"NaN"', "") and "Infinity" not in text.replace('"Infinity"', "")
    plain = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c}"))
    assert plain["a"] is None and plain["_nonfinite"] == {"a": "NaN", "b": "Infinity", "d": "NaN"}
    back = strictjson.loads(text)
    assert np.isnan(back["a"]) and back["b"] == float("inf") and back["c"] == [1.0, None] and "_nonfinite" not in back


# ----------------------------------------------------------------------------------------- 2: absurd sizes


@pytest.mark.parametrize(
    "edit, key",
    [
        ("epochs: 6", "epochs: 1000000000000"),
        ("seed: 0", "seed: 100000000000000000000000"),
        ("every_epochs: 2", "every_epochs: 100000000000"),
        ("batch_size: full", "batch_size: 10000000000000"),
    ],
)
def test_absurd_integers_are_located_spec_errors(tmp_path, edit, key):
    (tmp_path / "s.yaml").write_text(XOR.replace(edit, key))
    t = time.perf_counter()
    with pytest.raises(SpecError, match=r"s.yaml:\d+:\d+: "):
        load_spec(tmp_path / "s.yaml")
    assert time.perf_counter() - t < 5


def test_a_model_too_big_for_memory_is_refused_before_allocating(tmp_path):
    (tmp_path / "s.yaml").write_text(XOR.replace("units: 3", "units: 200000").replace("units: 1,", "units: 200000,"))
    t = time.perf_counter()
    with pytest.raises(SpecError, match=r"s.yaml:\d+:\d+: model: training this model needs at least .* GiB"):
        train_run(str(tmp_path / "s.yaml"), out=str(tmp_path / "run"))
    assert time.perf_counter() - t < 20 and not (tmp_path / "run").exists()


def test_validate_refuses_a_model_too_big_for_memory_without_allocating(tmp_path):
    from typer.testing import CliRunner

    from nnctl.cli import app

    (tmp_path / "s.yaml").write_text(XOR.replace("units: 3", "units: 200000").replace("units: 1,", "units: 200000,"))
    t = time.perf_counter()
    r = CliRunner().invoke(app, ["validate", str(tmp_path / "s.yaml")])
    assert r.exit_code == 2 and "training this model needs at least" in r.output, r.output
    assert time.perf_counter() - t < 20
    (tmp_path / "ok.yaml").write_text(XOR)
    assert CliRunner().invoke(app, ["validate", str(tmp_path / "ok.yaml")]).exit_code == 0


def test_a_forged_npz_header_is_refused_before_allocating(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, x=np.zeros((4, 4), np.float32), y=np.zeros(4, np.float32))
    with zipfile.ZipFile(p) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["x.npy"] = members["x.npy"].replace(b"(4, 4)", b"(1000000000000, 4)".ljust(6))
    hdr = members["x.npy"]
    with zipfile.ZipFile(p, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    assert len(hdr) < 2000
    spec = XOR.replace("{source: builtin:xor}", f"{{source: npz, path: {p}, x: x, y: y}}")
    (tmp_path / "s.yaml").write_text(spec)
    with pytest.raises((DataError, SpecError), match=r"array 'x' claims shape \(1000000000000, 4\)"):
        load_spec(tmp_path / "s.yaml")


def test_spec_size_cap_applies_while_reading(tmp_path):
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    with pytest.raises(SpecError, match="not a regular file"):
        load_spec(link)
    big = tmp_path / "big.yaml"
    with open(big, "wb") as f:
        f.truncate(50 << 20)  # sparse: 50 MB that cost nothing to make
    t = time.perf_counter()
    with pytest.raises(SpecError, match="more than 2,000,000 bytes"):
        load_spec(big)
    assert time.perf_counter() - t < 2


# ------------------------------------------------------------------------------------------ 6: damaged logs


def test_damaged_metrics_lines_are_dropped_and_named(run):
    m = run / rundir.METRICS
    lines = m.read_bytes().split(b"\n")
    lines[2] = b"\x00\xff\xfe garbage"
    m.write_bytes(b"\n".join(lines))
    recs, problems = read_records(m)
    assert [r["epoch"] for r in recs] == [1, 2, 4, 5, 6]
    assert problems == [f"{rundir.METRICS} line 3 is damaged ('\\x00\ufffd\ufffd garbage')"]
    (run / rundir.SUMMARY).unlink()
    with pytest.warns(rundir.RunNote) as notes:
        res = resume_run(run)
    said = " | ".join(str(w.message) for w in notes)
    assert "line 3 is damaged" in said and "no valid record of epoch 3" in said
    assert [r["epoch"] for r in res.records] == [1, 2, 4, 5, 6]
    row = run_row(run)
    assert row["status"] == "finished"


def test_runs_lists_a_damaged_run_as_damaged_and_goes_on(finished, tmp_path):
    import shutil

    for n in ("a", "b"):
        shutil.copytree(finished, tmp_path / n)
    (tmp_path / "a" / rundir.METRICS).write_bytes(b"\x00\x01garbage\n" * 3)
    flip_bit(tmp_path / "a" / rundir.SUMMARY, 10)
    rows = {Path(r["run_dir"]).name: r for r in list_runs(tmp_path)}
    assert rows["a"]["status"] == "damaged" and any("summary.json is damaged" in p for p in rows["a"]["problems"])
    assert rows["b"]["status"] == "finished" and not rows["b"].get("problems")
    r = CliRunner().invoke(app, ["plot", str(tmp_path / "a"), "--out", str(tmp_path / "a.png")])
    assert "Traceback" not in r.output and r.exit_code == 2


# ------------------------------------------------------------------------------- 7: every step skipped

DEAD = """\
seed: 0
data: {source: inline, x: [[1.0], [2.0], [3.0], [4.0]], y: [[2.0], [4.0], [6.0], [8.0]], task: regression}
model:
  layers: [{type: dense, units: 1}]
train:
  loss: mse
  optimizer: {type: sgd, learning_rate: 1.0e+18}
  batch_size: 2
  epochs: 50
  on_nonfinite: skip_step
  max_skipped_epochs: 2
  fuse: steps
"""


def test_a_run_whose_steps_are_all_skipped_fails_and_says_so(tmp_path):
    (tmp_path / "s.yaml").write_text(DEAD)
    r = CliRunner().invoke(app, ["train", "-q", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "r")])
    assert r.exit_code == 1 and r.stdout == ""
    assert "every step of the last 2 epochs was skipped" in " ".join(r.stderr.split())  # 10: -q still says why
    s = rundir.read_json(tmp_path / "r" / rundir.SUMMARY)
    assert s["status"] == "failed" and s["stop_reason"] == "all_skipped" and s["epochs_run"] < 10
    recs = [json.loads(x, parse_constant=lambda c: pytest.fail(c)) for x in (tmp_path / "r" / rundir.METRICS).open()]
    dead = [x for x in recs if x["train/loss"] is None]
    assert len(dead) >= 2 and dead[-1]["_nonfinite"]["train/loss"] == "NaN" and dead[-1]["skipped_steps"] == 2


# ------------------------------------------------------------------------------------------ 4: disk errors


def test_a_full_disk_mid_run_is_a_clear_error_and_the_run_stays_resumable(tmp_path, monkeypatch):
    (tmp_path / "s.yaml").write_text(XOR.replace("every_epochs: 2", "every_epochs: 1"))
    real, calls = sums.atomic_write, []

    def full(path, data):
        calls.append(path)
        if "ckpt-000004" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(sums, "atomic_write", full)
    with pytest.raises(RunDirError, match=r"No space left on device; its newest checkpoint \(ckpt-000003"):
        train_run(str(tmp_path / "s.yaml"), out=str(tmp_path / "run"))
    monkeypatch.setattr(sums, "atomic_write", real)
    assert not (tmp_path / "run" / rundir.SUMMARY).exists() and run_row(tmp_path / "run")["status"] == "interrupted"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = resume_run(tmp_path / "run")
    assert res.summary["status"] == "finished" and res.summary["resumed_from_epoch"] == 3


def test_impossible_destinations_are_clear_errors(finished, tmp_path):
    (tmp_path / "file").write_text("x")
    inp = tmp_path / "in.csv"
    inp.write_text("x0,x1\n0,1\n")
    for args in (
        ["predict", str(finished), "-i", str(inp), "-o", str(tmp_path / "file" / "p.csv")],
        ["plot", str(finished), "--out", str(tmp_path / "file" / "c.png")],
    ):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2 and "Traceback" not in r.stderr and "error:" in r.stderr, (args, r.stderr)


# ------------------------------------------------------------------------- real processes: 3, 4 and 5

SIGNAL_SPEC = XOR.replace("epochs: 6", "epochs: 400").replace("every_epochs: 2", "every_epochs: 100")


def _cli(args: list[str], **kw):
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen(
        [sys.executable, "-m", "nnctl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, **kw
    )


def _early_sigint_trials(tmp_path: Path, trials: int, latest: float = 8.0) -> None:
    """SIGINT at a random moment of the start-up (imports, spec, data, build, compile, first epochs): the
    command ends 130 with a clean message, or had already finished (0, or killed by the signal while Python
    shut down after the run was complete); never a swallowed signal, a crash or a traceback; the run
    directory is absent or resumable."""
    import random
    import signal

    (tmp_path / "s.yaml").write_text(SIGNAL_SPEC)
    rng = random.Random(17)
    codes = []
    for i in range(trials):
        out = tmp_path / f"r{i}"
        p = _cli(["train", "-q", str(tmp_path / "s.yaml"), "--out", str(out)])
        time.sleep(rng.uniform(0.3, latest))  # not earlier: the interpreter's own start-up (site) is Python's
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
        text = err.decode()
        codes.append(p.returncode)
        if p.returncode == -signal.SIGINT:  # during interpreter shutdown, after the run was complete
            assert rundir.read_json(out / rundir.SUMMARY)["status"] == "finished", text
            continue
        assert p.returncode in (0, 130), (p.returncode, text)
        assert "Traceback" not in text and "Exception ignored" not in text, text
        if p.returncode == 130:
            assert "interrupted" in text, text
            assert not out.exists() or checkpoint.list_checkpoints(out), "an interrupted run must be resumable"
    assert 130 in codes


def test_early_sigint_a_few_times(tmp_path):
    # a warm run can end in about 1 s on a fast machine (imports alone take most of it): signal it while it starts
    _early_sigint_trials(tmp_path, 2, latest=0.8)


@pytest.mark.slow
def test_early_sigint_fifty_times(tmp_path):
    _early_sigint_trials(tmp_path, 50)


@pytest.mark.slow
def test_two_cli_processes_racing_for_one_out(tmp_path):
    (tmp_path / "s.yaml").write_text(XOR)
    for i in range(5):
        ps = [_cli(["train", "-q", str(tmp_path / "s.yaml"), "--out", str(tmp_path / f"r{i}")]) for _ in range(2)]
        results = [(p.wait(timeout=300), p.stderr.read().decode()) for p in ps]
        assert sorted(c for c, _ in results) == [0, 2], results
        assert any("already exists" in e or "just taken" in e for _, e in results)
        assert rundir.read_json(tmp_path / f"r{i}" / rundir.SUMMARY)["status"] == "finished"


@pytest.mark.slow
def test_file_size_limit_mid_run_then_resume(tmp_path):
    """`ulimit -f`: metrics.jsonl outgrows the limit mid-run; a clear error, and a resume finishes the run."""
    import resource

    (tmp_path / "s.yaml").write_text(SIGNAL_SPEC.replace("every_epochs: 100", "every_epochs: 20"))
    limit = 24_000  # bytes per file: checkpoints fit, metrics.jsonl of 400 epochs does not

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    p = _cli(["train", "-q", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "r")], preexec_fn=small_files)
    _, err = p.communicate(timeout=300)
    text = err.decode()
    assert p.returncode == 2 and "Traceback" not in text and "resume with" in text, text
    assert not (tmp_path / "r" / rundir.SUMMARY).exists()
    p = _cli(["train", "-q", "--resume", str(tmp_path / "r")])
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err.decode()
    assert rundir.read_json(tmp_path / "r" / rundir.SUMMARY)["status"] == "finished"


@pytest.fixture
def small_fs(tmp_path):
    """A 256 KiB tmpfs (needs root: skipped where mount is not allowed)."""
    import subprocess

    d = tmp_path / "fs"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(d)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {r.stderr.decode().strip()}")
    yield d
    subprocess.run(["umount", str(d)], check=False)


@pytest.mark.slow
def test_full_filesystem_mid_run_then_resume_after_freeing_space(tmp_path, small_fs):
    import subprocess

    spec = SIGNAL_SPEC.replace("epochs: 400", "epochs: 3000").replace("every_epochs: 100", "every_epochs: 200")
    (tmp_path / "s.yaml").write_text(spec)
    run = small_fs / "r"
    p = _cli(["train", "-q", str(tmp_path / "s.yaml"), "--out", str(run)])
    _, err = p.communicate(timeout=600)
    text = err.decode()
    assert p.returncode == 2 and "No space left on device" in text and "resume with" in text, text
    assert "Traceback" not in text and not (run / rundir.SUMMARY).exists()
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_fs)], check=True)  # space freed
    p = _cli(["train", "-q", "--resume", str(run)])
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err.decode()
    assert rundir.read_json(run / rundir.SUMMARY)["status"] == "finished"
