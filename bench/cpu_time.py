"""CPU seconds of whole nnctl processes, each pinned to one core: robust on a shared, loaded machine.

    python -m bench.cpu_time specs/iris.yaml --repeats 5 [--core 0] [--command train] [--tree DIR ...]

Runs `nnctl <command> SPEC` REPEATS times in fresh processes under `taskset -c CORE` (when taskset exists) and
reports the user+system CPU seconds of each child (from getrusage of the waited-for child), their median, and
the wall clock for reference. The first run is a warm-up (it fills the persistent compile cache) and is
reported apart. With several `--tree` source trees (e.g. a `git archive` of the base commit and this one),
the runs are interleaved (A, B, A, B, ...) with PYTHONPATH set to each tree, so load changes hit both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def one_run(cmd: list[str], tree: str | None) -> tuple[float, float]:
    """(CPU seconds of the child, wall seconds)."""
    # `python -m` puts the working directory first on sys.path: run inside the tree so its nnctl is the one used
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree)) if tree else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env, cwd=tree)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def measure(spec: str, repeats: int, core: int, command: str, trees: list[str | None]) -> list[dict]:
    pin = ["taskset", "-c", str(core)] if shutil.which("taskset") else []
    cpus: dict[int, list[float]] = {t: [] for t in range(len(trees))}
    walls: dict[int, list[float]] = {t: [] for t in range(len(trees))}
    warmup: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats + 1):
            for t, tree in enumerate(trees):
                cmd = [*pin, sys.executable, "-m", "nnctl", command, os.path.abspath(spec), "--quiet"]
                if command == "train":
                    cmd += ["--out", os.path.join(tmp, f"run{t}_{i}")]
                cpu, wall = one_run(cmd, tree)
                if i == 0:
                    warmup[t] = cpu
                else:
                    cpus[t].append(cpu)
                    walls[t].append(wall)
    return [
        dict(
            spec=spec,
            command=command,
            tree=tree or "(current PYTHONPATH)",
            pinned=bool(pin),
            warmup_cpu_s=round(warmup[t], 3),
            cpu_s=[round(c, 3) for c in cpus[t]],
            median_cpu_s=round(statistics.median(cpus[t]), 3),
            median_wall_s=round(statistics.median(walls[t]), 3),
        )
        for t, tree in enumerate(trees)
    ]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--core", type=int, default=0)
    ap.add_argument("--command", default="train")
    ap.add_argument("--tree", action="append", help="a source tree to put on PYTHONPATH (repeatable)")
    a = ap.parse_args(argv)
    print(json.dumps(measure(a.spec, a.repeats, a.core, a.command, a.tree or [None]), indent=1))


if __name__ == "__main__":
    main()
