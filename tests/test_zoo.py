"""specs/zoo: the networks the notes name, with torchvision's parameter counts, counted from
`model.input_shape` alone (abstract shapes: no data, no compile), and the committed files are what
scripts/make_zoo_specs.py writes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nnctl.app.inspect import param_rows
from nnctl.spec import load_spec
from tests.conftest import SPECS

ROOT = SPECS.parent

# torchvision's `num_params` (its weights' metadata; Keras' VGG16 has the same count), LeNet-5 by hand:
# 156 + 2,416 + 48,120 + 10,164 + 850
COUNTS = {
    "lenet5.yaml": 61_706,
    "alexnet.yaml": 61_100_840,
    "vgg16.yaml": 138_357_544,
    "resnet18.yaml": 11_689_512,
    "resnet50.yaml": 25_557_032,
    "googlenet.yaml": 6_624_904,
}
# batch norm's running mean and variance (batch_stats; PyTorch buffers, not parameters): 2 per channel
RUNNING = {"resnet18.yaml": 2 * 4_800, "resnet50.yaml": 2 * 26_560, "googlenet.yaml": 2 * 7_280}


@pytest.mark.parametrize("file", list(COUNTS))
def test_zoo_parameter_counts_equal_torchvision(file):
    rows = param_rows(load_spec(str(SPECS / "zoo" / file), require_sources=False))
    params = sum(r.count for r in rows if not r.path.startswith("batch_stats:"))
    assert params == COUNTS[file]
    assert sum(r.count for r in rows) - params == RUNNING.get(file, 0)


def test_zoo_specs_are_generated():
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_zoo_specs.py"), "--check"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_ceil_mode_and_adaptive_pools_follow_pytorchs_rules_by_hand():
    """On 0, 1, 2, 3, 4: a 2-wide ceil-mode pool keeps the last, partial window (an average divides by what it
    covers); adaptive pooling to 3 reduces [0, 2), [1, 4), [3, 5) (PyTorch: floor(i n/o) .. ceil((i+1) n/o))."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from nnctl.layers.graph import Network
    from tests.test_layers import build

    x = jnp.arange(5.0).reshape(1, 5, 1)

    def run(layer):
        net = Network(build([layer]))
        return np.asarray(net.apply(net.init(jax.random.key(0), x), x)).ravel().tolist()

    assert run({"type": "max_pool1d", "pool_size": 2, "ceil_mode": True}) == [1.0, 3.0, 4.0]
    assert run({"type": "avg_pool1d", "pool_size": 2, "ceil_mode": True}) == [0.5, 2.5, 4.0]
    assert run({"type": "max_pool1d", "pool_size": 2}) == [1.0, 3.0]
    assert run({"type": "adaptive_avg_pool", "output_size": 3}) == [0.5, 2.0, 3.5]
    assert run({"type": "adaptive_max_pool", "output_size": 3}) == [1.0, 3.0, 4.0]
