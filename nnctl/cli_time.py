"""`nnctl time SPEC`: compile the training step ahead of time and measure it.

Reports compile time, steady-state time per step and throughput (after blocking on the results), FLOPs per
step from XLA's cost analysis and the compiled program's memory estimate; for fused training also the
whole-epoch program (what `nnctl train` runs) per step.
"""

from __future__ import annotations

import time
from typing import Annotated, Optional

import typer

from nnctl.cli import JsonOpt, QuietOpt, _console, _emit, _guard, app


def time_spec(spec_path: str, overrides: tuple[str, ...] = (), steps: int = 50, warmup: int = 3) -> dict:
    """Library function behind `nnctl time`."""
    from nnctl.jaxcfg import configure

    configure()
    import jax
    import jax.numpy as jnp

    from nnctl.data.prepare import prepare
    from nnctl.run import build
    from nnctl.spec import load_spec

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

    state = jax.jit(loop.start, static_argnums=0)(tuple(data.input_shape))["state"]
    sums = jax.jit(loop.train_sums0)()

    def step(state, sums, x, y, mask, key):
        xb, yb, m = loop.place_batch((x, y, mask))
        return loop.obj.train_step(state, sums, xb, yb, m, key, loop.max_steps, loop.halt_on_nonfinite)

    key = jax.random.key(0)
    t = time.perf_counter()
    lowered = jax.jit(step, donate_argnums=(0, 1)).lower(state, sums, x, y, mask, key)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t

    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else (cost or {})
    flops = float(cost.get("flops", 0.0)) or None
    mem = compiled.memory_analysis()
    memory = None
    if mem is not None:
        memory = {k: int(getattr(mem, f"{k}_size_in_bytes", 0) or 0)
                  for k in ("argument", "output", "temp", "generated_code")}
        memory["total"] = memory["argument"] + memory["output"] + memory["temp"]

    for _ in range(warmup):
        state, sums = compiled(state, sums, x, y, mask, key)
    jax.block_until_ready((state, sums))
    t = time.perf_counter()
    for _ in range(steps):
        state, sums = compiled(state, sums, x, y, mask, key)
    jax.block_until_ready((state, sums))
    step_s = (time.perf_counter() - t) / steps

    out = {"spec": spec_path, "device": f"{jax.default_backend()} x{jax.device_count()}", "batch_size": bs,
           "parameters": b.param_count, "fuse": b.fuse, "compile_seconds": round(compile_s, 4),
           "step_ms": step_s * 1e3, "steps_per_second": 1.0 / step_s, "samples_per_second": bs / step_s,
           "flops_per_step": flops, "gflops_per_second": flops / step_s / 1e9 if flops else None,
           "memory_bytes": memory}

    if b.fuse == "epochs":  # the program `nnctl train` runs: a whole epoch in one call
        train_data = (jnp.asarray(data.x_train), jnp.asarray(data.y_train))
        st = jax.jit(loop.start, static_argnums=0)(tuple(data.input_shape))["state"]
        t = time.perf_counter()
        ep = jax.jit(lambda s, d, e: loop.train_epoch(s, d, e), donate_argnums=0).lower(
            st, train_data, jnp.int32(0)).compile()
        epoch_compile = time.perf_counter() - t
        st, _ = ep(st, train_data, jnp.int32(0))
        jax.block_until_ready(st)
        reps = max(1, min(20, int(steps / loop.n_batches) or 1))
        t = time.perf_counter()
        for e in range(reps):
            st, s2 = ep(st, train_data, jnp.int32(e + 1))
        jax.block_until_ready((st, s2))
        per_step = (time.perf_counter() - t) / (reps * loop.n_batches)
        out["epoch_program"] = {"compile_seconds": round(epoch_compile, 4), "steps_per_epoch": loop.n_batches,
                                "step_ms": per_step * 1e3, "steps_per_second": 1.0 / per_step,
                                "samples_per_second": bs / per_step}
    return out


@app.command("time")
def time_cmd(
    spec: Annotated[str, typer.Argument(help="The YAML spec whose training step to time.")],
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a key: train.batch_size=256")] = None,
    steps: Annotated[int, typer.Option(help="Timed steps (after warm-up).")] = 50,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """Compile the training step ahead of time; report compile time, step time, throughput, FLOPs, memory."""
    res = _guard(lambda: time_spec(spec, tuple(set_ or ()), steps), as_json)

    def render():
        from nnctl.summary import human_bytes
        c = _console()
        c.print(f"{res['spec']} on {res['device']}: batch {res['batch_size']}, {res['parameters']:,} parameters")
        c.print(f"  compile (one step)   {res['compile_seconds']:.3f} s")
        c.print(f"  step                 {res['step_ms']:.3f} ms  ({res['steps_per_second']:,.0f} steps/s, "
                f"{res['samples_per_second']:,.0f} samples/s)")
        if res["flops_per_step"]:
            c.print(f"  FLOPs per step       {res['flops_per_step']:.4g}  ({res['gflops_per_second']:.1f} GFLOP/s)")
        if res["memory_bytes"]:
            m = res["memory_bytes"]
            c.print(f"  compiled memory      {human_bytes(m['total'])} (arguments {human_bytes(m['argument'])}, "
                    f"outputs {human_bytes(m['output'])}, temporaries {human_bytes(m['temp'])})")
        ep = res.get("epoch_program")
        if ep:
            c.print(f"  fused epoch program  compile {ep['compile_seconds']:.3f} s; {ep['step_ms']:.3f} ms/step "
                    f"({ep['steps_per_second']:,.0f} steps/s, {ep['samples_per_second']:,.0f} samples/s)")

    _emit(res, as_json, quiet, render)
