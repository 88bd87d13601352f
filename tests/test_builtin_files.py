"""The built-in data sets read from nnctl/data/files are bit-identical to scikit-learn's loaders and generators,
and loading them does not import scikit-learn (it costs ~0.8 CPU-s per process)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import sklearn.datasets as ds

from nnctl.data.builtin import BUILTINS

LOADERS = ["iris", "wine", "breast_cancer", "digits", "diabetes"]


@pytest.mark.parametrize("name", LOADERS)
def test_file_matches_sklearn_loader(name):
    b = getattr(ds, f"load_{name}")()
    x, y = BUILTINS[name].load(0, None, None)
    want_x = b.data.astype(np.float32)
    assert x.dtype == want_x.dtype and x.shape == want_x.shape and x.tobytes() == want_x.tobytes()
    assert y.dtype == b.target.dtype and y.shape == b.target.shape and y.tobytes() == b.target.tobytes()
    assert BUILTINS[name].x_shape == x.shape[1:]


@pytest.mark.parametrize("name", ["moons", "circles"])
@pytest.mark.parametrize(("seed", "n", "noise"), [(0, None, None), (3, 101, 0.3), (7, 2, 0.0)])
def test_generator_matches_sklearn(name, seed, n, noise):
    x, y = BUILTINS[name].load(seed, n, noise)
    default = {"moons": 0.1, "circles": 0.05}[name]
    kw = {"factor": 0.5} if name == "circles" else {}
    wx, wy = getattr(ds, f"make_{name}")(n or 500, noise=default if noise is None else noise, random_state=seed, **kw)
    assert x.tobytes() == wx.astype(np.float32).tobytes()
    assert y.dtype == wy.dtype and y.tobytes() == wy.tobytes()


def test_builtin_data_does_not_import_sklearn():
    code = (
        "import sys; from nnctl.data.sources import read; from nnctl.spec.models import DataSpec; "
        "from pathlib import Path\n"
        "for n in ['iris', 'digits', 'moons', 'circles']:\n"
        "    read(DataSpec(source='builtin:' + n), Path('.'), 0)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn')\n"
        "assert not bad, bad"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
