"""The `nnctl sweep` acceptance run: specs/digits_mlp_sweep.yaml (30 trials over learning rate, units and
dropout on the digits MLP) against the shipped specs/digits_mlp.yaml, on CPU.

    python -m bench.sweep_digits [--out DIR] [--workers K]

Runs (or resumes: the sweep directory keeps its study) the sweep, trains the shipped spec once, and scores
both on the validation split (the searched metric) and on the held-out test split (`nnctl eval`'s numbers).
Writes bench/sweep_digits.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from nnctl.app import evaluate_run, train_run
from nnctl.app.sweep import run_sweep

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="sweeps/bench-digits", help="sweep directory (a rerun resumes it)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    t0 = time.time()
    res = run_sweep(str(ROOT / "specs/digits_mlp_sweep.yaml"), args.out, workers=args.workers)
    sweep_s = time.time() - t0
    assert res.best is not None, "no trial completed"
    out = Path(args.out)
    base_dir = out.parent / (out.name + "-baseline")
    if (base_dir / "summary.json").exists():
        base_summary = json.loads((base_dir / "summary.json").read_text())
    else:
        base_summary = train_run(str(ROOT / "specs/digits_mlp.yaml"), str(base_dir)).summary
    best_dir = res.best["run_dir"]
    doc = {
        "trials": res.progress.done,
        "pruned": res.progress.pruned,
        "sweep_seconds_this_session": round(sweep_s, 1),
        "best_trial": res.best["trial"],
        "best_params": {k[len("params.") :]: v for k, v in res.best.items() if k.startswith("params.")},
        "val_accuracy": {"sweep_best": res.best["value"], "shipped": base_summary["best_value"]},
        "test": {
            "sweep_best": _scores(evaluate_run(best_dir, "test")),
            "shipped": _scores(evaluate_run(str(base_dir), "test")),
        },
    }
    (ROOT / "bench" / "sweep_digits.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(f"{doc['trials']} trials ({doc['pruned']} pruned); best trial {doc['best_trial']}: {doc['best_params']}")
    print("| | val accuracy (best epoch) | test accuracy | test loss |")
    print("|---|---|---|---|")
    for who in ("shipped", "sweep_best"):
        t = doc["test"][who]
        print(f"| {who} | {doc['val_accuracy'][who]:.4f} | {t.get('accuracy', float('nan')):.4f} | {t['loss']:.4f} |")


def _scores(ev: dict) -> dict:
    """{loss, accuracy, f1} from an evaluate_run result."""
    flat = ev.get("metrics", ev)
    return {k.split("/")[-1]: float(v) for k, v in flat.items() if isinstance(v, (int, float))}


if __name__ == "__main__":
    main()
