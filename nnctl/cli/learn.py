"""Commands of the learning setups: `nnctl explain` (backpropagation written out) and `nnctl sample`
(draws from a trained vae or gan). Registered on the main app by nnctl.cli."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from nnctl.cli import app
from nnctl.cli.common import JsonOpt, QuietOpt, console, emit, guard


@app.command()
def explain(
    spec: Annotated[str, typer.Argument(help="The YAML spec (a sequential model).")],
    steps: Annotated[int, typer.Option("--steps", "-n", help="Training steps to write out.")] = 1,
    sample: Annotated[
        int | None, typer.Option("--sample", help="Use this training example alone (default: the first batch).")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a key: train.optimizer.learning_rate=1")
    ] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """Print training steps layer by layer in the notes' notation: z, a, the loss, delta, dE/dW, dE/db and
    the updated weights, computed by the same code that trains (in float64); convolution and pooling windows,
    BPTT of simple_rnn layers unrolled per step, and the optimizer's state after each step."""

    def body():
        from nnctl.app.explain import explain_spec

        return explain_spec(spec, steps, sample, tuple(set_ or ()))

    doc = guard(body, as_json)
    if as_json:
        from nnctl.app.explain import to_json

        print(json.dumps(to_json(doc)))
    elif not quiet:
        from nnctl.app.explain import render

        c = console()
        for line in render(doc):
            c.print(line, markup=False, soft_wrap=True)


@app.command()
def sample(
    run_dir: Annotated[str, typer.Argument(help="A run directory of a vae or gan model.")],
    n: Annotated[int, typer.Option("--n", help="How many samples.")] = 16,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="The .npz to write (default RUN/samples.npz); "
            "a PNG (grid of images, or a scatter of 2-D points) goes beside it.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the prior draws.")] = 0,
    label: Annotated[
        int | None, typer.Option(help="Conditional gan: the class to draw (default: all in turn).")
    ] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """Decode draws from the prior N(0, I) of a trained vae, or generate with a trained gan."""

    def body():
        from nnctl.app.sample import sample_run

        return sample_run(run_dir, n, out, seed, label)

    res = guard(body, as_json)
    emit(
        res,
        as_json,
        quiet,
        lambda: console().print(
            f"wrote {res['samples']} samples to {res['npz']}" + (f" and {res['png']}" if res.get("png") else "")
        ),
    )
