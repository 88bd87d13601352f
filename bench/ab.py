"""A/B: the same specs trained by this tree and by an earlier revision, interleaved, each run in a fresh process
pinned to one core, for checking that a change kept the speed.

    python -m bench.ab --base 0fce2b1 --spec specs/xor.yaml:20000 --spec specs/iris.yaml:3000 --repeats 5

Each run trains the spec for the given epochs (early stopping off, compile cache off) through the run-level
API of its tree and prints steps/s of the training phase (compile excluded) and the final training loss, which
must be identical across trees when the numerics are unchanged. Prints a table of medians (min-max) and the
per-pair ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import os, sys
os.environ["NNCTL_CACHE_DIR"] = "off"
from nnctl.data.prepare import prepare
from nnctl.spec import load_spec
try:
    from nnctl.app import build, fit
except ImportError:  # revisions before the run-level API moved to nnctl.app
    from nnctl.run import build, fit
spec, epochs = sys.argv[1], sys.argv[2]
loaded = load_spec(spec, (f"train.epochs={epochs}", "train.early_stopping=null"))
b = build(loaded, prepare(loaded.spec, loaded.analysis, loaded.base_dir))
r = fit(b)
print(len(r.records) * b.loop.n_batches / r.train_s, r.records[-1]["train/loss"])
"""


def export(rev: str, dest: Path) -> Path:
    """`nnctl/` and `specs/` of revision `rev` under `dest`."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "nnctl", "specs"], check=True, capture_output=True
    ).stdout
    with tempfile.NamedTemporaryFile(suffix=".tar") as f:
        f.write(archive)
        f.flush()
        with tarfile.open(f.name) as t:
            t.extractall(dest, filter="data")
    return dest


def run_once(tree: Path, spec: str, epochs: str, core: int) -> tuple[float, float]:
    pin = ["taskset", "-c", str(core)] if shutil.which("taskset") else []
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [*pin, sys.executable, "-c", CHILD, spec, epochs], cwd=tree, env=env, check=True, capture_output=True, text=True
    ).stdout.split()
    return float(out[0]), float(out[1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="the revision to compare with (e.g. a commit)")
    ap.add_argument("--spec", action="append", required=True, help="SPEC:EPOCHS (repeatable)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--core", type=int, default=1, help="the core both trees are pinned to")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"base": export(args.base, Path(tmp)), "this": ROOT}
        print(f"| spec | this tree steps/s | {args.base} steps/s | this / base per pair | same final loss |")
        print("|---|---|---|---|---|")
        for item in args.spec:
            spec, epochs = item.rsplit(":", 1)
            got: dict[str, list[tuple[float, float]]] = {"this": [], "base": []}
            for i in range(args.repeats):  # interleaved, alternating which goes first
                for name in ("this", "base") if i % 2 == 0 else ("base", "this"):
                    got[name].append(run_once(trees[name], spec, epochs, args.core))
            this, base = ([s for s, _ in got[k]] for k in ("this", "base"))
            same = {loss for _, loss in got["this"]} == {loss for _, loss in got["base"]}
            fmt = lambda v: f"{statistics.median(v):,.0f} ({min(v):,.0f}–{max(v):,.0f})"
            ratios = ", ".join(f"{a / b:.2f}" for a, b in zip(this, base))
            print(f"| {spec}:{epochs} | {fmt(this)} | {fmt(base)} | {ratios} | {same} |")


if __name__ == "__main__":
    main()
