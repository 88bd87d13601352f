"""Write tests/fixtures/zoo/: small weight files other tools wrote, with an input and that tool's output, so
CI (no PyTorch, no Keras) checks `model.init_from`'s mapping by identical outputs (tests/test_zoo_transfer.py).

    python scripts/make_zoo_fixtures.py      # needs torch (the bench extra) and keras (Keras 3, jax backend)

For each model: NAME.yaml (the nnctl spec, built by scripts/make_zoo_specs.py's builders: LeNet-5 at full size,
reduced copies of the other zoo networks with the same module names and structure), NAME.safetensors (the
PyTorch modules of tests/zoo_torch.py, randomly initialised, batch-norm statistics randomised too) and NAME.npz
(x: an input batch, NCHW, float16 values; y: PyTorch's output, logits). keras_cnn.*: a small Keras 3 model saved with
`save_weights` (.weights.h5), its input (NHWC) and output (softmax). decoder.*: linear -> reshape -> transposed
convolutions (PyTorch's channels-first view and ConvTranspose2d layout).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
OUT = ROOT / "tests" / "fixtures" / "zoo"

import make_zoo_specs as zs  # noqa: E402


def torch_models():
    from tests import zoo_torch as zt

    vgg_cfg = (4, "M", 8, "M")
    return {  # name: (torch module, nnctl layers, input shape NCHW)
        "lenet5": (zt.LeNet5(), zs.lenet5(), (2, 1, 32, 32)),
        "alexnet_small": (
            zt.AlexNet(5, (4, 8, 8, 8, 8), 16, 2),
            zs.alexnet(5, (4, 8, 8, 8, 8), 16, 2),
            (1, 3, 127, 127),  # the smallest input that leaves 3x3 for the adaptive pool to 2x2
        ),
        "vgg_small": (zt.VGG(vgg_cfg, 5, 8, 3), zs.vgg(5, vgg_cfg, 8, 3), (2, 3, 16, 16)),
        "resnet18_small": (
            zt.ResNet(zt.BasicBlock, [2, 1, 1, 1], 5, (4, 8, 8, 16)),
            zs.resnet((2, 1, 1, 1), False, 5, (4, 8, 8, 16)),
            (2, 3, 32, 32),
        ),
        "resnet50_small": (
            zt.ResNet(zt.Bottleneck, [2, 1, 1, 1], 5, (2, 4, 4, 4)),
            zs.resnet((2, 1, 1, 1), True, 5, (2, 4, 4, 4)),
            (2, 3, 32, 32),
        ),
        "googlenet_small": (zt.GoogLeNet(5, scale=32), zs.googlenet(5, scale=32), (2, 3, 64, 64)),
    }


def write_torch() -> None:
    import torch
    from safetensors.torch import save_file

    from tests import zoo_torch as zt

    torch.manual_seed(0)
    for name, (model, layers, shape) in torch_models().items():
        zt.randomize_batch_stats(model)
        x = np.random.default_rng(0).normal(size=shape).astype(np.float16)  # stored as float16 (half the bytes)
        with torch.no_grad():
            y = model(torch.from_numpy(x.astype(np.float32))).numpy()
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(OUT / f"{name}.safetensors"))
        np.savez_compressed(OUT / f"{name}.npz", x=x, y=y)
        about = "A reduced copy of the zoo network (same module names), for tests/test_zoo_transfer.py."
        hwc = [shape[2], shape[3], shape[1]]
        (OUT / f"{name}.yaml").write_text(zs.spec_text(name, about, hwc, layers, int(y.shape[1])))


DECODER_SPEC = """# A DCGAN-style decoder (tests/zoo_torch.py's Decoder): PyTorch views the linear output NCHW.
model:
  input_shape: [4]
  layers:
    - {name: fc, type: dense, units: 72, activation: relu}
    - {name: image, type: reshape, shape: [3, 3, 8]}
    - {name: up1, type: conv2d_transpose, filters: 4, kernel_size: 4, strides: 2, padding: 1, activation: relu}
    - {name: up2, type: conv2d_transpose, filters: 1, kernel_size: 3, padding: 1}
train: {loss: mse}
"""


def write_decoder() -> None:
    import torch
    from safetensors.torch import save_file

    from tests import zoo_torch as zt

    torch.manual_seed(0)
    model = zt.Decoder().eval()
    x = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(OUT / "decoder.safetensors"))
    np.savez_compressed(OUT / "decoder.npz", x=x, y=y)
    (OUT / "decoder.yaml").write_text(DECODER_SPEC)


KERAS_SPEC = """# A small Keras 3 CNN (scripts/make_zoo_fixtures.py); its layers carry the Keras model's names.
model:
  input_shape: [8, 8, 3]
  layers:
    - {name: conv, type: conv2d, filters: 4, kernel_size: 3, activation: relu}
    - {name: bn, type: batch_norm}
    - {name: pool, type: max_pool2d, pool_size: 2}
    - {name: flatten, type: flatten}
    - {name: hidden, type: dense, units: 6, activation: tanh}
    - {name: out, type: dense, units: 3, activation: softmax}
train: {loss: categorical_crossentropy}
"""


def write_keras() -> None:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    keras.utils.set_random_seed(0)
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            L.Conv2D(4, 3, activation="relu", name="conv"),
            L.BatchNormalization(name="bn"),
            L.MaxPooling2D(2, name="pool"),
            L.Flatten(name="flatten"),
            L.Dense(6, activation="tanh", name="hidden"),
            L.Dense(3, activation="softmax", name="out"),
        ]
    )
    bn = model.get_layer("bn")
    rng = np.random.default_rng(1)
    bn.set_weights([rng.uniform(0.5, 1.5, 4), rng.normal(0, 0.1, 4), rng.normal(0, 0.1, 4), rng.uniform(0.5, 1.5, 4)])
    x = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
    y = np.asarray(model(x, training=False))
    model.save_weights(str(OUT / "keras_cnn.weights.h5"))
    np.savez_compressed(OUT / "keras_cnn.npz", x=x, y=y)
    (OUT / "keras_cnn.yaml").write_text(KERAS_SPEC)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    write_torch()
    write_decoder()
    write_keras()
    total = sum(f.stat().st_size for f in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total / 1024:.0f} KiB, to {OUT.relative_to(ROOT)}")
