"""Smoke test of the benchmark (`python -m bench`): its nnctl code path (bench/child.py, which drives nnctl
through the public API only: nnctl.spec.load_spec, nnctl.data.prepare.prepare, nnctl.app.build/fit), the
hand-written JAX reference and, when installed, PyTorch eager, each on XOR for a few epochs, plus the
report's throughput table built from the nnctl row. It fails when the bench's nnctl path breaks."""

from __future__ import annotations

import dataclasses
import json
import math

import jax
import pytest

from bench import child, suite, workloads

EPOCHS = 20  # timed epochs after a warm-up: a few steps (XOR: one step per epoch; torch times a tenth of them)
KEYS = {
    "seconds",
    "steps",
    "samples",
    "compile_s",
    "impl",
    "workload",
    "wall_s",
    "peak_rss_mb",
    "steps_per_s",
    "samples_per_s",
    "pid",
    "cpu_seconds",
    "cpu_steps_per_s",
    "cpu_samples_per_s",
    "affinity",
}
NNCTL_KEYS = KEYS | {"fuse", "placement", "final_loss"}


@pytest.fixture
def tiny_xor(monkeypatch):
    """`bench.child` run on XOR shortened to a few epochs; returns a function impl -> the child's JSON row."""
    w = dataclasses.replace(workloads.by_name("xor", quick=True), epochs=EPOCHS)
    monkeypatch.setattr(child, "by_name", lambda name, quick=False: w)

    def run(impl: str, capsys) -> dict:
        capsys.readouterr()
        child.main([impl, "xor", "--quick"])
        out = capsys.readouterr().out.strip().splitlines()
        return json.loads(out[-1])  # the line suite.measure parses

    return w, run


def check_row(row: dict, w, impl: str, keys: set, epochs: int = EPOCHS) -> None:
    assert keys <= row.keys(), f"missing keys: {sorted(keys - row.keys())}"
    assert row["impl"] == impl and row["workload"] == "xor"
    assert row["steps"] == epochs * w.steps_per_epoch and row["samples"] == epochs * w.n
    assert row["seconds"] > 0 and math.isfinite(row["steps_per_s"]) and row["steps_per_s"] > 0
    assert row["samples_per_s"] > 0 and row["peak_rss_mb"] > 0 and row["compile_s"] >= 0
    assert row["cpu_seconds"] > 0 and row["cpu_steps_per_s"] > 0


def test_bench_nnctl_path(tiny_xor, capsys):
    w, run = tiny_xor
    row = run("nnctl", capsys)
    check_row(row, w, "nnctl", NNCTL_KEYS)
    assert row["fuse"] == "epochs" and row["placement"] == "device"
    assert math.isfinite(row["final_loss"])

    # the report's throughput table accepts the row (the JAX and torch cells may be empty)
    doc = {
        "quick": True,
        "command": "python -m bench --quick",
        "date": "-",
        "repeats": 1,
        "machine": {
            "cpu": "-",
            "cpu_flags": "",
            "cores": 1,
            "memory": "",
            "python": "-",
            "jax": "-",
            "flax": "-",
            "optax": "-",
            "torch": "-",
            "load_start": (0.0, 0.0, 0.0),
        },
        "load_end": (0.0, 0.0, 0.0),
        "peak": {},
        "notes": [],
        "throughput": {"xor": {"nnctl": [row], "jax": [], "torch": [], suite.STREAM: []}},
    }
    md = suite.report(doc)
    assert "| xor (steps/s) |" in md

    # pinned mode: per CPU second first, the same runs per wall second after, and the variants' table
    bare = {**row, "impl": "nnctl-bare", "cpu_steps_per_s": row["cpu_steps_per_s"] * 2}
    doc["throughput"]["xor"]["nnctl-bare"] = [bare]
    md = suite.report({**doc, "pinned": 1})
    cpu_part, wall_part = md.split("### The same runs, per wall-clock second")
    assert "pinned to core 1, per CPU second" in cpu_part and "| xor (steps/s) |" in wall_part
    assert f"{row['cpu_steps_per_s']:,.0f}" in cpu_part and f"{row['steps_per_s']:,.0f}" in wall_part
    assert "| xor | records off (no metrics, guard, gradient norm) |" in md and "| 0.50x | 0.50 |" in md


def test_bench_records_off_variant_trains_the_same(tiny_xor, capsys, monkeypatch):
    """`nnctl-bare` (metrics, finiteness guard and gradient norm off, bench/variants.py) trains to the same
    loss: only bookkeeping is removed."""
    from nnctl.engine import loop
    from nnctl.objectives import supervised

    for module, attr in ((loop, "commit"), (supervised, "deferred_update")):  # restored after the test
        monkeypatch.setattr(module, attr, getattr(module, attr))
    w, run = tiny_xor
    on, off = run("nnctl", capsys), run("nnctl-bare", capsys)
    check_row(off, w, "nnctl-bare", NNCTL_KEYS)
    assert off["final_loss"] == pytest.approx(on["final_loss"], rel=1e-6)


def test_bench_reference_jax(tiny_xor, capsys):
    w, run = tiny_xor
    with jax.numpy_rank_promotion("allow"):  # the reference loop broadcasts biases implicitly
        row = run("jax", capsys)
    check_row(row, w, "jax", KEYS)


def test_bench_reference_torch(tiny_xor, capsys):
    pytest.importorskip("torch")
    w, run = tiny_xor
    row = run("torch", capsys)
    check_row(row, w, "torch", KEYS, epochs=EPOCHS // 10)
