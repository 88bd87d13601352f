"""Data-parallel training (`train.devices`) and multi-process training (`--coordinator`) reproduce
single-device training. Several CPU devices need XLA_FLAGS before jax is imported, so each run is a
subprocess; the two-process test talks over 127.0.0.1 only (gloo CPU collectives)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from conftest import SPECS

SHORT = ["--set", "train.epochs=15", "--set", "train.early_stopping.patience=5"]


def _env(devices: int) -> dict:
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "NNCTL_CACHE_DIR": "off",
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
    }
    return env


def _train(args, env, cwd):
    return subprocess.Popen(
        [sys.executable, "-m", "nnctl", "train", str(SPECS / "iris.yaml"), "--json", *SHORT, *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _close(a, b, tol=1e-5):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for k in ("train/loss", "val/loss", "train/accuracy", "val/accuracy"):
            assert abs(x[k] - y[k]) <= tol * max(1.0, abs(x[k])), (x["epoch"], k, x[k], y[k])


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    d = tmp_path_factory.mktemp("single")
    p = _train(["--out", str(d / "run")], _env(1), d)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-2000:]
    return _metrics(d / "run")


def test_four_devices_match_one(single, tmp_path):
    p = _train(["--out", str(tmp_path / "run"), "--set", "train.devices=4"], _env(4), tmp_path)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-2000:]
    _close(single, _metrics(tmp_path / "run"))


def test_streamed_data_on_four_devices_matches_one(single, tmp_path):
    p = _train(
        [
            "--out",
            str(tmp_path / "run"),
            "--set",
            "train.devices=4",
            "--set",
            "train.data_placement=stream",
            "--set",
            "train.stream.window=3",
        ],
        _env(4),
        tmp_path,
    )
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-2000:]
    assert json.loads(out)["data_placement"] == "stream"
    _close(single, _metrics(tmp_path / "run"))


def test_batch_is_sharded_over_the_mesh(tmp_path):
    code = """
import jax, jax.numpy as jnp
from nnctl.data.prepare import prepare
from nnctl.app import build
from nnctl.spec import load_spec
loaded = load_spec(%r, ("train.devices=all",))
b = build(loaded, prepare(loaded.spec, loaded.analysis, loaded.base_dir))
place = b.loop.placement
carry = jax.jit(b.loop.start, static_argnums=0)(tuple(b.data.input_shape))
data = place.put((b.data.x_train, b.data.y_train))
hlo = jax.jit(lambda s, d: b.loop.train_epoch(s, d, jnp.int32(0))).lower(carry.state, data).compile().as_text()
print(place.size, "all-reduce" in hlo)
""" % str(SPECS / "iris.yaml")
    r = subprocess.run([sys.executable, "-c", code], env=_env(4), capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["4", "True"]  # gradients are all-reduced across the 4 shards


def test_devices_errors(tmp_path):
    p = _train(["--out", str(tmp_path / "a"), "--set", "train.devices=8"], _env(2), tmp_path)
    err = "".join(p.communicate(timeout=300))  # --json: the error document is on stdout
    assert p.returncode == 2 and "only 2 cpu device(s)" in err
    p = _train(["--out", str(tmp_path / "b"), "--set", "train.devices=3"], _env(4), tmp_path)
    err = "".join(p.communicate(timeout=300))
    assert p.returncode == 2 and "multiple of the number of devices" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_single_process(single, tmp_path):
    port = _free_port()
    procs = [
        _train(
            [
                "--out",
                str(tmp_path / "run"),
                "--set",
                "train.devices=all",
                "--coordinator",
                f"127.0.0.1:{port}",
                "--num-processes",
                "2",
                "--process-id",
                str(i),
            ],
            _env(1),
            tmp_path,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    # only process 0 wrote the run directory; both computed the same thing
    assert [json.loads(o.strip().splitlines()[-1])["run_dir"] == str(tmp_path / "run") for o, _ in outs] == [
        True,
        False,
    ]
    _close(single, _metrics(tmp_path / "run"))
