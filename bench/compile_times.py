"""Cold and warm compile time of every example spec, and the whole-process CPU cost of `nnctl train`.

    python -m bench.compile_times                       # every spec in specs/, 3 repeats of the warm runs
    python -m bench.compile_times iris xor --repeats 5  # some specs
    python -m bench.compile_times --md bench/compile_times.md --json bench/compile_times.json

For each spec, `nnctl train` runs as a separate process pinned to one CPU core (so the figures stand on a
loaded machine: CPU seconds, not wall clock), trained for 2 epochs (`train.epochs=2`, no `steps`):

1. cold: an empty persistent compilation cache (`NNCTL_CACHE_DIR` in a temporary directory);
2. warm: the same spec again, served by the cache of 1 (`--repeats` times; medians reported);
3. new values: the learning rate halved, another seed and another epoch count, same cache: the compiled
   programs take those as inputs, so this is a warm run too (`--repeats` times; medians).

Reported per run: from summary.json `compile_cpu_seconds` (the process's CPU time, all threads, while it
compiled: tracing, lowering, XLA or the cache lookup), `compile_seconds` (wall clock, in the JSON only: on a
loaded machine it also counts waiting for the core) and `compile_cache` (programs served by the cache / asked
of it); and the whole process's CPU seconds (user + system, from `getrusage` of the child).
`transfer_digits` starts from another run's weights (`model.init_from`) and is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from nnctl.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"transfer_digits": "starts from another run's weights (model.init_from)"}


def _pin() -> None:
    """In the child: run on one core (the lowest one this process may use)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def train_once(spec: Path, cache: Path, out: Path, sets: list[str]) -> dict:
    """One pinned `nnctl train` process: its summary's compile figures and its CPU seconds."""
    env = {**os.environ, "NNCTL_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    args = [a for s in ["train.epochs=2", "train.steps=null", *sets] for a in ("--set", s)]
    cmd = [sys.executable, "-m", "nnctl", "train", str(spec), "--out", str(out), "--json", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, preexec_fn=_pin, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{spec.name}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    summary = json.loads(proc.stdout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "compile_s": summary["compile_seconds"],
        "compile_cpu_s": summary["compile_cpu_seconds"],
        "cache": summary.get("compile_cache"),
        "cpu_s": round(cpu, 3),
    }


def measure(spec: Path, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        cache = t / "cache"
        cold = train_once(spec, cache, t / "cold", [])
        warm = [train_once(spec, cache, t / f"warm{i}", []) for i in range(repeats)]
        lr = _halved_rate(spec)
        new = [
            train_once(spec, cache, t / f"new{i}", [f"seed={100 + i}", "train.epochs=3", *lr]) for i in range(repeats)
        ]
    med = lambda runs, k: round(statistics.median(r[k] for r in runs), 3)
    return {
        "spec": spec.stem,
        "cold": cold,
        "warm": {k: med(warm, k) for k in ("compile_s", "compile_cpu_s", "cpu_s")} | {"cache": warm[-1]["cache"]},
        "new_values": {k: med(new, k) for k in ("compile_s", "compile_cpu_s", "cpu_s")} | {"cache": new[-1]["cache"]},
        "changed": ["seed", "train.epochs", *(["train.optimizer.learning_rate"] if lr else [])],
    }


def _halved_rate(spec: Path) -> list[str]:
    """`--set` halving the spec's learning rate when it is a plain number (schedules are left alone)."""
    opt = load_spec(str(spec)).spec.train.optimizer
    lr = opt.learning_rate
    return [f"train.optimizer.learning_rate={lr / 2}"] if isinstance(lr, (int, float)) else []


def cache_text(c: dict | None) -> str:
    return "-" if not c else f"{c['from_cache']}/{c['programs']}"


def markdown(rows: list[dict], command: str = "") -> str:
    head = f"`{command}`: " if command else ""
    lines = [
        f"{head}CPU seconds of `nnctl train` processes pinned to one core, 2 epochs each; warm and new-values "
        "figures are medians. cache: programs served by the persistent cache / asked of it.",
        "",
        "| spec | cold: compile CPU s | process CPU s | warm: compile CPU s | process CPU s | cache"
        " | new values: compile CPU s | process CPU s | cache |",
        "|---|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in rows:
        cells = [r["spec"]]
        for k in ("cold", "warm", "new_values"):
            v = r[k]
            cells += [f"{v['compile_cpu_s']:.2f}", f"{v['cpu_s']:.2f}"]
            cells += [cache_text(v["cache"])] if k != "cold" else []
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("specs", nargs="*", help="spec names in specs/ (default: all)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--md", help="write the markdown table here")
    a = ap.parse_args(argv)
    names = a.specs or sorted(p.stem for p in (ROOT / "specs").glob("*.yaml"))
    rows = []
    for name in names:
        if name in SKIP:
            print(f"{name}: skipped, {SKIP[name]}", file=sys.stderr)
            continue
        rows.append(measure(ROOT / "specs" / f"{name}.yaml", a.repeats))
        print(json.dumps(rows[-1]), file=sys.stderr)
    table = markdown(rows, " ".join(["python -m bench.compile_times", *(argv if argv is not None else sys.argv[1:])]))
    print(table)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1) + "\n")
    if a.md:
        Path(a.md).write_text(table)


if __name__ == "__main__":
    main()
