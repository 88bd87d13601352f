"""How each documented number of the example specs is measured (bench/example_numbers.py states where it is
written). Every function trains specs at full settings (as written, seed as written, or the `--set` edits
named) into a scratch directory and returns the numbers formatted as the docs write them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from nnctl.app import evaluate_run, restore, train_run
from nnctl.app.sample import sample_run
from nnctl.data.builtin_gen import ring_centres

ROOT = Path(__file__).resolve().parents[1]
Values = dict[str, str]
Measure = Callable[[Path], Values]
_runs: dict[tuple[str, tuple[str, ...]], Path] = {}  # one training per (spec, edits) per process


def pct(v: float) -> str:
    """96.7% (100% for a perfect score)."""
    text = f"{100 * v:.1f}"
    return ("100" if text == "100.0" else text) + "%"


def sci(v: float) -> str:
    """3.51e-5."""
    mant, exp = f"{v:.2e}".split("e")
    return f"{mant}e{int(exp)}"


def trained(spec: str, scratch: Path, sets: tuple[str, ...] = ()) -> Path:
    """The run directory of `spec` trained at full settings (with `sets`), trained once per process."""
    key = (spec, sets)
    if key not in _runs or not _runs[key].exists():
        out = scratch / f"{Path(spec).stem}-{len(_runs)}"
        _runs[key] = train_run(str(ROOT / spec), out=str(out), overrides=sets).run_dir
    return _runs[key]


def metrics(run: Path, split: str = "test") -> dict:
    return evaluate_run(run, split)["metrics"]


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def accuracy(spec: str, split: str = "test") -> Measure:
    return lambda d: {"acc": pct(metrics(trained(spec, d), split)["accuracy"])}


def counted(spec: str, split: str) -> Measure:
    """Accuracy with the number right out of the number scored: 100% (4/4)."""

    def m(d: Path) -> Values:
        ev = evaluate_run(trained(spec, d), split)
        acc, n = ev["metrics"]["accuracy"], ev["examples"]
        return {"acc": pct(acc), "right": str(round(acc * n)), "n": str(n)}

    return m


def backprop(d: Path) -> Values:
    run = trained("specs/backprop_worked_example.yaml", d)
    first = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])  # the loss before the first step
    return {"e0": f"{first['train/loss']:.7f}", "e1": sci(metrics(run, "train")["loss"])}


def iris(d: Path) -> Values:
    spec = "specs/iris.yaml"
    accs = [metrics(trained(spec, d, (f"seed={s}",) if s else ()))["accuracy"] for s in range(5)]
    return {
        "acc": pct(accs[0]),
        "lo": pct(min(accs)),
        "hi": pct(max(accs)),
        "mean": pct(float(np.mean(accs))),
        "best": str(summary(trained(spec, d))["best_epoch"]),
    }


def digits_mlp(d: Path) -> Values:
    m = metrics(trained("specs/digits_mlp.yaml", d))
    return {"acc": pct(m["accuracy"]), "f1": f"{m['f1']:.3f}"}


def diabetes(d: Path) -> Values:
    m = metrics(trained("specs/diabetes_regression.yaml", d))
    return {"r2": f"{m['r2']:.3f}", "mae": f"{m['mae']:.1f}"}


def loans(spec: str) -> Measure:
    def m(d: Path) -> Values:
        run = trained(spec, d)
        ev = evaluate_run(run, "test")
        cm = np.asarray(ev["confusion_matrix"])
        majority = cm.sum(1).max() / cm.sum()  # always guessing the most frequent class
        return {
            "acc": pct(ev["metrics"]["accuracy"]),
            "auc": f"{ev['metrics']['auc']:.3f}",
            "majority": pct(float(majority)),
            "best": str(summary(run)["best_epoch"]),
        }

    return m


def sine(d: Path) -> Values:
    m = metrics(trained("specs/sine_regression.yaml", d))
    return {"mse": f"{m['loss']:.4f}", "r2": f"{m['r2']:.3f}"}


def waveforms(d: Path) -> Values:
    run = trained("specs/waveforms_lstm.yaml", d)
    return {"acc": pct(metrics(run)["accuracy"]), "train": pct(metrics(run, "train")["accuracy"])}


def tbptt(d: Path) -> Values:
    """The truncated-BPTT spec and, for comparison, the full-BPTT waveforms spec it is a copy of."""
    run = trained("specs/waveforms_lstm_tbptt.yaml", d)
    return {"acc": pct(metrics(run)["accuracy"]), "full": waveforms(d)["acc"]}


def aux_heads(d: Path) -> Values:
    """The main head's test accuracy (the model's output) and the auxiliary head's."""
    test = metrics(trained("specs/digits_aux_heads.yaml", d))
    return {"acc": pct(test["accuracy"]), "aux": pct(test["aux_accuracy"])}


def seq2seq(d: Path) -> Values:
    """Free-running (greedy) test accuracy per digit and per whole sequence, and the teacher-forced one."""
    test = metrics(trained("specs/seq2seq_reverse.yaml", d))
    return {
        "acc": pct(test["free_running_accuracy"]),
        "seq": pct(test["free_running_sequence_accuracy"]),
        "tf": pct(test["teacher_forced_accuracy"]),
    }


def _codes(run: Path) -> tuple:
    r = restore(run)
    p, ms = r.weights["params"], r.weights["model_state"]
    return r, p, ms, jnp.asarray(r.built.data.x_test)


