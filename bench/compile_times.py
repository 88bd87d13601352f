"""Cold and warm compile time of every example spec, and the whole-process CPU cost of `nnctl train`.

    python -m bench.compile_times                       # every spec in specs/, 3 repeats of the warm runs
    python -m bench.compile_times iris xor --repeats 5  # some specs
    python -m bench.compile_times --md bench/compile_times.md --json bench/compile_times.json
    python -m bench.compile_times NEW --json bench/compile_times.json --md bench/compile_times.md  # add a row

For each spec, `nnctl train` runs as a separate process pinned to one CPU core (so the figures stand on a
loaded machine: CPU seconds, not wall clock), trained for 2 epochs (`train.epochs=2`, no `steps`):

1. cold: an empty persistent compilation cache (`NNCTL_CACHE_DIR` in a temporary directory);
2. warm: the same spec again, served by the cache of 1 (`--repeats` times; medians reported);
3. new values: the learning rate halved, another seed and another epoch count, same cache: the compiled
   programs take those as inputs, so this is a warm run too (`--repeats` times; medians).

Reported per run: from summary.json `compile_cpu_seconds` (the process's CPU time, all threads, while it
compiled: tracing, lowering, XLA or the cache lookup), `train_cpu_seconds` (while it trained),
`compile_seconds` (wall clock, in the JSON only: on a loaded machine it also counts waiting for the core) and
`compile_cache` (programs served by the cache / asked of it); and the whole process's CPU seconds (user +
system, from `getrusage` of the child). "other" is the process's CPU seconds less compiling and training:
starting Python and importing JAX, reading the data, building the model, scoring the test split, writing the
run directory. `transfer_digits` starts from another run's weights (`model.init_from`): a 2-epoch
`digits_mlp` run is trained first (with its own cache) and named by `--set model.init_from=...`.
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
SOURCES = {"transfer_digits": "digits_mlp"}  # specs that start from another spec's run (model.init_from)


CORE = [-1]  # --core: the core the children run on (default: the lowest one this process may use)


def _pin() -> None:
    """In the child: run on one core."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {CORE[0] if CORE[0] >= 0 else min(os.sched_getaffinity(0))})


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
        "train_cpu_s": summary["train_cpu_seconds"],
        "cpu_s": round(cpu, 3),
        "other_cpu_s": round(cpu - summary["compile_cpu_seconds"] - summary["train_cpu_seconds"], 3),
    }


FIGURES = ("compile_s", "compile_cpu_s", "train_cpu_s", "other_cpu_s", "cpu_s")


def measure(spec: Path, repeats: int, new_values: bool = True) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        cache = t / "cache"
        base = []
        if spec.stem in SOURCES:  # its source run, trained with a cache of its own
            train_once(spec.with_name(f"{SOURCES[spec.stem]}.yaml"), t / "source-cache", t / "source", [])
            base = [f"model.init_from={t / 'source'}"]
        cold = train_once(spec, cache, t / "cold", base)
        warm = [train_once(spec, cache, t / f"warm{i}", base) for i in range(repeats)]
        lr = _halved_rate(spec)
        new = [
            train_once(spec, cache, t / f"new{i}", [*base, f"seed={100 + i}", "train.epochs=3", *lr])
            for i in range(repeats if new_values else 0)
        ]
    med = lambda runs, k: round(statistics.median(r[k] for r in runs), 3)
    return {
        "spec": spec.stem,
        "cold": cold,
        "warm": {k: med(warm, k) for k in FIGURES} | {"cache": warm[-1]["cache"]},
        "new_values": {k: med(new, k) for k in FIGURES} | {"cache": new[-1]["cache"]} if new else None,
        "changed": ["seed", "train.epochs", *(s.split("=")[0] for s in lr)],
    }


