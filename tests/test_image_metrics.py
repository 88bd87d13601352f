"""PSNR and SSIM as training metrics of an autoencoder (and a vae) on the digits: logged per epoch, improving."""

import math

import pytest

from nnctl.app import train_run
from tests.conftest import SPECS


@pytest.mark.slow  # a training run (~12 s); the values are checked in tests/test_registries.py
def test_autoencoder_logs_psnr_and_ssim(tmp_path):
    res = train_run(
        str(SPECS / "autoencoder_digits.yaml"),
        out=str(tmp_path / "ae"),
        overrides=("train.epochs=3", "train.metrics=[psnr, ssim]"),
    )
    first, last = res.records[0], res.records[-1]
    assert math.isfinite(last["val/psnr"]) and 0 < last["val/ssim"] <= 1
    assert last["train/psnr"] > first["train/psnr"]  # reconstruction improves: higher PSNR
    assert last["val/psnr"] > 0
