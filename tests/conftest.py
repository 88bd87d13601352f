import os
import sys
import tempfile

# The suite starts ~150 `nnctl` processes. Where the environment sets PYTHONDONTWRITEBYTECODE (some CI images and
# sandboxes do), each of them compiles nnctl's ~130 modules from source again: ~0.8 CPU-s per process. The tests let
# Python keep its bytecode cache (in the clone's ignored __pycache__ folders), as an installed package would have.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# Compiling dominates the suite (most tests train a small model once), so the tests ask LLVM for its quickest
# code generation (-O0): ~35 % less compile time, the same results on every spec we compared. Set XLA_FLAGS
# yourself to test with other settings (for example the default: XLA_FLAGS=--xla_force_host_platform_device_count=1).
# what a user's own `nnctl` runs with, before the default below (tests/test_example_numbers.py measures with it)
os.environ.setdefault("NNCTL_TEST_USER_XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1 --xla_backend_optimization_level=0")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_NUMPY_RANK_PROMOTION", "raise")  # also in the CLI processes tests start
os.environ.setdefault("NNCTL_DATA_CACHE_DIR", tempfile.mkdtemp(prefix="nnctl-data-cache-"))  # not the user's

import pathlib

import jax
import pytest

sys.dont_write_bytecode = False  # this process too (see PYTHONDONTWRITEBYTECODE above)

# Broadcasting arrays of different ranks must be spelled out (`x[:, None]`, `expand_dims`): an implicit
# rank promotion is an error in the tests, so a shape mix-up cannot silently broadcast.
jax.config.update("jax_numpy_rank_promotion", "raise")

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


@pytest.fixture
def runs(tmp_path):
    return tmp_path / "runs"
