"""What each process pays before it trains (issue 12): layer spec classes build their pydantic schemas on first
use, and host arrays reach the device without an eager XLA program, as a private copy."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnctl.engine.compiled import to_device
from nnctl.errors import SpecError
from nnctl.spec import load_text

ROOT = Path(__file__).resolve().parents[1]

PROBE = textwrap.dedent(
    """
    import json
    from nnctl.layers import LAYERS
    from nnctl.spec import load_spec
    before = sorted(n for n, c in LAYERS.items() if c.__pydantic_complete__)
    load_spec("specs/iris.yaml")
    after = sorted(n for n, c in LAYERS.items() if c.__pydantic_complete__)
    print(json.dumps([before, after]))
    """
)


def test_validating_a_spec_builds_only_the_layer_classes_it_uses():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    before, after = json.loads(out.stdout)
    holders = {"residual", "time_distributed"}  # layers holding layers are built at import (their `layers` type)
    assert set(before) == holders
    assert set(after) == holders | {"dense", "dropout"}  # iris's layers, nothing else


SPEC = """
data: {source: builtin:iris}
model:
  layers:
    - {type: dense, units: 4}
    - {type: residual, layers: [{type: dense, units: 4, activaton: relu}]}
    - {type: dense, units: 3, activation: softmax}
train: {loss: categorical_crossentropy, optimizer: adam}
"""


def test_a_layer_error_is_still_located_with_its_choices():
    with pytest.raises(SpecError) as e:
        load_text(SPEC, "s.yaml", check=False)
    text = str(e.value)
    assert "s.yaml:6" in text and "model.layers[1].layers[0].activaton" in text
    assert "unknown key 'activaton'. Did you mean 'activation'?" in text


def test_to_device_is_jnp_asarray_without_sharing_the_callers_array():
    for a in (np.arange(16, dtype=np.float32), np.arange(6, dtype=np.int64), np.linspace(0, 1, 7), np.ones(3, bool)):
        host = a.copy()
        got, want = to_device(host), jnp.asarray(a)
        host[:] = 0  # the caller's array changes after the call: the device's copy does not
        assert got.dtype == want.dtype and got.weak_type == want.weak_type and got.shape == want.shape
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    scalar = to_device(3.0)  # anything but a numpy array goes through jnp.asarray
    assert scalar.weak_type and isinstance(scalar, jax.Array)
