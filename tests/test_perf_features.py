"""Performance features that must not change results: multi-epoch chunks, the masked last batch, bf16,
the compilation cache, lazy imports, `nnctl time`. (Speed itself is measured by bench/, never here.)"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, SPECS

IRIS_ES = ("train.epochs=60", "train.early_stopping.patience=3", "train.early_stopping.min_delta=0.05")


def _built(spec, overrides=()):
    from nnctl.app import build
    from nnctl.data.prepare import prepare
    from nnctl.spec import load_spec

    loaded = load_spec(str(spec), tuple(overrides))
    return build(loaded, prepare(loaded.spec, loaded.analysis, loaded.base_dir))


def test_chunked_epochs_stop_where_per_epoch_checks_stop():
    """Many epochs per compiled call (early-stopping test on device) == one epoch per call, number for number."""
    from nnctl.app import fit

    one = fit(_built(SPECS / "iris.yaml", IRIS_ES), target_chunk_s=0.0)  # k = 1 epoch per call throughout
    many = fit(_built(SPECS / "iris.yaml", IRIS_ES), target_chunk_s=1e9)  # as many as fit in a call
    assert one.reason == many.reason == "patience"
    assert len(one.records) == len(many.records) < 60
    for a, b in zip(one.records, many.records):
        assert a["epoch"] == b["epoch"]
        assert a["train/loss"] == b["train/loss"] and a["val/loss"] == b["val/loss"]
    import jax

    for x, y in zip(jax.tree.leaves(one.weights), jax.tree.leaves(many.weights)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_chunk_respects_limit_and_capacity():
    import jax
    import jax.numpy as jnp

    from nnctl.engine.compiled import stack_records

    b = _built(SPECS / "xor.yaml", ("train.epochs=50",))
    loop = b.loop
    carry = jax.jit(loop.start, static_argnums=0)(tuple(b.data.input_shape))
    data = (jnp.asarray(b.data.x_train), jnp.asarray(b.data.y_train))
    f = jax.jit(loop.chunk, static_argnums=4)
    carry, recs = f(carry, data, None, jnp.int32(7), 16)  # stops at the limit
    assert [r["epoch"] for r in stack_records(recs)] == list(range(7))
    carry, recs = f(carry, data, None, jnp.int32(50), 16)  # stops at the capacity
    assert [r["epoch"] for r in stack_records(recs)] == list(range(7, 23))
    assert int(carry.epoch) == 23


def test_last_short_batch_is_masked_and_counted_exactly():
    import jax
    import jax.numpy as jnp

    b = _built(
        SPECS / "iris.yaml",
        ("train.batch_size=16", "data.validation_split=0", "data.test_split=0", "train.early_stopping.monitor=loss"),
    )
    loop = b.loop
    assert loop.n_train == 150 and loop.n_batches == 10  # 9 full batches + 6 real examples in the last
    state = jax.jit(loop.start, static_argnums=0)(tuple(b.data.input_shape)).state
    data = (jnp.asarray(b.data.x_train), jnp.asarray(b.data.y_train))
    _, sums, counters = jax.jit(loop.train_epoch)(state, data, jnp.int32(0))
    assert float(sums["n"]) == 150.0 and float(counters.steps) == 10.0
    if "confusion" in sums:  # the padded examples are not counted in any metric either
        assert float(sums["confusion"].sum()) == 150.0


def test_bf16_computes_in_bfloat16_and_keeps_float32_state():
    import jax
    import jax.numpy as jnp

    from nnctl.app import fit

    b = _built(SPECS / "xor.yaml", ("train.precision=bf16", "train.epochs=300"))
    assert b.obj.compute_dtype == jnp.bfloat16
    seen = []
    orig = b.obj.net.apply

    def spy(variables, x, **kw):
        seen.append((x.dtype, jax.tree.leaves(variables["params"])[0].dtype))
        return orig(variables, x, **kw)

    object.__setattr__(b.obj, "net", type("Spy", (), {"apply": staticmethod(spy), "init": orig.__self__.init})())
    b = dataclasses.replace(b, loop_for=None)  # the fit uses b.loop (whose objective is b.obj), not a rebuilt one
    res = fit(b)
    assert seen and all(xd == jnp.bfloat16 and pd == jnp.bfloat16 for xd, pd in seen)
    leaves = jax.tree.leaves(res.carry.state.params) + jax.tree.leaves(res.carry.state.opt_state)
    assert all(a.dtype in (jnp.float32, jnp.int32) for a in leaves)
    losses = [r["train/loss"] for r in res.records]
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0]
    fp32 = fit(_built(SPECS / "xor.yaml", ("train.epochs=300",)))
    assert abs(fp32.records[0]["train/loss"] - losses[0]) < 2e-2  # same start, bf16 rounding only


def test_compilation_cache_dir_from_env(monkeypatch, tmp_path):
    from nnctl import jaxcfg

    monkeypatch.setenv("NNCTL_CACHE_DIR", str(tmp_path / "c"))
    assert jaxcfg.cache_dir() == tmp_path / "c"
    monkeypatch.setenv("NNCTL_CACHE_DIR", "off")
    assert jaxcfg.cache_dir() is None
    monkeypatch.delenv("NNCTL_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert jaxcfg.cache_dir() == tmp_path / "x" / "nnctl" / "jax"


def test_second_train_reuses_cached_programs(tmp_path):
    env = {**os.environ, "NNCTL_CACHE_DIR": str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    for i in range(2):
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "nnctl",
                "train",
                str(SPECS / "xor.yaml"),
                "--set",
                "train.epochs=20",
                "--out",
                str(tmp_path / f"run{i}"),
                "--json",
            ],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert r.returncode == 0, r.stderr[-2000:]
        if i == 0:
            entries = sorted(p.name for p in (tmp_path / "cache").iterdir())
            assert entries, "the first run wrote nothing to the compilation cache"
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == entries  # nothing new compiled
    # `nnctl eval` compiles through the same cache (it used to compile every program again in each process)
    env["NNCTL_CACHE_DIR"] = str(tmp_path / "eval-cache")
    r = subprocess.run(
        [sys.executable, "-m", "nnctl", "eval", str(tmp_path / "run0"), "--split", "train", "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert any((tmp_path / "eval-cache").iterdir()), "nnctl eval did not use the persistent compilation cache"


def test_cli_import_is_lazy():
    code = (
        "import sys, nnctl.cli; heavy = [m for m in ('jax', 'flax', 'optax', 'torch') if m in sys.modules]; "
        "print(heavy)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def test_time_command_reports_compile_step_flops_memory():
    from typer.testing import CliRunner

    from nnctl.cli import app

    r = CliRunner().invoke(app, ["time", str(SPECS / "iris.yaml"), "--steps", "5", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["compile_seconds"] > 0 and doc["step_ms"] > 0 and doc["samples_per_second"] > 0
    assert doc["flops_per_step"] > 0 and doc["memory_bytes"]["total"] > 0
    assert doc["epoch_program"]["steps_per_epoch"] == 6


@pytest.mark.parametrize("bad, fragment", [("train.devices=0", "devices"), ("train.precision=fp8", "precision")])
def test_devices_and_precision_are_validated(bad, fragment):
    from nnctl.errors import SpecError
    from nnctl.spec import load_spec

    with pytest.raises(SpecError, match=fragment):
        load_spec(str(SPECS / "xor.yaml"), (bad,))


def test_stack_records_matches_a_dict_per_row_with_extra_entries_last():
    import numpy as np

    from nnctl.engine.compiled import stack_records

    recs = {
        "train/loss": np.array([0.5, np.nan, 0.25], np.float32),
        'it\'s "odd" \\ key': np.array([1, 2, 3], np.int32),
        "improved": np.array([True, False, True]),
        "active": np.array([True, True, False]),
    }
    out = stack_records(recs, time=0.125)
    cols = {k: recs[k][:2].tolist() for k in sorted(recs) if k != "active"}  # device_get: a pytree, keys sorted
    want = [{**dict(zip(cols, row)), "time": 0.125} for row in zip(*cols.values())]
    assert [list(r) for r in out] == [list(r) for r in want]
    assert [{k: str(v) for k, v in r.items()} for r in out] == [{k: str(v) for k, v in r.items()} for r in want]
    assert [type(v) for v in out[0].values()] == [bool, int, float, float]
    assert stack_records({"active": np.zeros(0, bool), "epoch": np.zeros(0, np.int32)}) == []


def test_emit_numbers_epochs_from_one_and_counts_trailing_all_skipped_epochs():
    import numpy as np

    from nnctl.app.fitting import _Run

    seen: list = []
    run = _Run(None, seen.append, None, None, None)  # type: ignore[arg-type]  (emit needs no built spec)
    nan = float("nan")

    def call(losses, skipped, first):
        n = len(losses)
        cols = {"epoch": np.arange(first, first + n, dtype=np.int32), "skipped_steps": np.array(skipped, np.float32)}
        return run.emit({**cols, "train/loss": np.array(losses, np.float32)}, 2.0)

    assert call([1.0, nan, nan], [0, 1, 1], 0) == 3 and run.dead == 2
    assert call([nan, nan], [1, 1], 3) == 2 and run.dead == 4  # a whole call of dead epochs continues the run
    assert call([nan, 0.5], [1, 1], 5) == 2 and run.dead == 0  # skipped steps but a finite loss: not dead
    assert [r["epoch"] for r in seen] == [1, 2, 3, 4, 5, 6, 7] and run.records == seen
    assert [r["time"] for r in seen] == [2.0 / 3] * 3 + [1.0] * 4


def test_records_without_on_epoch_are_columns_until_read_and_the_same_dicts():
    """No `on_epoch`: a call's records are kept as columns (no dict per epoch on the host) and read back as
    the same dicts, in order, with `on_records` seeing each call's columns first; a resumed run's earlier
    records and dicts added later keep their places."""
    import numpy as np

    from nnctl.app.fitting import _Run
    from nnctl.engine.compiled import Records

    calls: list = []
    lazy = _Run(None, None, calls.append, None, None, records=Records([{"epoch": 0, "old": True}]))  # type: ignore[arg-type]
    eager_seen: list = []
    eager = _Run(None, eager_seen.append, None, None, None, records=Records([{"epoch": 0, "old": True}]))  # type: ignore[arg-type]
    for first, losses in ((0, [1.0, 0.5]), (2, [0.25, float("nan"), 0.125])):
        n = len(losses)
        cols = {
            "epoch": np.arange(first, first + n, dtype=np.int32),
            "skipped_steps": np.zeros(n, np.float32),
            "train/loss": np.array(losses, np.float32),
        }
        assert lazy.emit(dict(cols), 1.5) == eager.emit(dict(cols), 1.5) == n
    assert len(lazy.records) == 6 and not lazy.records._rows[1:]  # nothing built yet
    assert [c["epoch"].tolist() for c in calls] == [[1, 2], [3, 4, 5]] and calls[1]["time"].tolist() == [0.5] * 3
    assert (
        [str(r) for r in lazy.records]
        == [str(r) for r in eager.records]
        == ["{'epoch': 0, 'old': True}"] + [str(r) for r in eager_seen]
    )
    assert lazy.records[-1]["epoch"] == 5 and [r["epoch"] for r in lazy.records[1:3]] == [1, 2]
    lazy.records.add_columns({"epoch": np.array([6])}, time=1.0)
    lazy.records.extend([{"epoch": 7}])
    assert [r["epoch"] for r in lazy.records] == [0, 1, 2, 3, 4, 5, 6, 7] and len(lazy.records) == 8
    assert lazy.records != [] and Records() == []


@pytest.mark.parametrize("nan_at", [None, 3])
def test_conditional_update_and_select_keep_the_same_steps(monkeypatch, nan_at):
    """The finite-step guard runs the update under `lax.cond` on CPU and computes-then-selects elsewhere
    (`step.conditional_update`): both keep the same steps (a poisoned batch skipped by both) and reach the same
    weights to float rounding."""
    from nnctl.app.builder import build
    from nnctl.app.fitting import fit
    from nnctl.data.prepare import prepare
    from nnctl.engine import step
    from nnctl.spec import load_spec

    sets = ("train.epochs=6", "train.on_nonfinite=skip_step")
    loaded = load_spec(str(SPECS / "iris.yaml"), sets)
    data = prepare(loaded.spec, loaded.analysis, loaded.base_dir)
    if nan_at is not None:
        x = data.x_train.copy()
        x[nan_at] = np.nan  # one batch of every epoch has a non-finite loss
        data = dataclasses.replace(data, x_train=x)
    runs = []
    for conditional in (True, False):
        monkeypatch.setattr(step, "conditional_update", lambda c=conditional: c)
        res = fit(build(loaded, data))
        runs.append((res, [(r["skipped_steps"], r["step"]) for r in res.records]))
    (a, steps_a), (b, steps_b) = runs
    assert steps_a == steps_b and (nan_at is None) == (steps_a[-1][0] == 0)
    for u, v in zip(jax_leaves(a.weights), jax_leaves(b.weights)):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


def jax_leaves(tree):
    import jax

    return [np.asarray(x) for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize(
    "metrics, argmax_only", [("[accuracy]", True), ("[accuracy, f1, precision]", True), ("[accuracy, auc]", False)]
)
def test_confusion_of_a_softmax_head_is_the_argmax_of_its_logits(metrics, argmax_only):
    """With only confusion-matrix metrics of a softmax head, the sums read the logits' argmax (the softmax is
    skipped): the same matrices as from the probabilities, ties of the logits included (first class wins)."""
    import jax.numpy as jnp

    obj = _built(SPECS / "iris.yaml", (f"train.metrics={metrics}",)).loop.obj
    rng = np.random.default_rng(0)
    z = jnp.asarray(rng.normal(size=(64, 3)).round(1), jnp.float32)  # rounded: some tied logits
    y = jnp.asarray(rng.integers(0, 3, 64), jnp.int32)
    mask = jnp.asarray(rng.random(64) > 0.2, jnp.float32)
    from nnctl import metrics as M

    assert obj._argmax_only(M.needs_of(obj.metric_names), z, y) is argmax_only
    sums = obj.add_batch(obj.zero_sums((3,), jnp.int32), z, y, mask, jnp.float32(0), 1.0)
    p = np.asarray(jax_softmax(z))
    want = np.zeros((3, 3))
    for t, k, m in zip(np.asarray(y), p.argmax(-1), np.asarray(mask)):
        want[t, k] += m
    np.testing.assert_array_equal(np.asarray(sums["confusion"]), want)


def jax_softmax(z):
    import jax

    return jax.nn.softmax(z)


def test_counters_note_any_int32_step_exactly_in_their_float_array():
    """Counters is one float32 array; the first non-finite step is kept as two parts that float32 holds
    exactly, so every int32 step reads back as it was noted, and none reads back as -1."""
    import jax.numpy as jnp

    from nnctl.engine.state import Counters

    zero = Counters.zero()
    assert int(zero.bad_step) == -1 and int(zero.bad_what) == 0
    for step in (0, 1, (1 << 20) - 1, 1 << 20, 16_777_217, 2**31 - 1):
        c = zero.first(jnp.bool_(True), jnp.int32(step), jnp.int32(2))
        assert int(c.bad_step) == step and int(c.bad_what) == 2
        kept = c.first(jnp.bool_(False), jnp.int32(7), jnp.int32(1))  # a later step does not overwrite it
        assert int(kept.bad_step) == step and int(kept.bad_what) == 2
    c = zero.count(jnp.bool_(True), jnp.bool_(False), jnp.float32(1.5), jnp.float32(1.0))
    c = c.count(jnp.bool_(False), jnp.bool_(True), jnp.float32(9.0), jnp.float32(1.0))
    assert [float(c.grad_norm), float(c.clipped), float(c.steps), float(c.skipped)] == [1.5, 1.0, 1.0, 1.0]
    assert int(c.bad_step) == -1


def test_global_norm_sums_large_gradients_by_rows_and_equals_optax():
    """The logged gradient norm: small gradients summed exactly as optax sums them (bit-identical), a large
    one first into a value per row (a reduction XLA:CPU can split across cores), equal to optax's to float32
    rounding."""
    import jax
    import jax.numpy as jnp
    import optax

    from nnctl.engine.step import ROWS_FROM, global_norm

    rng = np.random.default_rng(0)
    small = {
        "b": jnp.asarray(rng.normal(size=16), jnp.float32),
        "k": jnp.asarray(rng.normal(size=(4, 16)), jnp.float32),
    }
    assert float(global_norm(small)) == float(optax.tree.norm(small))
    large = {**small, "w": jnp.asarray(rng.normal(size=(784, 512)), jnp.float32)}
    np.testing.assert_allclose(float(global_norm(large)), float(optax.tree.norm(large)), rtol=1e-6)
    np.testing.assert_allclose(
        float(global_norm(large)), np.sqrt(sum(np.sum(np.float64(v) ** 2) for v in large.values())), rtol=1e-6
    )

    def row_sums(tree):  # the reductions whose result is a vector (one value per row)
        eqns = jax.make_jaxpr(global_norm)(tree).jaxpr.eqns
        return [e.outvars[0].aval.shape for e in eqns if e.primitive.name == "reduce_sum" and e.outvars[0].aval.shape]

    assert row_sums(large) == [(784,)]
    assert row_sums(small) == []
    assert 784 * 512 >= ROWS_FROM > 4 * 16
