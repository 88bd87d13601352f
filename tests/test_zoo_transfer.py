"""`model.init_from: FILE`: weights other tools wrote, mapped onto a spec by name, give that tool's outputs.

The fixtures (tests/fixtures/zoo, written by scripts/make_zoo_fixtures.py with PyTorch and Keras) hold a weight
file, an input and the tool's output: LeNet-5 at full size and reduced copies of AlexNet, VGG, ResNet-18/50 and
GoogLeNet (the zoo specs' builders, torchvision's module names), so the mapping (OIHW -> HWIO, [out, in] ->
[in, out], the channels-first flatten, batch-norm statistics, ceil-mode and adaptive pools) is checked here
without PyTorch. tests/test_zoo_torch.py compares the full-size zoo against PyTorch where it is installed."""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from nnctl.app.transfer import from_file
from nnctl.app.weights_files import read_keras
from nnctl.errors import NnctlError, SpecError
from nnctl.kinds import MODEL_KINDS
from nnctl.spec import Loaded, load_spec, load_text

FIX = Path(__file__).resolve().parent / "fixtures" / "zoo"
TORCH_FIXTURES = ["lenet5", "alexnet_small", "vgg_small", "resnet18_small", "resnet50_small", "googlenet_small"]


def fresh_target(loaded: Loaded, x):
    """The network and its freshly shaped variables ({"params", "model_state"}; zeros: no compile)."""
    net = MODEL_KINDS.get(loaded.spec.model.type).network(loaded.spec.model, None)
    v = jax.eval_shape(lambda: net.init({"params": jax.random.key(0)}, x, train=False))
    v = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), v)
    return net, {"params": v["params"], "model_state": {k: v[k] for k in v if k != "params"}}


def forward(loaded: Loaded, x_nhwc: np.ndarray, head: bool = False):
    """The spec's network on x with `model.init_from`'s weights (eval mode), and the transfer report."""
    x = jnp.asarray(x_nhwc, jnp.float32)
    net, target = fresh_target(loaded, x)
    w, report = from_file(target, loaded)
    run = jax.jit(lambda v, x: net.apply(v, x, train=False, head=head))  # compiled: 3x less CPU than eager here
    return np.asarray(run({"params": w["params"], **w["model_state"]}, x)), report


def load_with(spec: Path | str, weights: Path | str, text: str | None = None) -> Loaded:
    sets = (f"model.init_from={weights}",)
    if text is not None:
        return load_text(text, overrides=sets, require_sources=False)
    return load_spec(str(spec), overrides=sets, require_sources=False)


def nhwc(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32).transpose(0, 2, 3, 1) if a.ndim == 4 else a.astype(np.float32)


@pytest.mark.parametrize("name", [*TORCH_FIXTURES, "decoder"])
def test_pytorch_weights_give_pytorchs_outputs(name):
    """decoder: linear -> channels-first view -> ConvTranspose2d (columns reordered, windows flipped)."""
    ref = np.load(FIX / f"{name}.npz")
    out, report = forward(load_with(FIX / f"{name}.yaml", FIX / f"{name}.safetensors"), nhwc(ref["x"]))
    y = nhwc(ref["y"])
    np.testing.assert_allclose(out, y, rtol=1e-4, atol=1e-5 * np.abs(y).max())
    assert report["new"] == [] and report["unused"] == [] and report["format"] == "safetensors"


def test_keras_weights_h5_gives_keras_outputs():
    ref = np.load(FIX / "keras_cnn.npz")
    out, report = forward(load_with(FIX / "keras_cnn.yaml", FIX / "keras_cnn.weights.h5"), ref["x"], head=True)
    np.testing.assert_allclose(out, ref["y"], rtol=1e-4, atol=1e-6)
    assert report["copied"][:2] == ["conv/kernel", "conv/bias"] and report["format"] == "keras"
    assert "bn/mean" in report["copied"] and report["new"] == []


