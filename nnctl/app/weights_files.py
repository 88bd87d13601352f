"""Weight files other tools wrote, read for `model.init_from` (docs/transfer.md): a PyTorch `state_dict`
(.pt, .pth, .bin: `torch.load(weights_only=True)`, which refuses anything but tensors and plain containers, so
no pickled code ever runs), a `.safetensors` file (the safetensors package's numpy reader: no PyTorch needed)
and a Keras `.weights.h5` (Keras 3's layout, or Keras 2's `save_weights` layout; read with h5py).

PyTorch and safetensors files give {tensor name: array}; Keras files give {layer name: [arrays in the layer's
order]}. Every reader is an optional dependency imported when such a file is read (the `weights` extra:
safetensors, h5py; PyTorch is the user's own install)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.errors import NnctlError
from nnctl.spec.models import WEIGHT_FILES as FORMATS


def weights_format(path: str | Path) -> str | None:
    """'torch', 'safetensors' or 'keras' by the file's suffix; None for anything else (a run directory)."""
    return FORMATS.get(Path(path).suffix.lower())


def read_weights(path: Path) -> tuple[str, dict[str, Any]]:
    """(format, contents) of a weight file."""
    fmt = weights_format(path)
    readers: dict[str, Any] = {"torch": read_torch, "safetensors": read_safetensors, "keras": read_keras}
    if fmt is None:
        raise NnctlError(f"{path}: not a weight file nnctl reads ({', '.join(FORMATS)})")
    return fmt, readers[fmt](path)


def read_torch(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a PyTorch `state_dict` (also inside a checkpoint dict under `state_dict`/`model`)."""
    try:
        import torch
    except ImportError:
        raise NnctlError(
            f"{path}: reading a PyTorch file needs PyTorch (pip install torch), or convert it to .safetensors "
            f"where PyTorch is installed (safetensors.torch.save_file(model.state_dict(), 'model.safetensors'))"
        ) from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NnctlError(
            f"{path}: holds more than tensors, and nnctl never runs pickled code (torch.load(weights_only=True) "
            f"refused it: {first}). Save the weights alone where the model was made: "
            f"torch.save(model.state_dict(), 'weights.pt'), or safetensors.torch.save_file(...)"
        ) from None
    except (OSError, RuntimeError, EOFError, ValueError) as e:
        raise NnctlError(f"{path}: not a PyTorch file torch.load can read: {e}") from None
    state = _state_dict(obj, path)
    out = {}
    for key, t in state.items():
        t = t.detach().cpu()
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16; float32 holds every bfloat16 exactly
            t = t.float()
        out[key.removeprefix("module.")] = t.numpy()  # `module.`: nn.DataParallel's prefix
    return out


def _state_dict(obj: Any, path: Path) -> dict:
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
        tensors = {k: v for k, v in obj.items() if hasattr(v, "detach")}
        if tensors:
            return tensors
    raise NnctlError(
        f"{path}: holds a {type(obj).__name__}, not a state_dict of tensors: save model.state_dict() with torch.save"
    )


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return dict(load_file(str(path)))
    except (SafetensorError, OSError, ValueError, TypeError) as e:
        raise NnctlError(f"{path}: not a safetensors file the numpy reader can read: {e}") from None


def read_keras(path: Path) -> dict[str, list[np.ndarray]]:
    """{layer name: its arrays in order} of a Keras 3 `.weights.h5` (layers/<key>/vars/<i>, the layer's name in
    the `name` attribute of `vars`) or a Keras 2 file (attribute `layer_names`, then `weight_names`; a whole-model
    file has them under `model_weights`)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            out: dict[str, list[np.ndarray]] = {}
            root = f.get("model_weights", f)  # Keras 2's whole-model .h5 (model.save)
            if "layer_names" in root.attrs:  # Keras 2
                for name in map(_text, root.attrs["layer_names"]):
                    g = root[name]
                    out[name] = [np.asarray(g[_text(w)]) for w in g.attrs.get("weight_names", [])]
            else:
                _keras3_walk(f, out, h5py.Group)
            return {k: v for k, v in out.items() if v}
    except OSError as e:
        raise NnctlError(f"{path}: not an HDF5 file h5py can read: {e}") from None


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _keras3_walk(group, out: dict, group_type) -> None:
    """Every group holding a non-empty `vars` group is a layer (nested models and layers included)."""
    for key, item in group.items():
        if not isinstance(item, group_type) or key == "vars":
            continue
        v = item.get("vars")
        if isinstance(v, group_type) and len(v):
            out[_text(v.attrs.get("name", key))] = [np.asarray(v[k]) for k in sorted(v, key=int)]
        _keras3_walk(item, out, group_type)
