"""The accuracies the README and docs claim for the example specs, measured: each spec is trained at its full
settings (as written, seed as written) and scored on its test split with `nnctl eval`'s code; the first
number of its "measured" table cell (README.md, docs/layers.md) and of its spec's "Full settings" comment
is checked against it, or rewritten.

    python -m bench.example_numbers                 # check every claim (exit 1 on a mismatch)
    python -m bench.example_numbers --write         # rewrite the claims with the measured numbers
    python -m bench.example_numbers specs/iris.yaml # only these specs

Run it before changing a documented number. Full settings take minutes per spec on a CPU.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/layers.md")


@dataclass(frozen=True)
class Claim:
    spec: str  # path from the repository root
    metric: str  # a key of evaluate_run's metrics
    fmt: str = "percent"  # written as 96.7%; else a format such as "{:.3f}" for 0.505
    split: str = "test"  # the split scored (xor has no test split: its four examples are all there is)


CLAIMS = [
    Claim("specs/xor.yaml", "accuracy", split="train"),
    Claim("specs/iris.yaml", "accuracy"),
    Claim("specs/digits_mlp.yaml", "accuracy"),
    Claim("specs/residual_mlp.yaml", "accuracy"),
    Claim("specs/diabetes_regression.yaml", "r2", fmt="{:.3f}"),
    Claim("specs/autoencoder_digits.yaml", "loss", fmt="{:.3f}"),  # mse of the reconstruction
    Claim("specs/loans_csv.yaml", "accuracy"),
    Claim("specs/digits_cnn.yaml", "accuracy"),
    Claim("specs/digits_resnet.yaml", "accuracy"),
    Claim("specs/digits_inception.yaml", "accuracy"),
    Claim("specs/waveforms_lstm.yaml", "accuracy"),
    Claim("specs/parity_bigru.yaml", "accuracy"),
    Claim("specs/token_tagger.yaml", "accuracy"),  # per step
    Claim("specs/majority_attention.yaml", "accuracy"),
    Claim("specs/signal_bigru.yaml", "accuracy"),
]

NUMBER = re.compile(r"\d+(?:\.\d+)?%?")


def formatted(claim: Claim, value: float) -> str:
    """The value as the docs write it: 96.7% (100% for a perfect score), or by the claim's format."""
    if claim.fmt == "percent":
        text = f"{100 * value:.1f}"
        return ("100" if text == "100.0" else text) + "%"
    return claim.fmt.format(value)


def claimed(text: str, spec: str) -> list[tuple[int, int, str]]:
    """(start, end, number) of the first number in the last cell of each table row naming `spec`."""
    out = []
    pos = 0
    for line in text.splitlines(keepends=True):
        if line.startswith("|") and f"`{spec}`" in line:
            cells = line.rstrip("\n").rstrip("|").split("|")
            cell_start = pos + len("|".join(cells[:-1])) + 1
            m = NUMBER.search(cells[-1])
            if m:
                out.append((cell_start + m.start(), cell_start + m.end(), m.group()))
        pos += len(line)
    return out


def spec_comment(text: str) -> tuple[int, int, str] | None:
    """The number in a spec's '# Full settings ...: N% test accuracy' comment."""
    m = re.search(r"^# Full settings[^:\n]*: (\d+(?:\.\d+)?%)", text, re.M)
    return (m.start(1), m.end(1), m.group(1)) if m else None


def measure(claim: Claim) -> float:
    """Train the spec at full settings into a scratch directory and score its test split."""
    from nnctl.app import evaluate_run, train_run

    with tempfile.TemporaryDirectory() as d:
        run = train_run(str(ROOT / claim.spec), out=str(Path(d) / "run")).run_dir
        return float(evaluate_run(run, claim.split)["metrics"][claim.metric])


def reconcile(claim: Claim, measured: str, write: bool) -> list[str]:
    """The claims of `claim.spec` that differ from `measured` (rewritten when `write`)."""
    wrong = []
    files = [ROOT / f for f in DOCS] + [ROOT / claim.spec]
    for f in files:
        text = f.read_text(encoding="utf-8")
        spots = claimed(text, claim.spec) if f.suffix == ".md" else [s for s in [spec_comment(text)] if s]
        for start, end, old in reversed(spots):
            if old != measured:
                wrong.append(f"{f.relative_to(ROOT)}: {claim.spec} claims {old}, measured {measured}")
                text = text[:start] + measured + text[end:]
        if write and spots:
            f.write_text(text, encoding="utf-8")
    return wrong


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("specs", nargs="*", help="only these specs (default: every claim)")
    ap.add_argument("--write", action="store_true", help="rewrite the docs with the measured numbers")
    args = ap.parse_args(argv)
    chosen = [c for c in CLAIMS if not args.specs or c.spec in args.specs]
    wrong = []
    for c in chosen:
        value = formatted(c, measure(c))
        print(f"{c.spec}: {c.metric} {value}", flush=True)
        wrong += reconcile(c, value, args.write)
    for w in wrong:
        print(("rewrote " if args.write else "MISMATCH ") + w)
    return 1 if wrong and not args.write else 0


if __name__ == "__main__":
    sys.exit(main())
