"""What `nnctl train` shows: a start-up banner, a live progress bar with the latest metrics, a final table."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from nnctl.cli.common import esc, fmt

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class TrainDisplay:
    """The banner, a live progress bar with an ETA (on stderr) and the final table (on stdout) of `nnctl train`.

    When stderr is not a terminal (nohup, Slurm, CI, `| tee`) there is no bar: one plain, unwrapped line per
    epoch with its metrics, at most one every PLAIN_EVERY_S seconds on long runs (and always the last)."""

    REFRESH_S = 0.1  # records arrive in bursts (one compiled call = many epochs): show the latest this often
    PLAIN_EVERY_S = 1.0  # plain lines: at most one a second once a run has more than PLAIN_ALL_EPOCHS epochs
    PLAIN_ALL_EPOCHS = 100

    def __init__(self, enabled: bool = True, plain: bool | None = None, stream: Any = None):
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.plain = (not self.stream.isatty()) if plain is None else plain
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self._last: dict | None = None
        self._shown_at = 0.0
        self._epochs = 0
        self._started = 0.0
        self._console: Any = None  # plain mode: the console lines are printed to
        self._printed: dict | None = None  # plain mode: the last record printed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self._show_last()
            self.progress.stop()
        self._flush_plain()
        return False

    def _flush_plain(self) -> None:
        """Plain mode: print the last epoch if it was skipped (long runs print at most one line a second)."""
        if self._console is not None and self._last is not None and self._last is not self._printed:
            self._plain_line(self._last)

    def start(self, info: dict) -> None:
        """Print the banner (`nnctl.app.banner.banner`'s record) and start the progress bar."""
        if not self.enabled:
            return
        from rich.console import Console

        c = Console(file=self.stream, highlight=False, soft_wrap=self.plain)
        for line in banner_lines(info):
            c.print(line)
        self._epochs, self._started = info["epochs"], time.monotonic()
        if self.plain:
            self._console = c
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]epoch"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=c,
            transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task(
            "train", total=info["epochs"], completed=info["start_epoch"] or 0, metrics="compiling..."
        )

    def epoch(self, rec: dict) -> None:
        """Take one epoch's record; the bar shows the latest every REFRESH_S seconds (plain: a line)."""
        if self._console is not None:
            self._last = rec
            now = time.monotonic()
            last = rec.get("epoch") == self._epochs
            if self._epochs <= self.PLAIN_ALL_EPOCHS or last or now - self._shown_at >= self.PLAIN_EVERY_S:
                self._shown_at = now
                self._plain_line(rec)
            return
        if self.progress is None:
            return
        self._last = rec
        now = time.monotonic()
        if now - self._shown_at >= self.REFRESH_S:
            self._shown_at = now
            self._show_last()

    def _plain_line(self, rec: dict) -> None:
        self._printed = rec
        shown = "  ".join(f"{k}={fmt(v)}" for k, v in rec.items() if k.startswith(("train/", "val/")))
        elapsed = time.monotonic() - self._started
        self._console.print(f"epoch {rec['epoch']}/{self._epochs}  {shown}  ({elapsed:.1f} s)", markup=False)
        self.stream.flush()

    def _show_last(self) -> None:
        rec = self._last
        if rec is None:
            return
        assert self.progress is not None and self.task is not None  # callers check the bar was started
        shown = {k: v for k, v in rec.items() if k.startswith(("train/", "val/"))}
        text = "  ".join(f"{k}={fmt(v)}" for k, v in shown.items())
        self.progress.update(self.task, completed=rec["epoch"], metrics=text)

    def final(self, summary: dict) -> None:
        """Stop the bar and print the run's summary as a table."""
        from rich.console import Console
        from rich.table import Table

        if self.progress is not None:
            self._show_last()
            self.progress.stop()
            self.progress = None
        self._flush_plain()
        c = Console(highlight=False)
        t = Table(
            title=f"{summary['name']}: {summary['status']}"
            + (f" ({summary['stop_reason']})" if summary.get("stop_reason") else "")
        )
        best = summary.get("at_best_epoch") or {}
        kept = "best epoch (kept)" if summary.get("restored_best") else "best epoch"
        t.add_column("")
        t.add_column(f"last epoch ({summary['epochs_run']})", justify="right")
        if best:
            t.add_column(f"{kept} ({summary['best_epoch']})", justify="right")
        for k, v in summary["final"].items():
            t.add_row(k, fmt(v), *([fmt(best.get(k, ""))] if best else []))
        pad = [""] if best else []
        test = summary.get("test")
        for k, v in (test["metrics"] if test else {}).items():  # scored with the kept weights
            cells = ["", fmt(v)] if best and summary.get("restored_best") else [fmt(v), *pad]
            t.add_row(f"test/{k}", *cells)
        t.add_row(
            "monitor",
            f"{summary['monitor']} (best {fmt(summary['best_value'])} at epoch {summary['best_epoch']})",
            *pad,
        )
        t.add_row("epochs / steps", f"{summary['epochs_run']} / {summary['steps']}", *pad)
        t.add_row(
            "compile / train time",
            f"{summary['compile_seconds']:.2f} s{cache_note(summary.get('compile_cache'))} / "
            f"{summary['train_seconds']:.2f} s",
            *pad,
        )
        t.add_row("steps/s", fmt(summary["steps_per_second"]), *pad)
        c.print(t)
        if summary.get("message"):
            c.print(f"[red]{summary['message']}[/]")
        for flag in summary.get("diagnostics") or []:  # train.diagnostics: what the per-layer records show
            c.print(f"[yellow]diagnostics:[/] {esc(flag)}", soft_wrap=True, highlight=False)
        c.print(f"run directory: {summary['run_dir']}")