@pytest.mark.parametrize("root", ["/", "model_weights"])
def test_keras2_layout_reads_the_same(tmp_path, root):
    """Keras 2's layout: attribute layer_names, then each layer's weight_names (save_weights at the root,
    model.save under model_weights)."""
    layers = read_keras(FIX / "keras_cnn.weights.h5")
    path = tmp_path / "old.h5"
    with h5py.File(path, "w") as h5:
        f = h5.require_group(root)
        f.attrs["layer_names"] = [n.encode() for n in [*layers, "flatten"]]
        f.create_group("flatten").attrs["weight_names"] = []
        for name, arrays in layers.items():
            g = f.create_group(name)
            names = [f"{name}/w{i}:0" for i in range(len(arrays))]
            g.attrs["weight_names"] = [n.encode() for n in names]
            for n, a in zip(names, arrays):
                g[n] = a
    assert {k: [a.shape for a in v] for k, v in read_keras(path).items()} == {
        k: [a.shape for a in v] for k, v in layers.items()
    }
    ref = np.load(FIX / "keras_cnn.npz")
    out, _ = forward(load_with(FIX / "keras_cnn.yaml", path), ref["x"], head=True)
    np.testing.assert_allclose(out, ref["y"], rtol=1e-4, atol=1e-6)


LENET = (FIX / "lenet5.yaml").read_text()
X32 = np.zeros((1, 32, 32, 1), np.float32)


def test_a_shape_mismatch_names_the_tensor_and_both_shapes():
    text = LENET.replace("name: fc1, type: dense, units: 120", "name: fc1, type: dense, units: 100")
    with pytest.raises(SpecError) as e:
        forward(load_with("", FIX / "lenet5.safetensors", text), X32)
    msg = str(e.value)
    assert "model.init_from" in msg and "tensor 'fc1.weight' has shape [120, 400]" in msg
    assert "[400, 120]" in msg and "fc1/kernel is [400, 100]" in msg


def test_a_new_head_is_reported_and_the_rest_copied():
    text = LENET.replace("name: fc3, type: dense, units: 10", "name: head, type: dense, units: 4")
    _, report = forward(load_with("", FIX / "lenet5.safetensors", text), X32)
    assert report["new"] == ["head/kernel", "head/bias"] and report["unused"] == ["fc3.bias", "fc3.weight"]
    assert report["copied"][:2] == ["conv1/kernel", "conv1/bias"] and len(report["copied"]) == 8


def test_a_half_present_layer_is_an_error(tmp_path):
    tensors = load_file(FIX / "lenet5.safetensors")
    del tensors["fc2.bias"]
    save_file(tensors, tmp_path / "cut.safetensors")
    with pytest.raises(SpecError, match=r"has layer fc2 but no 'fc2.bias' for its bias \[84\]"):
        forward(load_with(FIX / "lenet5.yaml", tmp_path / "cut.safetensors"), X32)


def test_a_file_of_another_model_is_an_error_listing_what_it_holds():
    with pytest.raises(
        SpecError,
        match=r"no array of the file matches .* The file holds: bn\[0\], bn\[1\], bn\[2\], bn\[3\], conv\[0\]",
    ):
        forward(load_with(FIX / "lenet5.yaml", FIX / "keras_cnn.weights.h5"), X32)


def test_a_missing_weight_file_is_a_located_spec_error(tmp_path):
    with pytest.raises(SpecError, match=r"model.init_from=.*: model.init_from: no such weight file"):
        load_spec(str(FIX / "lenet5.yaml"), overrides=(f"model.init_from={tmp_path / 'w.safetensors'}",))


def test_not_a_safetensors_file_is_a_clear_error(tmp_path):
    (tmp_path / "w.safetensors").write_bytes(b"not really")
    with pytest.raises(NnctlError, match="not a safetensors file"):
        forward(load_with(FIX / "lenet5.yaml", tmp_path / "w.safetensors"), X32)