def _halved_rate(spec: Path) -> list[str]:
    """`--set` halving the spec's learning rates where they are plain numbers (schedules are left alone): the
    generator and discriminator rates where the spec has them, else the optimizer's."""
    s = load_spec(str(spec), check=False).spec  # (a model.init_from run need not exist yet)
    parts = [n for n in ("generator", "discriminator") if getattr(s.train, n, None) is not None]
    names = parts or ["optimizer"]  # the adversarial kinds (gan, aae, vaegan, cyclegan) have one per network
    out = []
    for name in names:
        lr = getattr(s.train, name).learning_rate
        out += [f"train.{name}.learning_rate={lr / 2}"] if isinstance(lr, (int, float)) else []
    return out


def cache_text(c: dict | None) -> str:
    return "-" if not c else f"{c['from_cache']}/{c['programs']}"


def markdown(rows: list[dict], command: str = "") -> str:
    head = f"`{command}`: " if command else ""
    lines = [
        f"{head}CPU seconds of `nnctl train` processes pinned to one core, 2 epochs each; warm and new-values "
        "figures are medians. Each process's CPU seconds are split into compile / train / other (other: "
        "Python and JAX start-up, data, model building, test scoring, writing the run). cache: programs "
        "served by the persistent cache / asked of it.",
        "",
        "| spec | cold: compile / train / other | process | warm: compile / train / other | process | cache"
        " | new values: compile | process | cache |",
        "|---|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    split = lambda v: f"{v['compile_cpu_s']:.2f} / {v['train_cpu_s']:.2f} / {v['other_cpu_s']:.2f}"
    for r in rows:
        cold, warm, new = r["cold"], r["warm"], r["new_values"]
        cells = [r["spec"], split(cold), f"{cold['cpu_s']:.2f}", split(warm), f"{warm['cpu_s']:.2f}"]
        cells.append(cache_text(warm["cache"]))
        cells += [f"{new['compile_cpu_s']:.2f}", f"{new['cpu_s']:.2f}", cache_text(new["cache"])] if new else ["-"] * 3
        lines.append("| " + " | ".join(cells) + " |")
    cold = sorted(r["cold"]["compile_cpu_s"] for r in rows)
    warm = sorted(r["warm"]["compile_cpu_s"] for r in rows)
    if rows:
        lines += [
            "",
            f"Over the {len(rows)} specs, compile CPU seconds: cold median {statistics.median(cold):.2f} "
            f"(range {cold[0]:.2f}–{cold[-1]:.2f}), warm median {statistics.median(warm):.2f} "
            f"(range {warm[0]:.2f}–{warm[-1]:.2f}).",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("specs", nargs="*", help="spec names in specs/ (default: all)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="the results file: rows of the specs measured now replace theirs, others stay")
    ap.add_argument("--md", help="write the markdown table here (of every row of --json's file when given)")
    ap.add_argument("--resume", action="store_true", help="skip the specs already in --json's file")
    ap.add_argument("--core", type=int, default=-1, help="the core the measured processes run on")
    ap.add_argument("--no-new-values", action="store_true", help="skip the runs with new hyperparameter values")
    a = ap.parse_args(argv)
    CORE[0] = a.core
    names = a.specs or sorted(p.stem for p in (ROOT / "specs").glob("*.yaml"))
    kept = {r["spec"]: r for r in json.loads(Path(a.json).read_text())} if a.json and Path(a.json).exists() else {}
    rows = []
    for name in names:
        done = kept.get(name) if a.resume else None
        rows.append(done or measure(ROOT / "specs" / f"{name}.yaml", a.repeats, not a.no_new_values))
        print(json.dumps(rows[-1]), file=sys.stderr)
        kept[name] = rows[-1]
        if a.json:  # after each spec, so an interrupted run can --resume
            Path(a.json).write_text(json.dumps([kept[k] for k in sorted(kept)], indent=1) + "\n")
    shown = [kept[k] for k in sorted(kept)] if a.json else rows
    table = markdown(shown, " ".join(["python -m bench.compile_times", *(argv if argv is not None else sys.argv[1:])]))
    print(table)
    if a.md:
        Path(a.md).write_text(table)


if __name__ == "__main__":
    main()
