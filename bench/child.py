"""One measurement in a fresh process: `python -m bench.child IMPL WORKLOAD [--quick]`.

IMPL: nnctl | nnctl-stream (`train.data_placement: stream`) | jax | torch | a variant of bench/variants.py.

Prints one JSON line: throughput after compile/warm-up, compile (or warm-up) seconds, and the process's
peak resident memory (ru_maxrss), so each implementation's memory is measured on its own. The timed part is
measured twice: wall seconds (`seconds`) and CPU seconds of the whole process, every thread
(`cpu_seconds`, time.process_time; for nnctl from the warm-up epoch's records to the last records, the clock read
after those two calls only), which is what the pinned mode of the suite reports: on a shared machine
a process waiting for its core accrues wall time but no CPU time. With BENCH_PIN_CORE=N in the environment
the process first pins itself (all its threads, before jax or torch start any) to core N.

nnctl is driven through its public API only: `nnctl.spec.load_spec`, `nnctl.data.prepare.prepare`,
`nnctl.app.build` / `nnctl.app.fit` (its `on_records` hook: each call's records as columns, the way a long
run of a tiny model is watched), and the documented fields of `Built` (fuse, placement) and `FitResult`
(records with each epoch's `time` and `train/loss`, compile_s). tests/test_bench_smoke.py runs this path.
"""

from __future__ import annotations

import inspect
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import variants
from bench.workloads import by_name, make_data, nnctl_spec

if os.environ.get("BENCH_PIN_CORE"):  # before numpy/jax/torch start thread pools sized from the affinity
    os.sched_setaffinity(0, {int(os.environ["BENCH_PIN_CORE"])})


def run_nnctl(w, x, y, overrides: tuple = ()) -> dict:
    from nnctl.app import build, fit
    from nnctl.data.prepare import prepare
    from nnctl.spec import load_spec

    with tempfile.TemporaryDirectory() as d:
        np.savez(Path(d) / "data.npz", x=x, y=y)
        spec = Path(d) / "spec.yaml"
        spec.write_text(nnctl_spec(w, "data.npz"))
        loaded = load_spec(str(spec), overrides)
        data = prepare(loaded.spec, loaded.analysis, loaded.base_dir)
        b = build(loaded, data)
        marks: list[float] = []
        last = w.epochs + 1  # the spec's epochs (nnctl_spec): the warm-up epoch and the timed ones

        def mark(cols: dict) -> None:  # the CPU clock after the warm-up epoch's call and after the last call:
            if not marks or cols["epoch"][-1] == last:  # records read as columns, one call at a time
                marks.append(time.process_time())

        if "on_records" in inspect.signature(fit).parameters:
            res = fit(b, on_records=mark)
        else:  # an nnctl before on_records (bench/paired.py's base): its dict per record, read as one
            res = fit(b, on_epoch=lambda r: mark({"epoch": [r["epoch"]]}))
        if len(marks) < 2:  # stopped before the last epoch: up to the return of fit
            marks.append(time.process_time())
    recs = res.records
    timed = recs[1:]  # the first epoch is the warm-up (its call also measured the chunk size)
    secs = sum(r["time"] for r in timed)
    # CPU time from the warm-up call's records to the last call's: the timed epochs, host-side records included
    return {
        "seconds": secs,
        "cpu_seconds": marks[-1] - marks[0],
        "steps": len(timed) * w.steps_per_epoch,
        "samples": len(timed) * w.n,
        "compile_s": res.compile_s,
        "fuse": b.fuse,
        "placement": b.placement,
        "final_loss": recs[-1]["train/loss"],
    }


def main(argv: list[str]) -> None:
    impl, name = argv[0], argv[1]
    quick = "--quick" in argv
    w = by_name(name, quick)
    x, y = make_data(w)
    t0 = time.perf_counter()
    if impl == "nnctl":
        out = run_nnctl(w, x, y)
    elif impl == "nnctl-stream":  # the data stays in host memory; windows of batches are prefetched
        out = run_nnctl(w, x, y, ("train.data_placement=stream",))
    elif impl in variants.NNCTL_VARIANTS:
        variants.patch(impl)
        out = run_nnctl(w, x, y, variants.overrides(impl))
    elif impl == "jax":
        from bench import ref_jax

        out = ref_jax.run(w, x, y)
    elif impl == "torch":
        from bench import ref_torch

        out = ref_torch.run(w, x, y)
    else:
        raise SystemExit(f"unknown implementation {impl}")
    out.update(
        impl=impl,
        workload=name,
        wall_s=time.perf_counter() - t0,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        steps_per_s=out["steps"] / out["seconds"],
        samples_per_s=out["samples"] / out["seconds"],
        cpu_steps_per_s=out["steps"] / out["cpu_seconds"],
        cpu_samples_per_s=out["samples"] / out["cpu_seconds"],
        affinity=sorted(os.sched_getaffinity(0)),
        pid=os.getpid(),
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
