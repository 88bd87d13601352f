"""A/B of XLA:CPU flag sets on one workload: `python -m bench.flags cnn --flags= --flags=--xla_... [--repeats 5]`.

Each run is `python -m bench.child IMPL WORKLOAD` in a fresh process pinned to one core (BENCH_PIN_CORE) with
XLA_FLAGS set to one of the given sets; the sets are interleaved (repeat 1 of every set, then repeat 2, the
order alternating). Prints a table of CPU-second throughput, median (min-max), and each set against the
first (the per-repeat ratios and the ratio of medians).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_once(impl: str, workload: str, flags: str, core: int, quick: bool) -> dict:
    env = {**os.environ, "XLA_FLAGS": flags, "BENCH_PIN_CORE": str(core), "NNCTL_CACHE_DIR": "off"}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    args = [sys.executable, "-m", "bench.child", impl, workload] + (["--quick"] if quick else [])
    r = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise SystemExit(f"{flags!r}: {r.stderr[-1500:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workload")
    ap.add_argument("--impl", default="nnctl")
    ap.add_argument("--flags", action="append", required=True, help="an XLA_FLAGS value (repeatable; '' = none)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--core", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    got: dict[str, list[float]] = {f: [] for f in a.flags}
    for i in range(a.repeats):
        for f in a.flags if i % 2 == 0 else a.flags[::-1]:
            row = run_once(a.impl, a.workload, f, a.core, a.quick)
            got[f].append(row["cpu_samples_per_s"])
            rate = row["cpu_samples_per_s"]
            print(f"[{i + 1}/{a.repeats}] {f or '(none)'}: {rate:,.0f} samples/CPU-s", file=sys.stderr)
    base = got[a.flags[0]]
    print(
        f"| XLA_FLAGS ({a.impl}, {a.workload}, pinned to core {a.core}) | samples per CPU second | "
        "vs first: median ratio | per repeat |"
    )
    print("|---|---|---|---|")
    for f, v in got.items():
        ratios = ", ".join(f"{x / b:.2f}" for x, b in zip(v, base))
        m = statistics.median(v)
        spread = f"{m:,.0f} ({min(v):,.0f}–{max(v):,.0f})"
        print(f"| `{f or '(none)'}` | {spread} | {m / statistics.median(base):.2f} | {ratios} |")


if __name__ == "__main__":
    main()
