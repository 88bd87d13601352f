"""CPU seconds of whole nnctl processes, each pinned to one core: robust on a shared, loaded machine.

    python -m bench.cpu_time specs/iris.yaml --repeats 5 [--core 0] [--command train|eval] [--tree DIR ...]
        [--json FILE] [--md FILE]

Runs `nnctl train SPEC` (or `nnctl eval RUN` of a run trained from SPEC once per tree before the timed
runs) REPEATS times in fresh processes under `taskset -c CORE` (when taskset exists) and reports the
user+system CPU seconds of each child (from getrusage of the waited-for child), their median, and the wall
clock for reference. The first run is a warm-up (it fills the persistent compile cache) and is reported
apart. With several `--tree` source trees (e.g. a `git archive` of the base commit and this one), the runs
are interleaved (A, B, A, B, ...) with PYTHONPATH set to each tree, so load changes hit both alike.

Bytecode: an installed package has its `.pyc` files, so the children write and read theirs in a cache folder
of the measurement (PYTHONPYCACHEPREFIX; the warm-up run fills it) even where the environment sets
PYTHONDONTWRITEBYTECODE; `--no-bytecode` measures with the environment as it is.
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


def one_run(cmd: list[str], tree: str | None, env: dict | None = None) -> tuple[float, float]:
    """(CPU seconds of the child, wall seconds)."""
    # `python -m` puts the working directory first on sys.path: run inside the tree so its nnctl is the one used
    env = dict(env or os.environ)
    if tree:
        env["PYTHONPATH"] = os.path.abspath(tree)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env, cwd=tree)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def child_env(tmp: str, tree_index: int, bytecode: bool) -> dict:
    env = dict(os.environ)
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, f"pyc{tree_index}")
    return env


def measure(
    spec: str, repeats: int, core: int, command: str, trees: list[str | None], bytecode: bool = True
) -> list[dict]:
    pin = ["taskset", "-c", str(core)] if shutil.which("taskset") else []
    cpus: dict[int, list[float]] = {t: [] for t in range(len(trees))}
    walls: dict[int, list[float]] = {t: [] for t in range(len(trees))}
    warmup: dict[int, float] = {}
    nnctl = [sys.executable, "-m", "nnctl"]
    with tempfile.TemporaryDirectory() as tmp:
        envs = [child_env(tmp, t, bytecode) for t in range(len(trees))]
        runs = [os.path.join(tmp, f"trained{t}") for t in range(len(trees))]
        if command == "eval":  # the run every eval scores (this also fills the compile and bytecode caches)
            for t, tree in enumerate(trees):
                one_run([*pin, *nnctl, "train", os.path.abspath(spec), "--quiet", "--out", runs[t]], tree, envs[t])
        for i in range(repeats + 1):
            for t, tree in enumerate(trees):
                if command == "train":
                    cmd = [*pin, *nnctl, "train", os.path.abspath(spec), "--quiet", "--out", f"{runs[t]}_{i}"]
                else:
                    cmd = [*pin, *nnctl, command, runs[t], "--quiet"]
                cpu, wall = one_run(cmd, tree, envs[t])
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
            bytecode=bytecode,
            warmup_cpu_s=round(warmup[t], 3),
            cpu_s=[round(c, 3) for c in cpus[t]],
            median_cpu_s=round(statistics.median(cpus[t]), 3),
            min_cpu_s=round(min(cpus[t]), 3),
            max_cpu_s=round(max(cpus[t]), 3),
            median_wall_s=round(statistics.median(walls[t]), 3),
        )
        for t, tree in enumerate(trees)
    ]


def markdown(rows: list[dict], when: str, argv: list[str]) -> str:
    """A table of the rows, with the command that measured them."""
    lines = [
        f"`python -m bench.cpu_time {' '.join(argv)}` ({when}; load average {os.getloadavg()[0]:.2f} at the end)",
        "",
        "| command | tree | CPU s per run | median CPU s (min–max) | median wall s |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        target = r["spec"] if r["command"] == "train" else f"RUN (trained from {r['spec']})"
        what = f"nnctl {r['command']} {target}"
        per = ", ".join(f"{c:.2f}" for c in r["cpu_s"])
        lines.append(
            f"| `{what}` | {r['tree']} | {per} | {r['median_cpu_s']:.2f} ({r['min_cpu_s']:.2f}–{r['max_cpu_s']:.2f}) "
            f"| {r['median_wall_s']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--core", type=int, default=0)
    ap.add_argument("--command", default="train", choices=["train", "eval"])
    ap.add_argument("--tree", action="append", help="a source tree to put on PYTHONPATH (repeatable)")
    ap.add_argument("--no-bytecode", action="store_true", help="leave PYTHONDONTWRITEBYTECODE as it is")
    ap.add_argument("--json", help="also write the result here")
    ap.add_argument("--md", help="append a markdown table of the result to this file")
    a = ap.parse_args(argv)
    rows = measure(a.spec, a.repeats, a.core, a.command, a.tree or [None], not a.no_bytecode)
    text = json.dumps(rows, indent=1)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    if a.md:
        with open(a.md, "a") as f:
            f.write("\n" + markdown(rows, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), argv))


if __name__ == "__main__":
    main()
