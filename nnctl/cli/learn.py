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
    run_dir: Annotated[str, typer.Argument(help="A run directory of a vae, gan or aae model.")],
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
        int | None,
        typer.Option(help="The class to draw (conditional gan, ACGAN) or InfoGAN's category (default: all in turn)."),
    ] = None,
    interpolate: Annotated[
        str | None,
        typer.Option(
            help="vae: I,J: encode examples I and J (of --input, else the test split) and decode --steps points "
            "on the line between their codes (default out: RUN/interpolation.npz)."
        ),
    ] = None,
    steps: Annotated[int, typer.Option(help="--interpolate: points from I to J, both ends included.")] = 8,
    codes: Annotated[
        str | None,
        typer.Option(
            help="Decode these codes instead of random draws: .npy, .npz (array `codes`) or CSV with a header, one "
            "row per code of latent_dim values (a gan: its noise, then InfoGAN's codes) (default out: RUN/decoded.npz)."
        ),
    ] = None,
    input: Annotated[
        str | None, typer.Option("--input", "-i", help="--interpolate: the file holding examples I and J.")
    ] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
):
    """Decode draws from the prior N(0, I) of a trained vae, or generate with a trained gan; or decode given
    codes (--codes), or a vae's interpolation between two examples (--interpolate I,J --steps K)."""

    def body():
        from nnctl.app.latent import decode_run, interpolate_run, pair_of
        from nnctl.app.sample import sample_run
        from nnctl.errors import NnctlError

        if interpolate is not None:
            if codes is not None:
                raise NnctlError("give --interpolate or --codes, not both")
            return interpolate_run(run_dir, pair_of(interpolate), steps, input, out)
        if input is not None:
            raise NnctlError("--input goes with --interpolate I,J (it holds examples I and J)")
        if codes is not None:
            return decode_run(run_dir, codes, out, label)
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
