"""Walking a trained generative model's latent space: `nnctl sample RUN --interpolate I,J --steps K` (a vae:
encode two examples, decode K evenly spaced points of the straight line between their codes) and
`nnctl sample RUN --codes FILE` (decode given codes: a vae's z, a gan's noise with InfoGAN's codes
appended)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnctl.app.restore import Restored, restore
from nnctl.app.sample import save_samples
from nnctl.data.inputs import read_inputs
from nnctl.errors import NnctlError
from nnctl.kinds import MODEL_KINDS


def _generative(run_dir: str) -> Restored:
    r = restore(run_dir)
    if not MODEL_KINDS.get(r.loaded.spec.model.type).can_sample:
        raise NnctlError(
            f"{run_dir} is a {r.loaded.spec.model.type} model: `sample` needs a vae, gan, aae or vaegan run"
        )
    return r


def _decoded(r: Restored, z: np.ndarray, labels: Any = None) -> np.ndarray:
    obj = r.built.loop.obj
    fn = jax.jit(lambda p, ms, z, lab: obj.decode(p, ms, z, lab))
    out = np.asarray(fn(r.weights["params"], r.weights["model_state"], jnp.asarray(z, jnp.float32), labels))
    return r.scalers[0].invert(out)  # back to the data's units (undo data.normalize)


def code_width(r: Restored) -> int:
    """The width of the codes the model decodes: a vae's latent_dim, a gan's noise plus InfoGAN's codes."""
    m = r.loaded.spec.model
    return int(m.latent_dim or 0) + int(getattr(r.built.loop.obj.net, "code_dim", 0))


def read_codes(path: str, width: int) -> np.ndarray:
    """Codes from a .npy, an .npz (its `codes` array, or its only one) or a CSV (header row, one code per row)."""
    p = Path(path)
    if not p.exists():
        raise NnctlError(f"--codes: no such file: {p}")
    try:
        if p.suffix == ".npy":
            z = np.load(p, allow_pickle=False)
        elif p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as f:
                if "codes" not in f.files and len(f.files) != 1:
                    raise NnctlError(f"--codes: {p} holds {f.files}: name the array `codes`")
                z = f["codes" if "codes" in f.files else f.files[0]]
        elif p.suffix == ".csv":
            z = np.loadtxt(p, delimiter=",", skiprows=1, ndmin=2)
        else:
            raise NnctlError(f"--codes must be a .npy, .npz or .csv file, got {p}")
    except ValueError as e:
        raise NnctlError(f"--codes: cannot read {p}: {e}") from None
    z = np.asarray(z, np.float32)
    z = z.reshape(1, -1) if z.ndim == 1 else z
    if z.ndim != 2 or z.shape[1] != width or not len(z):
        raise NnctlError(f"--codes: {p} holds an array of shape {list(z.shape)}; this model decodes codes of {width}")
    if not np.isfinite(z).all():
        raise NnctlError(f"--codes: {p} holds NaN or infinite values")
    return z


def decode_run(run_dir: str, codes: str, out: str | None = None, label: int | None = None) -> dict:
    """Decode the codes in `codes` with a vae's decoder or a gan's generator."""
    r = _generative(run_dir)
    z = read_codes(codes, code_width(r))
    labels = None
    if label is not None:
        nc = int(getattr(r.built.loop.obj.net, "num_classes", 0))
        if not nc or not 0 <= label < nc:
            raise NnctlError(
                f"--label with --codes chooses the class of a conditional gan or ACGAN (0..{nc - 1})"
                if nc
                else "--label with --codes needs a conditional gan or ACGAN (InfoGAN's category is part of the codes)"
            )
        labels = jnp.full((len(z),), label, jnp.int32)
    samples = _decoded(r, z, labels)
    files = save_samples(run_dir, out, "decoded.npz", {"samples": samples, "codes": z}, _shape(r))
    return {"run_dir": str(run_dir), "samples": len(z), **files, "shape": list(samples.shape[1:])}


def pair_of(text: str) -> tuple[int, int]:
    """`--interpolate I,J` as two example indices."""
    parts = text.replace(" ", "").split(",")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise NnctlError(f"--interpolate takes two example indices I,J such as 0,5; got {text!r}")
    return int(parts[0]), int(parts[1])


def interpolate_run(
    run_dir: str, pair: tuple[int, int], steps: int = 8, input_path: str | None = None, out: str | None = None
) -> dict:
    """Examples I and J (of `input_path`, else of the run's test split) encoded to their means z_I, z_J; the
    codes (1 - t) z_I + t z_J for `steps` evenly spaced t from 0 to 1 decoded."""
    if steps < 2:
        raise NnctlError(f"--steps must be at least 2 (the two ends), got {steps}")
    r = _generative(run_dir)
    m = r.loaded.spec.model
    if m.type not in ("vae", "aae", "vaegan"):
        raise NnctlError(f"--interpolate encodes examples, which needs a vae, aae or vaegan; {run_dir} is a {m.type}")
    if input_path is not None:
        x = r.scalers[0].apply(read_inputs(input_path, r.loaded.spec.data, r.built.data))
        where = input_path
    else:
        x, where = r.built.data.split("test")[0], "the test split"
        if x is None:
            x, where = r.built.data.x_train, "the training split"
    i, j = pair
    if not (0 <= i < len(x) and 0 <= j < len(x)):
        raise NnctlError(f"--interpolate {i},{j}: {where} has {len(x)} examples (0..{len(x) - 1})")
    obj = r.built.loop.obj
    ends = np.asarray(
        jax.jit(lambda p, ms, v: obj.encode(p, ms, v, "z_mean" if m.type == "vae" else "code"))(
            r.weights["params"], r.weights["model_state"], jnp.asarray(x[[i, j]])
        )
    )
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    z = (1 - t) * ends[0] + t * ends[1]
    samples = _decoded(r, z)
    arrays = {"samples": samples, "codes": z, "t": t[:, 0]}
    files = save_samples(run_dir, out, "interpolation.npz", arrays, _shape(r))
    return {"run_dir": str(run_dir), "samples": steps, "from": where, "pair": [i, j], **files}


def _shape(r: Restored) -> tuple:
    return tuple(r.built.data.input_shape)
