"""Process settings for XLA:CPU that nnctl applies itself (docs/performance.md, "XLA:CPU settings").

* `set_xla_flags` (run when the `nnctl` package is imported, before JAX starts a backend): convolutions are
  compiled by XLA's own (Eigen) convolution instead of a YNNPACK library call,
  `--xla_cpu_experimental_ynn_fusion_type=-individual_convolution`. YNNPACK's kernel-gradient convolution
  (a window as large as the image) was most of a small CNN's training step; the flag changes nothing but
  convolutions (dots, reductions and elementwise fusions keep YNNPACK). A user's own
  `--xla_cpu_experimental_ynn_fusion_type` in `XLA_FLAGS` wins, and `NNCTL_XLA_DEFAULTS=off` turns both
  settings of this module off. XLA reads its flags once per process: in a program that ran JAX before importing
  nnctl the setting does not apply (nothing fails; convolutions are just slower).
* `keep_heap_top` (run when the package is imported): glibc's `M_MMAP_THRESHOLD` and `M_TOP_PAD`, so the
  large buffers of a compiled step come from the heap and what a step frees is kept for the next step,
  instead of each buffer being mapped, faulted in page by page and unmapped again on every step. The price:
  the process keeps memory it freed, so its peak RSS is higher (bench/RESULTS.md). Other C libraries:
  nothing.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import MutableMapping

YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type"
YNN_DEFAULT = "-individual_convolution"  # remove convolutions from XLA's default list, keep the rest
OFF_ENV = "NNCTL_XLA_DEFAULTS"
TOP_PAD = 128 << 20  # bytes glibc keeps at the top of the heap when freeing (only pages touched count in RSS)
MMAP_THRESHOLD = 512 << 20  # blocks up to this size come from the heap, not from a fresh mapping each
_M_TOP_PAD, _M_MMAP_THRESHOLD = -2, -3  # mallopt parameter numbers (glibc malloc.h)


def xla_flags(current: str) -> str:
    """`XLA_FLAGS` with nnctl's default added, unless the flag is already set."""
    if YNN_FLAG in current:
        return current
    return f"{current} {YNN_FLAG}={YNN_DEFAULT}".strip()


def turned_off(environ: MutableMapping[str, str] = os.environ) -> bool:
    """`NNCTL_XLA_DEFAULTS=off`: nnctl sets neither the XLA flag nor the heap options."""
    return environ.get(OFF_ENV, "").strip().lower() in ("off", "0", "false", "no")


def set_xla_flags(environ: MutableMapping[str, str] = os.environ) -> None:
    """Add nnctl's XLA:CPU default to `XLA_FLAGS` (unless turned off)."""
    if turned_off(environ):
        return
    environ["XLA_FLAGS"] = xla_flags(environ.get("XLA_FLAGS", ""))


def keep_heap_top(pad: int = TOP_PAD, threshold: int = MMAP_THRESHOLD) -> bool:
    """glibc: large blocks from the heap, `pad` bytes kept at its top when freeing. True when set (False:
    not glibc, or turned off)."""
    if turned_off():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the process already runs on
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to set
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(mallopt(_M_TOP_PAD, pad))
