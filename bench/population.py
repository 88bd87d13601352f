"""Trials per CPU second: a population of P trials in one compiled program against P sequential runs.

    python -m bench.population [--sizes 16,64] [--repeats 3] [--core 0] [--only iris] [--json F] [--write]
    python -m bench.population --combine A.json B.json --write     # one table from several processes

For iris (specs/iris.yaml as shipped: up to 200 epochs, early stopping) and the digits MLP
(specs/digits_mlp.yaml, `--digits-epochs` epochs), P trials with log-uniform learning rates and weight decays
(fixed draws, seed 0) are trained twice in this process, pinned to one core: as one population
(`nnctl.app.population.train_group`: one vmapped program, P run directories) and as P sequential `train_run`s
(the in-process path of a sequential `nnctl sweep`: each run traced again, its programs loaded from the
persistent compilation cache). Both write full run directories. A warm-up of each (not reported) fills the
caches; then the measurements are interleaved (population, sequential, population, ...), and the medians of
CPU seconds (user + system of this process) with min-max are reported: the machine is shared, so wall time
is not a measure. `--write` replaces the section of bench/RESULTS.md between the markers with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from nnctl.app.population import Member, plan_groups, train_group
from nnctl.app.session import train_run

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- population:start -->", "<!-- population:end -->"


def values(p: int, decay: str = "train.weight_decay", seed: int = 0) -> list[tuple[str, ...]]:
    """P (learning rate, weight decay) overrides; `decay`: the path of the spec's weight decay."""
    rng = np.random.default_rng(seed)
    lr = 10 ** rng.uniform(-3.5, -1.5, p)
    wd = 10 ** rng.uniform(-5, -2, p)
    return [(f"train.optimizer.learning_rate={a:.6g}", f"{decay}={b:.6g}") for a, b in zip(lr, wd)]


def population(spec: str, overrides: list[tuple[str, ...]], out: Path) -> float:
    c = time.process_time()
    groups, errors = plan_groups(spec, overrides)
    assert not errors and len(groups) == 1 and groups[0].blocker is None, (errors, [g.blocker for g in groups])
    train_group(spec, groups[0], [Member(out / f"m{i}", ov) for i, ov in enumerate(overrides)])
    return time.process_time() - c


def sequential(spec: str, overrides: list[tuple[str, ...]], out: Path) -> float:
    c = time.process_time()
    for i, ov in enumerate(overrides):
        train_run(spec, str(out / f"s{i}"), ov)
    return time.process_time() - c


def measure(name: str, spec: str, extra: tuple[str, ...], decay: str, p: int, repeats: int) -> dict:
    ovs = [(*extra, *v) for v in values(p, decay)]
    pop: list[float] = []
    seq: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats + 1):  # round 0: warm-up (compiles; one sequential run compiles what all need)
            a = population(spec, ovs, Path(tmp) / f"pop{i}")
            b = sequential(spec, ovs if i else ovs[:1], Path(tmp) / f"seq{i}")
            if i:
                pop.append(a)
                seq.append(b)
            shutil.rmtree(Path(tmp) / f"pop{i}")
            shutil.rmtree(Path(tmp) / f"seq{i}")
            print(f"{name} P={p} round {i}: population {a:.2f} s, sequential {b:.2f} s", flush=True)
    return {"workload": name, "trials": p, "population_cpu_s": pop, "sequential_cpu_s": seq}


def table(rows: list[dict], core: int | None, when: str) -> str:
    def spread(xs: list[float]) -> str:
        return f"{statistics.median(xs):.2f} ({min(xs):.2f}–{max(xs):.2f})"

    lines = [
        f"## Many trials in one program (`python -m bench.population`, {when}, "
        f"{'each process pinned to one core' if core is not None else 'not pinned'}, CPU seconds)",
        "",
        "P trials (log-uniform learning rate and weight decay) trained as one population (one vmapped program, P "
        "run directories; its programs traced once per process, as later rounds of a sweep reuse them) and as P "
        "sequential in-process `train_run`s (each traced again, its programs loaded from the persistent cache, "
        "as sequential sweep trials are), interleaved, after a warm-up round that is not counted. Both write full "
        "run directories and score the test split. The machine is shared with other engineers' jobs, so the "
        "figures are CPU seconds of the measuring process (user + system), medians with min–max.",
        "",
        "| workload | trials | population CPU s | sequential CPU s | population trials/s | sequential trials/s | "
        "speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        pm, sm = statistics.median(r["population_cpu_s"]), statistics.median(r["sequential_cpu_s"])
        lines.append(
            f"| {r['workload']} | {r['trials']} | {spread(r['population_cpu_s'])} | {spread(r['sequential_cpu_s'])} "
            f"| {r['trials'] / pm:.1f} | {r['trials'] / sm:.2f} | {sm / pm:.1f}× |"
        )
    if any("whole" in r["workload"] for r in rows):
        lines += [
            "",
            "The whole-`nnctl sweep` row (`python -m bench.population_sweep`) times fresh `nnctl sweep` processes "
            "pinned to one core: it also counts start-up, Optuna, tracing the population's program once, and the "
            "plots, which a single round of P trials does not amortise.",
        ]
    return "\n".join(lines) + "\n"


def write(text: str) -> None:
    path = ROOT / "bench" / "RESULTS.md"
    doc = path.read_text()
    block = f"{START}\n{text}{END}"
    if START in doc:
        doc = doc[: doc.index(START)] + block + doc[doc.index(END) + len(END) :]
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    path.write_text(doc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="16,64")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--core", type=int, default=0)
    ap.add_argument("--digits-epochs", type=int, default=10)
    ap.add_argument("--only", default="iris,digits-mlp")
    ap.add_argument("--write", action="store_true", help="write the table into bench/RESULTS.md")
    ap.add_argument("--json", default=str(ROOT / "bench" / "population.json"), help="where the rows go")
    ap.add_argument("--combine", nargs="*", default=None, help="only make the table from these JSON files")
    a = ap.parse_args()
    if a.combine is not None:  # e.g. one process per workload, each on its own core
        rows = [r for f in a.combine for r in json.loads(Path(f).read_text())["rows"]]
        meta = json.loads(Path(a.combine[0]).read_text())
        text = table(rows, meta["core"], meta["when"])
        print(text)
        if a.write:
            write(text)
        return
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {a.core})
    work = {
        "iris": (str(ROOT / "specs" / "iris.yaml"), (), "train.weight_decay"),
        "digits-mlp": (  # adamw: its own decoupled weight decay
            str(ROOT / "specs" / "digits_mlp.yaml"),
            (f"train.epochs={a.digits_epochs}",),
            "train.optimizer.weight_decay",
        ),
    }
    rows = []
    for name in a.only.split(","):
        spec, extra, decay = work[name]
        for p in (int(s) for s in a.sizes.split(",")):
            rows.append(measure(f"{name}" + (f" ({extra[0]})" if extra else ""), spec, extra, decay, p, a.repeats))
    core = a.core if hasattr(os, "sched_setaffinity") else None
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text = table(rows, core, when)
    print(text)
    Path(a.json).write_text(json.dumps({"core": core, "when": when, "rows": rows}, indent=1) + "\n")
    if a.write:
        write(text)


if __name__ == "__main__":
    main()
