"""The zoo against PyTorch itself (where torch is installed: the bench extra; CI has no torch and skips this
file): .pt files through torch.load(weights_only=True), pickled objects refused, and every full-size zoo spec
giving the output of torchvision's architecture (tests/zoo_torch.py) on random weights, no download."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.errors import NnctlError
from tests.conftest import SPECS
from tests.test_zoo_transfer import X32, forward, load_with

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install '.[bench]'); CI checks fixtures")
zt = pytest.importorskip("tests.zoo_torch")


def _lenet():
    torch.manual_seed(1)
    return zt.LeNet5().eval()


def _torch_out(model, x_nchw):
    with torch.no_grad():
        return model(torch.from_numpy(x_nchw)).numpy()


def test_pt_state_dict_and_checkpoint_dicts_read(tmp_path):
    model = _lenet()
    x = np.random.default_rng(0).normal(size=(2, 1, 32, 32)).astype(np.float32)
    sd = model.state_dict()
    files = {
        "plain.pt": sd,
        "ckpt.pth": {"epoch": 3, "state_dict": sd},  # a training checkpoint
        "parallel.pt": {f"module.{k}": v for k, v in sd.items()},  # nn.DataParallel's names
    }
    for name, obj in files.items():
        torch.save(obj, tmp_path / name)
        out, report = forward(load_with(SPECS / "zoo" / "lenet5.yaml", tmp_path / name), x.transpose(0, 2, 3, 1))
        np.testing.assert_allclose(out, _torch_out(model, x), rtol=1e-4, atol=1e-6)
        assert report["format"] == "torch" and report["new"] == [] and report["unused"] == []


def test_a_pickled_model_object_is_refused_not_run(tmp_path):
    torch.save(_lenet(), tmp_path / "whole_model.pt")  # the module object itself: needs unpickling code
    with pytest.raises(NnctlError, match=r"holds more than tensors, and nnctl never runs pickled code"):
        forward(load_with(SPECS / "zoo" / "lenet5.yaml", tmp_path / "whole_model.pt"), X32)


VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
FULL = {
    "alexnet.yaml": lambda: zt.AlexNet(),
    "vgg16.yaml": lambda: zt.VGG(VGG16),
    "resnet18.yaml": lambda: zt.ResNet(zt.BasicBlock, [2, 2, 2, 2]),
    "resnet50.yaml": lambda: zt.ResNet(zt.Bottleneck, [3, 4, 6, 3]),
    "googlenet.yaml": lambda: zt.GoogLeNet(),
}


@pytest.mark.slow
@pytest.mark.parametrize("file", list(FULL))
def test_full_size_zoo_gives_torchvisions_outputs(file, tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = zt.randomize_batch_stats(FULL[file]())
    x = np.random.default_rng(0).normal(size=(1, 3, 224, 224)).astype(np.float32)
    ref = _torch_out(model, x)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "w.safetensors"))
    del model
    out, report = forward(load_with(SPECS / "zoo" / file, tmp_path / "w.safetensors"), x.transpose(0, 2, 3, 1))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    assert report["new"] == [] and report["unused"] == []
