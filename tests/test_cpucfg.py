"""nnctl's own XLA:CPU settings (nnctl/cpucfg.py): convolutions by XLA's convolution, not YNNPACK; the user's
flag wins; the heap keeps a step's freed buffers (glibc)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from nnctl import cpucfg

FLAG = "--xla_cpu_experimental_ynn_fusion_type"


def test_the_flag_is_added_once_and_a_users_own_setting_wins():
    env: dict[str, str] = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    cpucfg.set_xla_flags(env)
    assert env["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=2 {FLAG}=-individual_convolution"
    cpucfg.set_xla_flags(env)  # idempotent
    assert env["XLA_FLAGS"].count(FLAG) == 1
    mine = {"XLA_FLAGS": f"{FLAG}="}
    cpucfg.set_xla_flags(mine)
    assert mine["XLA_FLAGS"] == f"{FLAG}="
    empty: dict[str, str] = {}
    cpucfg.set_xla_flags(empty)
    assert empty["XLA_FLAGS"] == f"{FLAG}=-individual_convolution"
    off = {"NNCTL_XLA_DEFAULTS": "off"}
    cpucfg.set_xla_flags(off)
    assert "XLA_FLAGS" not in off


def test_heap_setting_applies_on_glibc():
    libc = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else None
    assert cpucfg.keep_heap_top() is bool(libc and libc.startswith("glibc") and not cpucfg.turned_off())


PROBE = textwrap.dedent(
    """
    import nnctl, jax, jax.numpy as jnp
    from jax import lax
    def loss(k, x):
        y = lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return (y ** 2).sum()
    hlo = jax.jit(jax.grad(loss)).lower(jnp.ones((3, 3, 32, 64)), jnp.ones((8, 14, 14, 32))).compile().as_text()
    print("__ynn_fusion" in hlo)
    """
)


def _probe(**env: str) -> str:
    full = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "NNCTL_XLA_DEFAULTS")}
    full.update(JAX_PLATFORMS="cpu", **env)
    out = subprocess.run([sys.executable, "-c", PROBE], env=full, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_importing_nnctl_keeps_convolutions_out_of_ynnpack_and_the_opt_out_restores_them():
    assert _probe() == ["False"]  # XLA's own convolution, no YNNPACK call
    assert _probe(NNCTL_XLA_DEFAULTS="off") == ["True"]  # XLA's default: a YNNPACK fusion


def test_random_bits_come_from_the_unrolled_hash_and_are_jaxs_own():
    """After `jaxcfg.configure`, the CPU program drawing a permutation has no while loop for the threefry
    hash (its rounds unrolled), and its bits equal those of a process that never imported nnctl."""
    import jax
    import numpy as np

    from nnctl import jaxcfg

    def draw():
        return jax.random.permutation(jax.random.fold_in(jax.random.key(7), 3), 150)

    jaxcfg.configure()
    assert jaxcfg.unrolled_threefry() is True
    hlo = jax.jit(draw).lower().as_text()
    assert "threefry" in hlo and "while" not in hlo
    code = (
        "import sys, jax, numpy as np; "
        "print(np.asarray(jax.jit(lambda: jax.random.permutation(jax.random.fold_in(jax.random.key(7), 3), 150))())"
        ".tolist()); print('nnctl' in sys.modules)"
    )
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert plain[1] == "False"  # that process never imported nnctl: JAX's own CPU lowering (the loop)
    assert np.asarray(jax.jit(draw)()).tolist() == [int(v) for v in plain[0].strip("[]").split(",")]
