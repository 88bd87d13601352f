"""Paired A/B against the reference loop: nnctl of an earlier revision, nnctl of this tree and the reference
JAX loop, all measured by this tree's bench/child.py, in rounds, each process fresh and pinned to one core.

    python -m bench.paired --base af073fb --only xor,iris --rounds 6 --core 0 --out /tmp/paired.jsonl

Each round runs, per workload, the three processes (the order reversed every other round), so a change of
load on a shared machine hits all three of a round alike. Prints medians (min-max) of throughput per CPU
second, and the medians of the per-round ratios nnctl/JAX for both trees and this/base; `--out` keeps one JSON
line per process (bench/child.py's output plus `tree` and `round`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.ab import ROOT, export


def child(tree: Path, impl: str, workload: str, core: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "BENCH_PIN_CORE": str(core)}
    out = subprocess.run(
        [sys.executable, "-m", "bench.child", impl, workload], cwd=tree, env=env, check=True, capture_output=True
    )
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def summary(rows: list[dict], workload: str) -> list[str]:
    by: dict[str, dict[int, float]] = {}
    for r in rows:
        if r["workload"] == workload:
            by.setdefault(r["tree"], {})[r["round"]] = r["cpu_steps_per_s"]
    rounds = sorted(by["jax"])

    def fmt(v: list[float], spec: str) -> str:
        return f"{statistics.median(v):{spec}} ({min(v):{spec}}–{max(v):{spec}})"

    lines = [f"{workload}, per CPU second:"]
    lines += [f"  {t:5s} {fmt(list(by[t].values()), ',.0f')}" for t in ("base", "this", "jax")]
    for a, b in (("base", "jax"), ("this", "jax"), ("this", "base")):
        lines.append(f"  {a}/{b} per round: {fmt([by[a][i] / by[b][i] for i in rounds], '.2f')}")
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="the revision whose nnctl is compared (e.g. a commit)")
    ap.add_argument("--only", default="xor,iris", help="comma-separated workloads of bench/workloads.py")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--core", type=int, default=0, help="the core every process is pinned to")
    ap.add_argument("--out", help="a file for one JSON line per process")
    args = ap.parse_args(argv)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        base = export(args.base, Path(tmp))
        shutil.copytree(ROOT / "bench", base / "bench", dirs_exist_ok=True)  # the same measuring code
        trees = {"base": (base, "nnctl"), "this": (ROOT, "nnctl"), "jax": (ROOT, "jax")}
        for r in range(1, args.rounds + 1):
            for w in args.only.split(","):
                for name in ("base", "this", "jax") if r % 2 else ("jax", "this", "base"):
                    tree, impl = trees[name]
                    rows.append({**child(tree, impl, w, args.core), "tree": name, "round": r})
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows))
    for w in args.only.split(","):
        print("\n".join(summary(rows, w)))


if __name__ == "__main__":
    main()
