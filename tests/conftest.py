import os
import tempfile

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_NUMPY_RANK_PROMOTION", "raise")  # also in the CLI processes tests start
os.environ.setdefault("NNCTL_DATA_CACHE_DIR", tempfile.mkdtemp(prefix="nnctl-data-cache-"))  # not the user's

import pathlib

import jax
import pytest

# Broadcasting arrays of different ranks must be spelled out (`x[:, None]`, `expand_dims`): an implicit
# rank promotion is an error in the tests, so a shape mix-up cannot silently broadcast.
jax.config.update("jax_numpy_rank_promotion", "raise")

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


@pytest.fixture
def runs(tmp_path):
    return tmp_path / "runs"