def test_a_pt_file_without_pytorch_says_what_to_do(tmp_path, monkeypatch):
    (tmp_path / "w.pt").write_bytes(b"PK")
    monkeypatch.setitem(sys.modules, "torch", None)  # as if PyTorch were not installed
    with pytest.raises(NnctlError, match=r"needs PyTorch \(pip install torch\), or convert it to .safetensors"):
        forward(load_with(FIX / "lenet5.yaml", tmp_path / "w.pt"), X32)


def test_train_starts_from_a_safetensors_file_and_reports_it(tmp_path):
    """nnctl train with init_from a PyTorch file: the frozen layers keep PyTorch's weights bit for bit (in
    nnctl's layout), the new head trains, summary.json says what was read."""
    from nnctl import rundir
    from nnctl.app import train_run

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(40, 32, 32, 1)).astype(np.float32), y=rng.integers(0, 3, 40))
    text = LENET.replace("name: fc3, type: dense, units: 10", "name: head, type: dense, units: 3")
    text = text.replace("model:", "data: {source: npz, path: d.npz, x: x, y: y, test_split: 0.25}\nmodel:", 1)
    text = text.replace("  epochs: 90", '  epochs: 1\n  evaluate_test: false\n  freeze: ["conv*", "fc*"]')
    (tmp_path / "s.yaml").write_text(text)
    res = train_run(str(tmp_path / "s.yaml"), str(tmp_path / "run"), (f"model.init_from={FIX / 'lenet5.safetensors'}",))
    rep = res.summary["init_from"]
    assert rep["format"] == "safetensors" and rep["new"] == ["head/kernel", "head/bias"]
    params = rundir.read_msgpack(res.run_dir / rundir.WEIGHTS)["params"]
    torch_conv = load_file(FIX / "lenet5.safetensors")["conv2.weight"]
    assert np.array_equal(np.asarray(params["conv2"]["kernel"]), torch_conv.transpose(2, 3, 1, 0))


def test_init_names_maps_layers_named_differently_in_the_file():
    """Keras names (conv, bn, hidden, out) onto a spec's own names, and a PyTorch head under another name."""
    ref = np.load(FIX / "keras_cnn.npz")
    text = (FIX / "keras_cnn.yaml").read_text()
    for old, new in (("conv", "c1"), ("bn", "n1"), ("hidden", "fc1"), ("out", "fc2")):
        text = text.replace(f"name: {old},", f"name: {new},")
    names = "  init_names: {c1: conv, n1: bn, fc1: hidden, fc2: out}\n"
    out, report = forward(
        load_with("", FIX / "keras_cnn.weights.h5", text.replace("  layers:", names + "  layers:")), ref["x"], True
    )
    np.testing.assert_allclose(out, ref["y"], rtol=1e-4, atol=1e-6)
    assert report["new"] == [] and report["unused"] == [] and report["copied"][0] == "c1/kernel"

    text = LENET.replace("name: fc3, type: dense", "name: head, type: dense").replace(
        "  layers:", "  init_names: {head: fc3}\n  layers:"
    )
    _, report = forward(load_with("", FIX / "lenet5.safetensors", text), X32)
    assert report["new"] == [] and report["unused"] == [] and "head/kernel" in report["copied"]


def test_init_names_keys_must_be_layers_of_the_spec():
    text = LENET.replace("  layers:", "  init_names: {fc4: fc3}\n  layers:")
    with pytest.raises(SpecError, match=r"model.init_names.fc4: 'fc4' is not a layer of this spec. Did you mean 'fc3'"):
        load_with("", FIX / "lenet5.safetensors", text)
    with pytest.raises(SpecError, match="init_names needs model.init_from naming a weight file"):
        load_text(LENET.replace("  layers:", "  init_names: {fc1: x}\n  layers:"), require_sources=False)