def cache_note(cache: dict | None) -> str:
    """' (cache)' when the persistent cache served every compiled program, ' (cache: h of n)' when some."""
    if not cache or not cache["from_cache"]:
        return ""
    if cache["from_cache"] == cache["programs"]:
        return " (cache)"
    return f" (cache: {cache['from_cache']} of {cache['programs']})"


def banner_lines(info: dict) -> list[str]:
    """The banner of `nnctl train` (rich markup), from its plain record."""
    d, sizes, es, ck = info["data"], info["data"]["sizes"], info["early_stopping"], info["checkpoints"]
    cw, st = info["class_weights"], info["streaming"]
    lines = [
        f"[bold]{info['name']}[/]  -> {info['run_dir']}",
        f"  device: {info['device']}   data: {d['origin']} ({d['task']}) train {sizes['train']}, "
        f"val {sizes['val']}, test {sizes['test']}" + _missing_note(sizes),
        f"  model: {info['parameters']:,} parameters   optimizer: {info['optimizer']}"
        + (f"   class weights: {', '.join(f'{w:.3g}' for w in cw)}" if cw else ""),
        f"  batch {info['batch_size']} x {info['steps_per_epoch']} steps/epoch   epochs {info['epochs']}   "
        f"compiled loop: {info['fuse']}"
        + (
            f", data streamed from the host ({st['window']} batches per call, {st['prefetch']} prefetched)"
            if st
            else ""
        ),
    ]
    if es is not None:
        lines.append(
            f"  early stopping: {es['monitor']} ({es['mode']}) patience {es['patience']}, "
            f"min_delta {es['min_delta']}{', restore best' if es['restore_best'] else ''}"
        )
    ckpt = f"every {ck['every_epochs']} epochs (keep {ck['keep']}) + best" if ck else "on interrupt only"
    lines.append(
        f"  seed {info['seed']}   shuffle {info['shuffle']}   on_nonfinite {info['on_nonfinite']}   "
        f"checkpoints: {ckpt}   logs: {', '.join(info['logs'])}"
        + ("   diagnostics: per layer, each epoch" if info.get("diagnostics") else "")
    )
    if info["start_epoch"] is not None:
        lines.append(f"  [bold]resuming[/] after epoch {info['start_epoch']} from {info['checkpoint_dir']}")
    lines += [f"  [yellow]warning:[/] {esc(w)}" for w in info.get("warnings", [])]
    return lines


def _missing_note(sizes: dict) -> str:
    parts = ([f"{sizes['dropped']} examples dropped"] if sizes.get("dropped") else []) + (
        [f"{sizes['filled']} values filled with training means"] if sizes.get("filled") else []
    )
    return f"; missing values: {', '.join(parts)}" if parts else ""
