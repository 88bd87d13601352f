"""What `nnctl train` shows: a start-up banner, a live progress bar with the latest metrics, a final table."""

from __future__ import annotations

import time
from typing import Any


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


class TrainDisplay:
    REFRESH_S = 0.1  # records arrive in bursts (one compiled call = many epochs): show the latest this often

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.progress = None
        self.task = None
        self._last: dict | None = None
        self._shown_at = 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self._show_last()
            self.progress.stop()
        return False

    def start(self, built, run_dir) -> None:
        if not self.enabled:
            return
        import jax
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        spec, data, loop = built.loaded.spec, built.data, built.loop
        c = Console(stderr=True, highlight=False)
        es = spec.train.early_stopping
        devices = ", ".join(sorted({d.platform for d in jax.devices()})) + f" x{len(jax.devices())}"
        c.print(f"[bold]{spec.name or run_dir.name}[/]  -> {run_dir}")
        c.print(f"  device: {devices}   data: {data.origin} ({data.task}) train {data.sizes['train']}, "
                f"val {data.sizes['val']}, test {data.sizes['test']}"
                + _missing_note(data.sizes))
        cw = getattr(built.obj, "class_weight", None)
        c.print(f"  model: {built.param_count:,} parameters   optimizer: {built.chain_desc}"
                + (f"   class weights: {', '.join(f'{w:.3g}' for w in cw)}" if cw else ""))
        c.print(f"  batch {loop.batch_size} x {loop.n_batches} steps/epoch   epochs {built.epochs}   "
                f"compiled loop: {built.fuse}"
                + (f", data streamed from the host ({built.window} batches per call, {built.prefetch} prefetched)"
                   if built.placement == "stream" else ""))
        if es is not None:
            c.print(f"  early stopping: {es.monitor} ({es.mode}) patience {es.patience}, min_delta {es.min_delta}"
                    f"{', restore best' if es.restore_best else ''}")
        t = spec.train
        ck = getattr(t, "checkpoint", None)
        ckpt = f"every {ck.every_epochs} epochs (keep {ck.keep}) + best" if ck else "on interrupt only"
        logs = ", ".join(["metrics.jsonl", *(getattr(t, "log", None) or [])])
        c.print(f"  seed {spec.seed}   shuffle {spec.data.shuffle}   on_nonfinite {t.on_nonfinite}   "
                f"checkpoints: {ckpt}   logs: {logs}")
        start = getattr(built, "start_epoch", None)
        if start is not None:
            c.print(f"  [bold]resuming[/] after epoch {start} from {run_dir / 'checkpoints'}")
        self.progress = Progress(TextColumn("[bold]epoch"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("{task.fields[metrics]}"), console=c, transient=False)
        self.progress.start()
        self.task = self.progress.add_task("train", total=built.epochs, completed=start or 0, metrics="compiling...")

    def epoch(self, rec: dict) -> None:
        if self.progress is None:
            return
        self._last = rec
        now = time.monotonic()
        if now - self._shown_at >= self.REFRESH_S:
            self._shown_at = now
            self._show_last()

    def _show_last(self) -> None:
        rec = self._last
        if rec is None:
            return
        shown = {k: v for k, v in rec.items() if k.startswith(("train/", "val/"))}
        text = "  ".join(f"{k}={_fmt(v)}" for k, v in shown.items())
        self.progress.update(self.task, completed=rec["epoch"], metrics=text)

    def final(self, summary: dict) -> None:
        from rich.console import Console
        from rich.table import Table

        if self.progress is not None:
            self._show_last()
            self.progress.stop()
            self.progress = None
        c = Console(highlight=False)
        t = Table(title=f"{summary['name']}: {summary['status']}"
                        + (f" ({summary['stop_reason']})" if summary.get("stop_reason") else ""))
        best = summary.get("at_best_epoch") or {}
        kept = "best epoch (kept)" if summary.get("restored_best") else "best epoch"
        t.add_column("")
        t.add_column(f"last epoch ({summary['epochs_run']})", justify="right")
        if best:
            t.add_column(f"{kept} ({summary['best_epoch']})", justify="right")
        for k, v in summary["final"].items():
            t.add_row(k, _fmt(v), *([_fmt(best.get(k, ""))] if best else []))
        pad = [""] if best else []
        t.add_row("monitor", f"{summary['monitor']} (best {_fmt(summary['best_value'])} at epoch {summary['best_epoch']})", *pad)
        t.add_row("epochs / steps", f"{summary['epochs_run']} / {summary['steps']}", *pad)
        t.add_row("compile / train time", f"{summary['compile_seconds']:.2f} s / {summary['train_seconds']:.2f} s", *pad)
        t.add_row("steps/s", _fmt(summary["steps_per_second"]), *pad)
        c.print(t)
        if summary.get("message"):
            c.print(f"[red]{summary['message']}[/]")
        c.print(f"run directory: {summary['run_dir']}")


def _missing_note(sizes: dict) -> str:
    parts = ([f"{sizes['dropped']} examples dropped"] if sizes.get("dropped") else []) + (
        [f"{sizes['filled']} values filled with training means"] if sizes.get("filled") else [])
    return f"; missing values: {', '.join(parts)}" if parts else ""
