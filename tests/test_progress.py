"""`nnctl train`'s display when stderr is not a terminal (issue 11, item 7): one plain, unwrapped line per
epoch with its metrics; on a terminal, a bar with an ETA."""

from __future__ import annotations

import io

from nnctl.cli.progress import TrainDisplay

INFO = {
    "name": "a-run-with-a-rather-long-name-that-would-wrap-at-eighty-columns-in-a-plain-console",
    "run_dir": "runs/x",
    "device": "cpu x1",
    "data": {"origin": "d.csv", "task": "regression", "sizes": {"train": 8, "val": 2, "test": 0}},
    "parameters": 3,
    "optimizer": "adam",
    "class_weights": None,
    "batch_size": 4,
    "steps_per_epoch": 2,
    "epochs": 3,
    "fuse": "epochs",
    "streaming": None,
    "early_stopping": None,
    "seed": 0,
    "shuffle": True,
    "on_nonfinite": "stop",
    "checkpoints": None,
    "logs": ["metrics.jsonl"],
    "start_epoch": None,
    "checkpoint_dir": "runs/x/checkpoints",
    "warnings": ["s.yaml:3:1: data: y ranges 1..9000 and is not scaled"],
}


def test_not_a_terminal_prints_one_plain_line_per_epoch():
    out = io.StringIO()
    with TrainDisplay(stream=out) as d:  # a StringIO is not a TTY
        d.start(INFO)
        for e in (1, 2, 3):
            d.epoch({"epoch": e, "train/loss": 1.0 / e, "val/loss": 2.0 / e, "lr": 0.1})
    lines = out.getvalue().splitlines()
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [e.split()[1] for e in epochs] == ["1/3", "2/3", "3/3"]
    assert "train/loss=0.5" in epochs[1] and "val/loss=1" in epochs[1] and "lr" not in epochs[1]
    assert INFO["name"] in out.getvalue()  # not cut or wrapped at 80 columns
    assert any("warning: s.yaml:3:1" in line for line in lines)
    assert "\x1b[" not in out.getvalue()  # no terminal control codes


def test_long_runs_print_at_most_one_line_a_second_and_always_the_last():
    out = io.StringIO()
    d = TrainDisplay(stream=out)
    d.start(INFO | {"epochs": 1000})
    for e in range(1, 1001):
        d.epoch({"epoch": e, "train/loss": 1.0})
    d.__exit__(None, None, None)
    epochs = [line.split()[1] for line in out.getvalue().splitlines() if line.startswith("epoch ")]
    assert epochs[0] == "1/1000" and epochs[-1] == "1000/1000" and len(epochs) < 20


def test_a_terminal_gets_a_bar_with_an_eta():
    d = TrainDisplay(stream=io.StringIO(), plain=False)
    d.start(INFO)
    try:
        assert d.progress is not None
        assert any(type(c).__name__ == "TimeRemainingColumn" for c in d.progress.columns)
    finally:
        d.progress.stop()
