import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


@pytest.fixture
def runs(tmp_path):
    return tmp_path / "runs"
