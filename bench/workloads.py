"""The benchmark workloads: synthetic data, the nnctl spec, and the sizes every implementation shares.

Every implementation (nnctl, the hand-written JAX reference, PyTorch eager) trains the same network with
Adam on the same data, batch size and number of steps, shuffling every epoch; the final short batch is
masked (nnctl, JAX reference) or short (PyTorch). Throughput is measured after compilation / warm-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Workload:
    name: str
    kind: str  # xor | iris | mlp | cnn | lstm
    input_shape: tuple
    classes: int  # 1 = binary (sigmoid), else softmax classes
    n: int
    batch: int
    epochs: int  # timed epochs (after one warm-up epoch/call)
    hidden: tuple = ()
    unit: str = "samples/s"  # or steps/s
    lr: float = 1e-3
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.n / self.batch)

    def flops_per_sample(self) -> float | None:
        """Exact float ops of one training example (forward + backward, no input gradient of layer 1)."""
        if self.kind in ("mlp", "iris", "xor"):
            dims = [math.prod(self.input_shape), *self.hidden, max(self.classes, 1)]
            mm = [a * b for a, b in zip(dims[:-1], dims[1:])]
            return 2.0 * (mm[0] * 2 + sum(mm[1:]) * 3)
        if self.kind == "cnn":
            # conv 3x3 'same' 1->32 at 28x28, pool, conv 3x3 32->64 at 14x14, pool, dense 3136->128->10
            c1 = 28 * 28 * 9 * 1 * 32
            c2 = 14 * 14 * 9 * 32 * 64
            d1 = 7 * 7 * 64 * 128
            d2 = 128 * 10
            return 2.0 * (c1 * 2 + (c2 + d1 + d2) * 3)
        if self.kind == "lstm":
            t, i = self.input_shape
            h = self.hidden[0]
            cell = 4 * h * (i + h)
            return 2.0 * (t * cell * 3 + h * self.classes * 3)
        return None


def workloads(quick: bool = False) -> list[Workload]:
    q = quick
    return [
        Workload(
            "xor",
            "xor",
            (2,),
            1,
            4,
            4,
            2000 if q else 20000,
            hidden=(4,),
            unit="steps/s",
            lr=0.1,
            notes="2-4-1 tanh/sigmoid, batch 4 (full), one step per epoch",
        ),
        Workload(
            "iris",
            "iris",
            (4,),
            3,
            150,
            16,
            200 if q else 2000,
            hidden=(16,),
            unit="steps/s",
            lr=0.01,
            notes="4-16-3 relu/softmax, 150 examples, batch 16 (10 steps/epoch, last one masked)",
        ),
        Workload(
            "mlp",
            "mlp",
            (784,),
            10,
            6000 if q else 60000,
            128,
            1 if q else 2,
            hidden=(512, 512),
            notes="784-512-512-10 relu, synthetic MNIST-shaped data",
        ),
        Workload(
            "cnn",
            "cnn",
            (28, 28, 1),
            10,
            512 if q else 2048,
            128,
            1 if q else 2,
            notes="conv3x3 32 -> maxpool2 -> conv3x3 64 -> maxpool2 -> dense 128 -> 10",
        ),
        Workload(
            "lstm",
            "lstm",
            (50, 8),
            10,
            1024 if q else 4096,
            64,
            1 if q else 2,
            hidden=(64,),
            notes="LSTM many-to-one, seq 50, input 8, hidden 64, dense 10",
        ),
    ]


def by_name(name: str, quick: bool = False) -> Workload:
    return {w.name: w for w in workloads(quick)}[name]


def make_data(w: Workload, seed: int = 0):
    """Deterministic synthetic data: float32 inputs, int32 labels (0/1 float for binary)."""
    rng = np.random.default_rng(seed)
    if w.kind == "xor":
        x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
        return x, np.array([0, 1, 1, 0], np.float32)
    if w.kind == "iris":
        from sklearn.datasets import load_iris

        d = load_iris()
        x = ((d.data - d.data.mean(0)) / d.data.std(0)).astype(np.float32)
        return x, d.target.astype(np.int32)
    x = rng.standard_normal((w.n, *w.input_shape), dtype=np.float32)
    if w.kind == "cnn":
        x = np.abs(x) * 0.5
    # labels from a fixed random projection: learnable, not trivially constant
    proj = rng.standard_normal((math.prod(w.input_shape), w.classes)).astype(np.float32)
    y = (x.reshape(w.n, -1) @ proj).argmax(1).astype(np.int32)
    return x, y


def nnctl_spec(w: Workload, data_path: str) -> str:
    """The nnctl YAML spec of a workload, reading its data from an npz file."""
    if w.kind == "xor":
        layers = ["{type: dense, units: 4, activation: tanh}", "{type: dense, units: 1, activation: sigmoid}"]
        loss, task = "binary_crossentropy", "binary"
    elif w.kind in ("iris", "mlp"):
        layers = [f"{{type: dense, units: {h}, activation: relu}}" for h in w.hidden]
        layers.append(f"{{type: dense, units: {w.classes}, activation: softmax}}")
        loss, task = "categorical_crossentropy", "classification"
    elif w.kind == "cnn":
        layers = [
            "{type: conv2d, filters: 32, kernel_size: 3, padding: same, activation: relu}",
            "{type: max_pool2d, pool_size: 2}",
            "{type: conv2d, filters: 64, kernel_size: 3, padding: same, activation: relu}",
            "{type: max_pool2d, pool_size: 2}",
            "{type: flatten}",
            "{type: dense, units: 128, activation: relu}",
            f"{{type: dense, units: {w.classes}, activation: softmax}}",
        ]
        loss, task = "categorical_crossentropy", "classification"
    elif w.kind == "lstm":
        layers = [f"{{type: lstm, units: {w.hidden[0]}}}", f"{{type: dense, units: {w.classes}, activation: softmax}}"]
        loss, task = "categorical_crossentropy", "classification"
    else:
        raise ValueError(w.kind)
    body = "\n".join(f"    - {layer}" for layer in layers)
    return f"""name: bench-{w.name}
seed: 0
data:
  source: npz
  path: {data_path}
  x: x
  y: y
  task: {task}
  shuffle: true
model:
  layers:
{body}
train:
  loss: {loss}
  metrics: [accuracy]
  optimizer: {{type: adam, learning_rate: {w.lr}}}
  batch_size: {w.batch}
  epochs: {w.epochs + 1}
"""