def noisy_mse(run: Path, stddev: float = 0.3) -> float:
    """Reconstruction mse against the clean test digits of the test digits with N(0, stddev^2) noise added."""
    r, p, ms, x = _codes(run)
    noisy = x + stddev * np.random.default_rng(0).normal(size=x.shape).astype(np.float32)
    return float(((np.asarray(r.built.obj.predict(p, ms, jnp.asarray(noisy))) - np.asarray(x)) ** 2).mean())


def mean_code(run: Path, layer: str = "code") -> float:
    r, p, ms, x = _codes(run)
    return float(np.asarray(r.built.obj.encode(p, ms, x, layer)).mean())


def jacobian_norm(run: Path, layer: str = "code") -> float:
    """Mean over the test digits of ||dh/dx||_F of the code layer."""
    r, p, ms, x = _codes(run)
    j = jax.vmap(jax.jacrev(lambda xi: r.built.obj.encode(p, ms, xi[None], layer)[0]))(x)
    return float(jnp.sqrt((j.reshape(len(x), -1) ** 2).sum(1)).mean())


def recon(run: Path) -> float:
    m = metrics(run)
    return float(m.get("reconstruction", m["loss"]))


PLAIN = ("train.regularizers=[]",)


def autoencoder(d: Path) -> Values:
    run = trained("specs/autoencoder_digits.yaml", d)
    return {"mse": f"{recon(run):.3f}", "noisy": f"{noisy_mse(run):.3f}"}


def sparse(d: Path) -> Values:
    spec = "specs/sparse_autoencoder_digits.yaml"
    run, plain = trained(spec, d), trained(spec, d, PLAIN)
    return {
        "act": f"{mean_code(run):.3f}",
        "act_plain": f"{mean_code(plain):.2f}",
        "mse": f"{recon(run):.3f}",
        "mse_plain": f"{recon(plain):.4f}",
    }


def contractive(d: Path) -> Values:
    spec = "specs/contractive_autoencoder_digits.yaml"
    run, plain = trained(spec, d), trained(spec, d, PLAIN)
    return {
        "j": f"{jacobian_norm(run):.2f}",
        "j_plain": f"{jacobian_norm(plain):.2f}",
        "mse": f"{recon(run):.3f}",
        "mse_plain": f"{recon(plain):.3f}",
    }


def denoising(d: Path) -> Values:
    run = trained("specs/denoising_autoencoder_digits.yaml", d)
    under = trained("specs/autoencoder_digits.yaml", d)
    return {"noisy": f"{noisy_mse(run):.3f}", "under": f"{noisy_mse(under):.3f}", "clean": f"{recon(run):.3f}"}


def vae(d: Path) -> Values:
    m = metrics(trained("specs/vae_digits.yaml", d))
    return {"loss": f"{m['loss']:.1f}", "rec": f"{m['reconstruction']:.1f}", "kl": f"{m['kl']:.1f}"}


def _near(samples: np.ndarray, radius: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Whether each point lies within `radius` of a mode centre, and the nearest centre of each."""
    dist = np.linalg.norm(samples[:, None] - ring_centres()[None], axis=-1)
    return dist.min(1) < radius, dist.argmin(1)


def gan(d: Path) -> Values:
    run = trained("specs/gan_ring.yaml", d)
    samples = np.load(sample_run(str(run), 2000, out=str(d / "gan-samples.npz"))["npz"])["samples"]
    near, nearest = _near(samples)
    counts = np.bincount(nearest[near], minlength=len(ring_centres()))
    return {
        "near": f"{100 * near.mean():.0f}%",
        "covered": str(int((counts > 0).sum())),
        "lo": str(int(counts.min())),
        "hi": str(int(counts.max())),
    }


def cgan(d: Path) -> Values:
    run = trained("specs/cgan_ring.yaml", d)
    hits = []
    for label in range(len(ring_centres())):
        out = sample_run(str(run), 250, out=str(d / f"cgan-{label}.npz"), label=label)
        near, nearest = _near(np.load(out["npz"])["samples"])
        hits.append(near & (nearest == label))
    return {"near": f"{100 * np.concatenate(hits).mean():.0f}%"}


def augment(d: Path) -> Values:
    spec = "specs/augment_digits.yaml"
    return {
        "acc": pct(metrics(trained(spec, d))["accuracy"]),
        "plain": pct(metrics(trained(spec, d, ("data.augment=[]",)))["accuracy"]),
    }


def transfer(d: Path) -> Values:
    """transfer_digits starts from a digits_mlp run trained here (its `model.init_from` pointed at it)."""
    source = trained("specs/digits_mlp.yaml", d)
    run = trained("specs/transfer_digits.yaml", d, (f"model.init_from={source}",))
    before, after = restore(source).weights["params"], restore(run).weights["params"]
    same = jax.tree_util.tree_map(lambda a, b: bool(np.array_equal(a, b)), before["dense_0"], after["dense_0"])
    if not all(jax.tree_util.tree_leaves(same)):
        raise AssertionError("transfer_digits: the frozen dense_0 moved")
    old = np.concatenate([np.ravel(a) for a in jax.tree_util.tree_leaves(before["dense_2"])])
    new = np.concatenate([np.ravel(a) for a in jax.tree_util.tree_leaves(after["dense_2"])])
    return {
        "acc": pct(metrics(run)["accuracy"]),
        "src_stop": str(summary(source)["epochs_run"]),
        "src_acc": pct(metrics(source)["accuracy"]),
        "moved": f"{100 * np.linalg.norm(new - old) / np.linalg.norm(old):.0f}%",
    }
