"""`nnctl time`: how long a spec's training step and epoch take, compiled exactly as `nnctl train` runs them."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from nnctl.app.builder import build
from nnctl.data.prepare import prepare
from nnctl.jaxcfg import configure
from nnctl.spec import load_spec


def time_spec(spec_path: str, overrides: tuple[str, ...] = (), steps: int = 50, warmup: int = 3) -> dict:
    """What `nnctl time` reports: compile time, step time, throughput, FLOPs and the memory estimate of the
    training step `nnctl train` runs (the loop's own `train_step`), and of the whole-epoch program."""
    configure()
    loaded = load_spec(spec_path, overrides)
    data = prepare(loaded.spec, loaded.analysis, loaded.base_dir)
    b = build(loaded, data)
    loop = b.loop
    bs = loop.batch_size
    x = jnp.asarray(data.x_train[:bs])
    y = jnp.asarray(data.y_train[:bs])
    if len(x) < bs:  # padded like the loop's last batch
        reps = -(-bs // len(x))
        x, y = jnp.concatenate([x] * reps)[:bs], jnp.concatenate([y] * reps)[:bs]
    mask = jnp.ones((bs,), jnp.float32)

    state = jax.jit(loop.start, static_argnums=0)(tuple(data.input_shape)).state
    sums = jax.jit(loop.train_sums0)()
    key, i = loop.epoch_key(jnp.int32(0)), jnp.int32(0)
    t = time.perf_counter()
    lowered = jax.jit(loop.train_step, donate_argnums=(0, 1, 2)).lower(state, *sums, x, y, mask, key, i)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t

    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else (cost or {})
    flops = float(cost.get("flops", 0.0)) or None
    mem = compiled.memory_analysis()
    memory = None
    if mem is not None:
        memory = {
            k: int(getattr(mem, f"{k}_size_in_bytes", 0) or 0) for k in ("argument", "output", "temp", "generated_code")
        }
        memory["total"] = memory["argument"] + memory["output"] + memory["temp"]

    for _ in range(warmup):
        state, *sums = compiled(state, *sums, x, y, mask, key, i)
    jax.block_until_ready((state, sums))
    t = time.perf_counter()
    for _ in range(steps):
        state, *sums = compiled(state, *sums, x, y, mask, key, i)
    jax.block_until_ready((state, sums))
    step_s = (time.perf_counter() - t) / steps

    out = {
        "spec": spec_path,
        "device": f"{jax.default_backend()} x{jax.device_count()}",
        "batch_size": bs,
        "parameters": b.param_count,
        "fuse": b.fuse,
        "compile_seconds": round(compile_s, 4),
        "step_ms": step_s * 1e3,
        "steps_per_second": 1.0 / step_s,
        "samples_per_second": bs / step_s,
        "flops_per_step": flops,
        "gflops_per_second": flops / step_s / 1e9 if flops else None,
        "memory_bytes": memory,
    }

    if b.fuse == "epochs":  # the program `nnctl train` runs: a whole epoch in one call
        out["epoch_program"] = _epoch_program(loop, data, steps)
    return out


def _epoch_program(loop, data, steps: int) -> dict:
    """Compile time and per-step speed of the whole-epoch program (`Loop.train_epoch`)."""
    train_data = (jnp.asarray(data.x_train), jnp.asarray(data.y_train))
    st = jax.jit(loop.start, static_argnums=0)(tuple(data.input_shape)).state
    t = time.perf_counter()
    ep = (
        jax.jit(lambda s, d, e: loop.train_epoch(s, d, e), donate_argnums=0)
        .lower(st, train_data, jnp.int32(0))
        .compile()
    )
    epoch_compile = time.perf_counter() - t
    st, _, _ = ep(st, train_data, jnp.int32(0))
    jax.block_until_ready(st)
    reps = max(1, min(20, int(steps / loop.n_batches) or 1))
    t = time.perf_counter()
    for e in range(reps):
        st, s2, _ = ep(st, train_data, jnp.int32(e + 1))
    jax.block_until_ready((st, s2))
    per_step = (time.perf_counter() - t) / (reps * loop.n_batches)
    return {
        "compile_seconds": round(epoch_compile, 4),
        "steps_per_epoch": loop.n_batches,
        "step_ms": per_step * 1e3,
        "steps_per_second": 1.0 / per_step,
        "samples_per_second": loop.batch_size / per_step,
    }
