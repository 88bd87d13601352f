"""Whole `nnctl sweep` commands: `search.population: P` against one trial at a time, CPU seconds.

    python -m bench.population_sweep [--trials 16] [--repeats 2] [--core 0] [--json F]

specs/iris.yaml with a `search:` section over the learning rate and the weight decay (random sampler, no
pruner, TRIALS trials) is swept by `nnctl sweep` in fresh processes pinned to one core (bench.cpu_time): once
with `population: TRIALS`, once with `population: 1`; a warm-up pair first (not counted), then interleaved
pairs. Rows in the format of bench.population (`--combine` makes one table of both).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.cpu_time import one_run

ROOT = Path(__file__).resolve().parents[1]
SEARCH = """
search:
  sampler: random
  pruner: none
  trials: {trials}
  population: {population}
  space:
    train.optimizer.learning_rate: {{float: [3.0e-4, 3.0e-2], log: true}}
    train.weight_decay: {{float: [1.0e-5, 1.0e-2], log: true}}
"""


def sweep_cpu(spec: Path, out: Path, core: int) -> float:
    pin = ["taskset", "-c", str(core)] if shutil.which("taskset") else []
    cmd = [*pin, sys.executable, "-m", "nnctl", "sweep", str(spec), "--out", str(out), "--quiet"]
    return one_run(cmd, None)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--core", type=int, default=0)
    ap.add_argument("--json", default=str(ROOT / "bench" / "population-sweep.json"))
    a = ap.parse_args()
    base = (ROOT / "specs" / "iris.yaml").read_text()
    pop: list[float] = []
    seq: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        specs = {}
        for p in (a.trials, 1):
            specs[p] = Path(tmp) / f"iris-p{p}.yaml"
            specs[p].write_text(base + SEARCH.format(trials=a.trials, population=p))
        for i in range(a.repeats + 1):
            x = sweep_cpu(specs[a.trials], Path(tmp) / f"pop{i}", a.core)
            y = sweep_cpu(specs[1], Path(tmp) / f"seq{i}", a.core)
            print(f"sweep round {i}: population {x:.2f} s, sequential {y:.2f} s", flush=True)
            if i:
                pop.append(x)
                seq.append(y)
    row = {
        "workload": "iris, whole `nnctl sweep` process",
        "trials": a.trials,
        "population_cpu_s": pop,
        "sequential_cpu_s": seq,
    }
    core = a.core if shutil.which("taskset") else None
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    Path(a.json).write_text(json.dumps({"core": core, "when": when, "rows": [row]}, indent=1) + "\n")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
