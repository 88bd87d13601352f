"""Using trained generative models and autoencoders: `nnctl sample` (vae/gan draws) and
`nnctl predict --encode LAYER` (the codes of a named layer)."""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

from nnctl.app.restore import restore
from nnctl.data.inputs import read_inputs
from nnctl.errors import NnctlError, choices_text, did_you_mean
from nnctl.kinds import MODEL_KINDS

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _image_shape(shape: tuple) -> tuple | None:
    """(H, W) to draw examples of this shape as images, or None."""
    if len(shape) == 3 and shape[-1] in (1, 3):
        return shape[:2]
    if len(shape) == 2:
        return shape
    if len(shape) == 1 and shape[0] >= 16 and math.isqrt(shape[0]) ** 2 == shape[0]:
        s = math.isqrt(shape[0])
        return (s, s)
    return None


def write_png(path: Path, samples: np.ndarray, shape: tuple) -> bool:
    hw = _image_shape(shape)
    flat = samples.reshape(len(samples), -1)
    if hw is not None:
        cols = math.ceil(math.sqrt(len(samples)))
        rows = math.ceil(len(samples) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.2), squeeze=False)
        for i, ax in enumerate(axes.reshape(-1)):
            ax.axis("off")
            if i < len(samples):
                img = samples[i].reshape(*hw, -1)
                ax.imshow(img[..., 0] if img.shape[-1] == 1 else np.clip(img, 0, 1), cmap="gray")
    elif flat.shape[1] == 2:
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.scatter(flat[:, 0], flat[:, 1], s=4)
        ax.set_aspect("equal")
    else:
        return False
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return True


def sample_run(run_dir: str, n: int, out: str | None = None, seed: int = 0, label: int | None = None) -> dict:
    """Draw `n` examples from a vae or gan run into an .npz file (and a PNG grid when they look like images
    or 2-D points)."""
    if n < 1:
        raise NnctlError(f"--n must be at least 1, got {n}")
    r = restore(run_dir)
    m = r.loaded.spec.model
    if not MODEL_KINDS.get(m.type).can_sample:
        raise NnctlError(f"{run_dir} is a {m.type} model: `sample` needs a vae, gan, aae or vaegan run")
    obj = r.built.loop.obj
    count = getattr(obj, "label_count", 0)  # classes (conditional gan, ACGAN) or InfoGAN's categories
    labels = None
    if label is not None:
        if not count:
            raise NnctlError(
                "--label needs a conditional gan (model.conditional: true), an ACGAN (adversarial."
                "auxiliary_classifier) or an InfoGAN with a categorical code (adversarial.info_codes.categorical)"
            )
        if not 0 <= label < count:
            raise NnctlError(f"--label must be between 0 and {count - 1}")
        labels = jnp.full((n,), label, jnp.int32)
    fn = jax.jit(lambda p, ms, k, lab: obj.sample(p, ms, k, n, lab))
    samples = np.asarray(fn(r.weights["params"], r.weights["model_state"], jax.random.key(seed), labels))
    samples = r.scalers[0].invert(samples)  # back to the data's units (undo data.normalize)
    arrays = {"samples": samples}
    if count:
        arrays["labels"] = np.asarray(labels if labels is not None else np.arange(n) % count)
    files = save_samples(run_dir, out, "samples.npz", arrays, tuple(r.built.data.input_shape))
    return {"run_dir": str(run_dir), "samples": n, **files, "shape": list(samples.shape[1:]), "model": m.type}


def save_samples(run_dir: str | Path, out: str | None, default: str, arrays: dict, input_shape: tuple) -> dict:
    """Write `arrays` (with `samples`) to `out` (an .npz; default RUN/`default`) and a PNG beside it when the
    samples look like images or 2-D points: {npz, png (or None)}."""
    path = Path(out) if out else Path(run_dir) / default
    if path.suffix != ".npz":
        raise NnctlError(f"--out must end in .npz, got {path}")
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    png = path.with_suffix(".png")
    wrote_png = write_png(png, arrays["samples"], input_shape)
    return {"npz": str(path), "png": str(png) if wrote_png else None}


def encode_run(run_dir: str, input_path: str, layer: str, output: str | None = None) -> dict:
    """The outputs of `layer` (e.g. an autoencoder's code) for the inputs in a CSV or .npz file."""
    r = restore(run_dir)
    m = r.loaded.spec.model
    kind = MODEL_KINDS.get(m.type)
    if not kind.can_encode:
        raise NnctlError(f"--encode needs a sequential (autoencoder), vae, aae or cyclegan run, not a {m.type}")
    names = kind.encodable(m)
    if layer not in names:
        raise NnctlError(
            f"--encode: unknown layer '{layer}'.{did_you_mean(layer, names)} Layers: {choices_text(names)}"
        )
    obj = r.built.loop.obj
    x = r.scalers[0].apply(read_inputs(input_path, r.loaded.spec.data, r.built.data))
    codes = np.asarray(
        jax.jit(lambda p, ms, x: obj.encode(p, ms, x, layer))(
            r.weights["params"], r.weights["model_state"], jnp.asarray(x)
        )
    )
    result = {
        "run_dir": str(run_dir),
        "input": input_path,
        "examples": len(x),
        "layer": layer,
        "codes": codes.reshape(len(codes), -1).tolist(),
    }
    if output:
        p = Path(output)
        if p.suffix == ".npz":
            with open(p, "wb") as f:
                np.savez(f, codes=codes)
        else:
            flat = codes.reshape(len(codes), -1)
            rows = [",".join(f"{layer}_{j}" for j in range(flat.shape[1]))]
            rows += [",".join(f"{v:.6g}" for v in row) for row in flat]
            p.write_text("\n".join(rows) + "\n")
    return result
