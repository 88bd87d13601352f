"""`nnctl time SPEC`: compile the training step ahead of time and measure it.

Reports compile time, steady-state time per step and throughput (after blocking on the results), FLOPs per
step from XLA's cost analysis and the compiled program's memory estimate; for fused training also the
whole-epoch program (what `nnctl train` runs) per step.
"""

from __future__ import annotations

from typing import Annotated

import typer

from nnctl.cli import app
from nnctl.cli.common import JsonOpt, QuietOpt, console, emit, guard


@app.command("time")
def time_cmd(
    spec: Annotated[str, typer.Argument(help="The YAML spec whose training step to time.")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a key: train.batch_size=256")] = None,
    steps: Annotated[int, typer.Option(help="Timed steps (after warm-up).")] = 50,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """Compile the training step ahead of time; report compile time, step time, throughput, FLOPs, memory."""

    def body():
        from nnctl.app.timing import time_spec

        return time_spec(spec, tuple(set_ or ()), steps)

    res = guard(body, as_json)

    def render():
        from nnctl.app.inspect import human_bytes

        c = console()
        c.print(f"{res['spec']} on {res['device']}: batch {res['batch_size']}, {res['parameters']:,} parameters")
        c.print(f"  compile (one step)   {res['compile_seconds']:.3f} s")
        c.print(
            f"  step                 {res['step_ms']:.3f} ms  ({res['steps_per_second']:,.0f} steps/s, "
            f"{res['samples_per_second']:,.0f} samples/s)"
        )
        if res["flops_per_step"]:
            c.print(f"  FLOPs per step       {res['flops_per_step']:.4g}  ({res['gflops_per_second']:.1f} GFLOP/s)")
        if res["memory_bytes"]:
            m = res["memory_bytes"]
            c.print(
                f"  compiled memory      {human_bytes(m['total'])} (arguments {human_bytes(m['argument'])}, "
                f"outputs {human_bytes(m['output'])}, temporaries {human_bytes(m['temp'])})"
            )
        ep = res.get("epoch_program")
        if ep:
            c.print(
                f"  fused epoch program  compile {ep['compile_seconds']:.3f} s; {ep['step_ms']:.3f} ms/step "
                f"({ep['steps_per_second']:,.0f} steps/s, {ep['samples_per_second']:,.0f} samples/s)"
            )

    emit(res, as_json, quiet, render)
