"""Every number the README and docs state about what an example spec reaches, measured: the specs are trained
at full settings (as written, seed as written; comparisons with the `--set` edits named in
bench/example_measures.py) and scored with `nnctl eval`'s code. Each claim is a template per place it is
written — the last cell of the table row naming the spec (README.md, docs/layers.md) or a sentence of the
spec's own comment — whose {placeholders} are the measured numbers; everything else in it is literal.

    python -m bench.example_numbers                 # check every claim (exit 1 on a mismatch)
    python -m bench.example_numbers --write         # rewrite the claims with the measured numbers
    python -m bench.example_numbers specs/iris.yaml # only the claims of these specs

Run it before changing a documented number. Full settings take minutes per spec on a CPU.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import example_measures as m

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/layers.md", "docs/learning.md", "docs/operations.md", "docs/DESIGN.md")
README, LAYERS = "README.md", "docs/layers.md"
NUMBER = r"[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?%?"


@dataclass(frozen=True)
class Claim:
    spec: str  # path from the repository root
    measure: m.Measure  # scratch directory -> {placeholder: number as written}
    sites: tuple[tuple[str, str], ...]  # (file, template): a .md file's row naming `spec`, or the spec's text


def _acc(spec: str, readme: str = "{acc}", layers: str | None = None) -> Claim:
    """An accuracy claim: the README cell, docs/layers.md's cell and the spec's 'Full settings' comment."""
    sites = [(README, readme)] + ([(LAYERS, layers)] if layers else [])
    sites.append((spec, "# Full settings (as written): {acc} test accuracy ("))
    return Claim(spec, m.accuracy(spec), tuple(sites))


CLAIMS = [
    Claim(
        "specs/xor.yaml",
        m.counted("specs/xor.yaml", "train"),  # no test split: its four examples are all there is
        ((README, "{acc} ({right}/{n})"), ("specs/xor.yaml", "# Reaches {acc} accuracy ({right}/{n}) at these")),
    ),
    Claim(
        "specs/backprop_worked_example.yaml",
        m.backprop,
        (
            (README, "E_total {e0} → {e1} after 10,000 epochs"),
            ("specs/backprop_worked_example.yaml", "# Initial total error {e0};"),
            ("specs/backprop_worked_example.yaml", "the total error is {e1} (measured)."),
        ),
    ),
    Claim(
        "specs/iris.yaml",
        m.iris,
        (
            (README, "{acc} test accuracy (seeds 0–4: {lo}–{hi}, mean {mean})"),
            ("specs/iris.yaml", "# Full settings (seed 0): {acc} test accuracy; early stopping keeps epoch {best} "),
        ),
    ),
    Claim(
        "specs/digits_mlp.yaml",
        m.digits_mlp,
        (
            (README, "{acc} test accuracy, macro F1 {f1}"),
            ("specs/digits_mlp.yaml", "# Full settings (seed 0): {acc} test accuracy, macro F1 {f1} (measured)."),
        ),
    ),
    Claim(
        "specs/residual_mlp.yaml",
        m.accuracy("specs/residual_mlp.yaml"),
        ((README, "{acc}"), ("specs/residual_mlp.yaml", "# Full settings (seed 0): {acc} test accuracy (measured).")),
    ),
    Claim(
        "specs/diabetes_regression.yaml",
        m.diabetes,
        (
            (README, "test R² {r2}, MAE {mae} (target units)"),
            ("specs/diabetes_regression.yaml", "# Full settings (seed 0): test R^2 {r2}, MAE {mae} in target units"),
        ),
    ),
    Claim(
        "specs/loans_csv.yaml",
        m.loans("specs/loans_csv.yaml"),
        (
            (README, "{acc} accuracy, AUC {auc} (majority guess {majority})"),
            (
                "specs/loans_csv.yaml",
                '# Full settings (seed 0): {acc} test accuracy, AUC {auc} (always guessing "approved": {majority});'
                " early\n# stopping keeps epoch {best}.",
            ),
        ),
    ),
    Claim(
        "specs/loans_parquet.yaml",
        m.loans("specs/loans_parquet.yaml"),
        (("specs/loans_parquet.yaml", "# Full settings (seed 0): {acc} test accuracy, AUC {auc}, the same as"),),
    ),
    Claim(
        "specs/sine_regression.yaml",
        m.sine,
        (
            (README, "test MSE {mse} (noise variance 0.0025), R² {r2}"),
            ("specs/sine_regression.yaml", "test MSE {mse} (noise variance 0.0025), R^2 {r2} (measured)."),
        ),
    ),
    Claim(
        "specs/images_folder.yaml", m.counted("specs/images_folder.yaml", "test"), ((README, "{acc} ({right}/{n})"),)
    ),
    Claim(
        "specs/perceptron_and.yaml",
        m.counted("specs/perceptron_and.yaml", "train"),
        ((README, "{acc} ({right}/{n}) after 10 epochs"),),
    ),
    _acc("specs/digits_cnn.yaml", "{acc} test accuracy", "{acc}"),
    _acc("specs/digits_resnet.yaml", "{acc}", "{acc}"),
    _acc("specs/digits_inception.yaml", "{acc}", "{acc}"),
    Claim(
        "specs/waveforms_lstm.yaml",
        m.waveforms,
        (
            (README, "{acc} (noise makes some ambiguous)"),
            (LAYERS, "{acc} (train {train}: noise-limited)"),
            ("specs/waveforms_lstm.yaml", "# Full settings (as written): {acc} test accuracy ("),
            ("specs/waveforms_lstm.yaml", "# train accuracy is {train}: at noise"),
        ),
    ),
    _acc("specs/parity_bigru.yaml", "{acc}", "{acc}"),
    Claim(
        "specs/token_tagger.yaml",
        m.accuracy("specs/token_tagger.yaml"),
        (
            (README, "{acc} of steps"),
            (LAYERS, "{acc} of steps"),
            ("specs/token_tagger.yaml", "# Full settings (as written): {acc} per-step test accuracy ("),
        ),
    ),
    _acc("specs/majority_attention.yaml", "{acc}", "{acc}"),
    _acc("specs/signal_bigru.yaml", "{acc}", "{acc}"),
    Claim(
        "specs/autoencoder_digits.yaml",
        m.autoencoder,
        (
            (README, "test MSE {mse}"),
            (
                "specs/autoencoder_digits.yaml",
                "test reconstruction mse {mse} (pixels scaled to [0, 1]);\n# on test digits with N(0, 0.3^2) noise"
                " added, {noisy} against the clean digit",
            ),
        ),
    ),
    Claim(
        "specs/sparse_autoencoder_digits.yaml",
        m.sparse,
        (
            (README, "mean code activation {act} ({act_plain} without)"),
            (
                "specs/sparse_autoencoder_digits.yaml",
                "test reconstruction mse {mse}, mean code activation\n# {act} on the test digits, against mse"
                " {mse_plain} and mean activation {act_plain} for",
            ),
        ),
    ),
    Claim(
        "specs/contractive_autoencoder_digits.yaml",
        m.contractive,
        (
            (README, "‖∂h/∂x‖_F {j} ({j_plain} without)"),
            (
                "specs/contractive_autoencoder_digits.yaml",
                "test reconstruction mse {mse} and mean ||dh/dx||_F {j}\n# per test digit, against mse {mse_plain}"
                " and ||dh/dx||_F {j_plain} for",
            ),
        ),
    ),
    Claim(
        "specs/denoising_autoencoder_digits.yaml",
        m.denoising,
        (
            (README, "noisy-input MSE {noisy} (undercomplete: {under})"),
            (
                "specs/denoising_autoencoder_digits.yaml",
                "the clean digit {noisy}, against {under} for the undercomplete autoencoder",
            ),
            ("specs/denoising_autoencoder_digits.yaml", "on clean test digits {clean}."),
        ),
    ),
    Claim(
        "specs/vae_digits.yaml",
        m.vae,
        (
            (README, "{loss} nats (reconstruction {rec} + KL {kl})"),
            ("specs/vae_digits.yaml", "test loss {loss} nats per digit (reconstruction {rec},\n# KL {kl})."),
        ),
    ),
    Claim(
        "specs/gan_ring.yaml",
        m.gan,
        (
            (README, "{near} of points near a mode, {covered} of 8 modes covered"),
            (
                "specs/gan_ring.yaml",
                "of 2,000 generated points {near}\n# lie within 0.25 of a mode centre, and each of the 8 modes"
                " receives {lo}-{hi} of them.",
            ),
        ),
    ),
    Claim(
        "specs/cgan_ring.yaml",
        m.cgan,
        (
            (README, "{near} of points land near their label's mode"),
            ("specs/cgan_ring.yaml", "(300 epochs, seed 0): {near} of 250 points drawn for each of the 8 labels"),
        ),
    ),
    Claim(
        "specs/augment_digits.yaml",
        m.augment,
        (
            (README, "{acc}"),
            ("specs/augment_digits.yaml", "test accuracy {acc} ({plain} for the same spec with\n# data.augment: []"),
        ),
    ),
    Claim(
        "specs/transfer_digits.yaml",
        m.transfer,
        (
            (README, "{acc}"),
            (
                "specs/transfer_digits.yaml",
                "from a digits-mlp run\n# that stopped early at epoch {src_stop} with test accuracy {src_acc}): test"
                " accuracy {acc}; dense_0 identical to the\n# source bit for bit, dense_2 moved by {moved} (relative",
            ),
        ),
    ),
    Claim(
        "specs/varlen_tagger.yaml",
        m.accuracy("specs/varlen_tagger.yaml"),
        (
            (LAYERS, "{acc} of real steps"),
            ("specs/varlen_tagger.yaml", "# Full settings (as written): {acc} per-step test accuracy over"),
        ),
    ),
    Claim(
        "specs/seq2seq_reverse.yaml",
        m.seq2seq,
        (
            (
                "specs/seq2seq_reverse.yaml",
                "# Full settings (as written): {acc} free-running test accuracy per digit, {seq} of the test\n"
                "# sequences reversed entirely right (teacher-forced: {tf} per digit;",
            ),
        ),
    ),
    Claim(
        "specs/digits_aux_heads.yaml",
        m.aux_heads,
        (
            (
                "specs/digits_aux_heads.yaml",
                "# Full settings (as written): {acc} test accuracy (main head; aux head {aux};",
            ),
        ),
    ),
    Claim(
        "specs/waveforms_lstm_tbptt.yaml",
        m.tbptt,
        (
            (
                "specs/waveforms_lstm_tbptt.yaml",
                "# Full settings (as written): {acc} test accuracy (600 test signals; measured, seed 0; full BPTT:"
                " {full})",
            ),
        ),
    ),
]


def pattern(template: str) -> re.Pattern:
    """The template as a regular expression: literal text, each {placeholder} a number."""
    parts = re.split(r"\{(\w+)\}", template)
    return re.compile("".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>{NUMBER})" for i, p in enumerate(parts)))


def row_cells(text: str, spec: str) -> list[tuple[int, int]]:
    """(start, end) of the last cell (stripped) of each table row naming `spec` (in backquotes)."""
    out = []
    pos = 0
    for line in text.splitlines(keepends=True):
        if line.startswith("|") and f"`{spec}`" in line:
            body = line.rstrip("\n").rstrip()
            end = pos + len(body.rstrip("|").rstrip())
            start = pos + body.rstrip("|").rindex("|") + 1
            while text[start] == " ":
                start += 1
            out.append((start, end))
        pos += len(line)
    return out


def locate(spec: str, file: str, template: str, root: Path | None = None) -> tuple[int, int, str]:
    """(start, end, text) of the one place in `file` that `template` describes.

    Raises:
        LookupError: the file has no such place, or more than one.
    """
    text = ((root or ROOT) / file).read_text(encoding="utf-8")
    pat = pattern(template)
    if file.endswith(".md"):
        spots = [(s, e) for s, e in row_cells(text, spec) if pat.fullmatch(text, s, e)]
    else:
        spots = [mt.span() for mt in pat.finditer(text)]
    if len(spots) != 1:
        raise LookupError(f"{file}: {len(spots)} places match {template!r} (for {spec}), not 1")
    s, e = spots[0]
    return s, e, text[s:e]


def reconcile(claim: Claim, values: dict[str, str], write: bool) -> list[str]:
    """The places where `claim` is written with other numbers than `values` (rewritten when `write`)."""
    wrong = []
    for file, template in claim.sites:
        start, end, old = locate(claim.spec, file, template)
        new = template.format(**values)
        if old != new:
            wrong.append(f"{file}: {claim.spec}: {old!r} written, {new!r} measured")
            if write:
                path = ROOT / file
                text = path.read_text(encoding="utf-8")
                path.write_text(text[:start] + new + text[end:], encoding="utf-8")
    return wrong


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("specs", nargs="*", help="only these specs (default: every claim)")
    ap.add_argument("--write", action="store_true", help="rewrite the docs with the measured numbers")
    args = ap.parse_args(argv)
    chosen = [c for c in CLAIMS if not args.specs or c.spec in args.specs]
    wrong = []
    with tempfile.TemporaryDirectory() as d:
        for c in chosen:
            values = c.measure(Path(d))
            print(f"{c.spec}: " + ", ".join(f"{k} {v}" for k, v in values.items()), flush=True)
            wrong += reconcile(c, values, args.write)
    for w in wrong:
        print(("rewrote " if args.write else "MISMATCH ") + w)
    return 1 if wrong and not args.write else 0


if __name__ == "__main__":
    sys.exit(main())
