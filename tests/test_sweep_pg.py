"""Two `nnctl sweep` workers on one PostgreSQL study (Optuna's distributed design: workers share an RDB). The
test starts a throwaway server (Debian's postgresql package: initdb and pg_ctl) in a temporary directory on a
free port, and skips, saying why, only where no server can be started here."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("optuna", reason="nnctl sweep needs the sweep extra (optuna)")
pytest.importorskip("psycopg", reason="the PostgreSQL driver (psycopg[binary], in the sweep extra) is missing")

import optuna

from nnctl.app.sweep import run_sweep

SPEC = """\
name: pg
data: {source: builtin:iris, validation_split: 0.25}
model:
  layers:
    - {type: dense, units: 8, activation: relu}
    - {type: dense, units: 3, activation: softmax}
train:
  loss: categorical_crossentropy
  metrics: [accuracy]
  batch_size: full
  epochs: 2
search:
  sampler: random
  space:
    train.optimizer.learning_rate: {float: [1.0e-3, 1.0e-1], log: true}
"""


def _bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1:]
    return found if isinstance(found, str) else (found[0] if found else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql (.ci/run does)")
    as_user: list[str] = []
    root = tempfile.mkdtemp(prefix="nnctl-pg-")
    if os.geteuid() == 0:  # the server refuses to run as root: run it as the package's postgres user
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    port, data = _free_port(), os.path.join(root, "data")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    try:
        subprocess.run([*as_user, initdb, "-D", data, "-U", "nnctl", "--auth=trust"], check=True, capture_output=True)
        start = [*as_user, pg_ctl, "-D", data, "-l", os.path.join(root, "log"), "-o", opts, "-w", "-t", "60", "start"]
        subprocess.run(start, check=True, capture_output=True)
    except (subprocess.CalledProcessError, OSError) as e:
        err = getattr(e, "stderr", b"") or b""
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"cannot start a PostgreSQL server here: {e}: {err.decode(errors='replace')[-300:]}")
    try:
        yield f"postgresql://nnctl@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", data, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_a_postgresql_study(tmp_path, postgres):
    f = tmp_path / "s.yaml"
    f.write_text(SPEC)
    res = run_sweep(str(f), str(tmp_path / "sw"), n_trials=2, workers=2, storage=postgres, study_name="pg-study")
    assert res.progress.done == 2 and res.storage == postgres
    study = optuna.load_study(study_name="pg-study", storage=postgres)  # the study lives in the server
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 2
    assert all(t.user_attrs["pid"] != os.getpid() for t in done)  # trained by the worker processes
    assert sorted(p.name for p in (tmp_path / "sw").glob("worker-*.log")) == ["worker-1.log", "worker-2.log"]
    assert all(Path(t.user_attrs["run_dir"], "weights.msgpack").exists() for t in done)
    assert not (tmp_path / "sw" / "study.journal").exists()
