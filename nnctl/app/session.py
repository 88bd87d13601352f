"""Training in a run directory: `train_run` (a new run) and `resume_run` (from its newest checkpoint). A
session writes the resolved spec and provenance, logs every epoch, checkpoints, turns SIGINT/SIGTERM into
a clean stop with a checkpoint, and writes the weights, scalers and summary atomically at the end."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax

from nnctl import checkpoint, interrupt, rundir
from nnctl.app.builder import Built, build
from nnctl.app.fitting import FitResult, Resume, StopFlag, fit
from nnctl.app.memory import check_memory
from nnctl.app.provenance import changed, data_record, save_data_record
from nnctl.app.scoring import score
from nnctl.app.summary import summarize
from nnctl.data.peek import resolve
from nnctl.data.prepare import Dataset, prepare
from nnctl.engine.state import Carry
from nnctl.errors import RunDirError, TrainingInterrupted
from nnctl.logs import RunLogs
from nnctl.parallel import is_primary, scratch_run_dir
from nnctl.spec import Loaded, load_spec, load_text

OnStart = Callable[[Built, Path, int | None], None]  # (built, run directory, epoch resumed from or None)
OnEpoch = Callable[[dict], None]


@dataclass
class TrainResult:
    run_dir: Path
    summary: dict
    records: Sequence[dict] = field(default_factory=list)


def train_run(
    spec_path: str,
    out: str | None = None,
    overrides: tuple[str, ...] = (),
    seed: int | None = None,
    on_start: OnStart = lambda b, p, e: None,
    on_epoch: OnEpoch = lambda r: None,
    runs_root: str = "runs",
    memory_check: bool = True,
) -> TrainResult:
    """Train a spec into a new run directory.

    Args:
        spec_path: the YAML spec.
        out: the run directory to create (must not exist); default `runs_root/<name>` (never overwritten:
            `-2`, `-3`, ... are appended).
        overrides: `key.path=value` edits applied before validation (like `--set`).
        seed: replaces the spec's seed.
        on_start: called once the run directory exists and the model is built (the progress display).
        on_epoch: called with each epoch's record.
        runs_root: where default run directories go.
        memory_check: refuse a model whose estimated memory exceeds the device's (nnctl.app.memory).
    Returns:
        The run directory, its summary and every epoch's record.
    Raises:
        SpecError, DataError: the spec or its data is wrong (nothing is written).
        TrainingInterrupted: a signal stopped training; a checkpoint was written.
    """
    ov = tuple(overrides) + ((f"seed={seed}",) if seed is not None else ())
    loaded = load_spec(spec_path, ov)
    interrupt.check("nothing was written")
    spec = loaded.spec
    data = prepare(spec, loaded.analysis, loaded.base_dir)
    interrupt.check("nothing was written")
    b = build(loaded, data)
    if memory_check:
        check_memory(b)
    interrupt.check("nothing was written")
    name = spec.name or Path(spec_path).stem
    if is_primary():  # process 0 writes
        run, lock = rundir.new_run_dir(out, name, runs_root)
    else:
        run = scratch_run_dir()
        lock = rundir.RunLock.take(run)
    try:
        if interrupt.pending() is not None:
            lock.release()
            shutil.rmtree(run, ignore_errors=True)
            interrupt.check(f"the new run directory {run} was removed again")
        _disk_guard(run, None, lambda: write_start(run, loaded, spec_path, ov, b.data))
        return _session(b, run, None, on_start, on_epoch)
    finally:
        lock.release()


def write_start(run: Path, loaded: Loaded, spec_path: str, ov: tuple[str, ...], data: Dataset) -> None:
    rundir.write_spec(run, resolved_paths(loaded))
    save_data_record(run, data)  # what eval must score: the data's fingerprint and the split
    origin = {"spec_file": str(Path(spec_path).resolve()), "spec_dir": str(Path(loaded.base_dir).resolve())}
    rundir.write_json(run / "origin.json", {**origin, "overrides": list(ov)})


def resume_run(
    run_dir: str | Path,
    on_start: OnStart = lambda b, p, e: None,
    on_epoch: OnEpoch = lambda r: None,
    memory_check: bool = True,
) -> TrainResult:
    """Continue a run from its newest good checkpoint, in the same directory, under its saved spec.

    Args:
        run_dir: a run directory with a checkpoint and no final summary.
        on_start, on_epoch, memory_check: as for `train_run`.
    Returns:
        As `train_run`; the records include the epochs before the checkpoint.
    Warns:
        RunNote: a damaged newer checkpoint was skipped, or damaged log lines were dropped (each named).
    """
    run = rundir.check_run_dir(run_dir)
    lock = rundir.RunLock.take(run)  # a second --resume of a live run is refused here
    try:
        if (run / rundir.SUMMARY).exists():
            status = rundir.read_json(run / rundir.SUMMARY).get("status")
            if status in ("finished", "stopped_early", "failed"):
                raise RunDirError(
                    f"{run} has already ended (status: {status}); there is nothing to resume. "
                    f"Train again with a new --out to continue from its weights."
                )
        checkpoint.clean_temporaries(run)
        loaded = load_run_spec(run)
        interrupt.check(f"{run} is unchanged")
        b = build(loaded, prepare(loaded.spec, loaded.analysis, loaded.base_dir))
        record = data_record(run)
        why = changed(record, b.data) if record else None
        if why:  # the same weights on other examples would not continue this run (nor be reproducible)
            raise RunDirError(f"{run} cannot be resumed: {why}. Train again with a new --out")
        if memory_check:
            check_memory(b)
        interrupt.check(f"{run} is unchanged")
        carry, meta, notes = checkpoint.load_latest(run, carry_template(b), loaded.spec)
        for n in notes:
            warnings.warn(n, rundir.RunNote, stacklevel=2)
        start = Resume(
            carry,
            [],
            float(meta.get("compile_seconds", 0.0)),
            float(meta.get("train_seconds", 0.0)),
            int(meta["epoch"]),
        )
        return _session(b, run, start, on_start, on_epoch)
    finally:
        lock.release()


def carry_template(b: Built) -> Any:
    """Shapes and dtypes of the loop carry of a spec, without running anything."""
    shape = tuple(b.data.input_shape)
    return jax.eval_shape(lambda: b.loop.start(shape))


def resolved_paths(loaded: Loaded) -> Any:
    """The spec with data paths made absolute, so the run directory's copy finds the data from anywhere."""
    spec = loaded.spec
    if not spec.data.path:
        return spec
    path = str(resolve(spec.data.path, Path(loaded.base_dir)).resolve())
    return spec.model_copy(update={"data": spec.data.model_copy(update={"path": path})})


def load_run_spec(run: Path) -> Loaded:
    """A run directory's saved spec, checked, with relative data paths resolved as when it was trained."""
    spec_file = run / rundir.SPEC
    try:
        text = rundir.read_bytes(spec_file).decode("utf-8")
    except UnicodeDecodeError as e:
        raise RunDirError(f"{spec_file} is not UTF-8 text ({e})") from None
    return load_text(text, str(spec_file), (), data_base(run))


def data_base(run: Path) -> Path:
    """The directory a run's relative data paths were resolved against (its spec's directory)."""
    meta = run / "origin.json"
    return Path(rundir.read_json(meta).get("spec_dir", ".")) if meta.exists() else Path(".")


def _session(b: Built, run: Path, start: Resume | None, on_start: OnStart, on_epoch: OnEpoch) -> TrainResult:
    """One training session in a run directory: logs, checkpoints, signals, final files."""
    stop = StopFlag()
    old = {s: signal.signal(s, stop) for s in interrupt.SIGNALS}
    try:
        early = interrupt.pending()  # a signal since `nnctl train` began: the fit stops at once and checkpoints
        if early is not None:
            stop(early, None)
        res = _disk_guard(run, start, lambda: _fit(b, run, start, on_start, on_epoch, stop))
        summary = _disk_guard(run, start, lambda: write_final(b, run, res, start))
    finally:  # the handlers stay until the final files are written: a signal now is noted, not fatal
        _restore_handlers(old)
    if stop.signum is not None and res.status == "interrupted":  # a signal after the last epoch changes nothing
        where = f"checkpoint {res.checkpoint}" if res.checkpoint else "the run so far"
        raise TrainingInterrupted(
            f"{signal.Signals(stop.signum).name}: stopped after epoch {int(res.carry.epoch)}; "
            f"{where} is saved. Resume with: nnctl train --resume {run}",
            interrupt.exit_code(stop.signum),
        )
    return TrainResult(run, summary, res.records)


def _fit(b: Built, run: Path, start: Resume | None, on_start: OnStart, on_epoch: OnEpoch, stop: StopFlag) -> FitResult:
    t = b.loaded.spec.train
    ck = t.checkpoint
    ckpt = checkpoint.Checkpointer(run, resolved_paths(b.loaded), ck.every_epochs if ck else None, ck.keep if ck else 3)
    write_run_info(run, start)
    logs = RunLogs(run, tuple(t.log), start.epoch if start is not None else None)
    ckpt.before_save = logs.flush  # a checkpoint's epochs are in the logs before the checkpoint exists
    for n in logs.notes:
        warnings.warn(n, rundir.RunNote, stacklevel=3)
    if start is not None:
        start.records = [dict(r) for r in logs.previous]
    on_start(b, run, start.epoch if start is not None else None)

    def record(r: dict) -> None:
        logs.write(r)
        on_epoch(r)

    try:
        return fit(b, record, stop, start=start, ckpt=ckpt)
    except Exception as e:
        if not isinstance(e, OSError):  # a disk error is not the run's failure: it stays resumable
            _write_failed(b, run, e)
        raise
    finally:
        logs.close()


def _write_failed(b: Built, run: Path, e: Exception) -> None:
    doc = {
        "name": b.loaded.spec.name or run.name,
        "run_dir": str(run),
        "status": "failed",
        "error": f"{type(e).__name__}: {e}",
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    with contextlib.suppress(OSError):  # the disk may be what failed
        rundir.write_json(run / rundir.SUMMARY, doc)


def _disk_guard(run: Path, start: Resume | None, fn: Callable[[], Any]) -> Any:
    """`fn()`, with a failed write (disk full, file-size limit, read-only, I/O error) turned into a clear
    RunDirError that says the run can be resumed from its last good checkpoint once the cause is fixed."""
    try:
        return fn()
    except OSError as e:
        ckpts = checkpoint.list_checkpoints(run)
        where = f"{e.filename}: " if e.filename else ""
        then = (
            f"its newest checkpoint ({ckpts[-1][1].name}) is intact: fix the cause, then resume with "
            f"nnctl train --resume {run}"
            if ckpts
            else f"no checkpoint was written yet: fix the cause, then train again (remove {run})"
        )
        raise RunDirError(f"cannot write the run directory {run}: {where}{e.strerror or e}; {then}") from None


def write_run_info(run: Path, start: Resume | None) -> None:
    info = rundir.read_json(run / rundir.RUN) if start is not None and (run / rundir.RUN).exists() else {}
    info.setdefault("started_at", time.strftime("%Y-%m-%dT%H:%M:%S"))
    info.update(pid=os.getpid(), host=socket.gethostname())
    if start is not None:
        info["resumed"] = info.get("resumed", []) + [{"at": time.strftime("%Y-%m-%dT%H:%M:%S"), "epoch": start.epoch}]
        (run / rundir.SUMMARY).unlink(missing_ok=True)
    rundir.write_json(run / rundir.RUN, info)


def write_final(b: Built, run: Path, res: FitResult, start: Resume | None, test: dict | None = None) -> dict:
    """Weights, optimizer state, scalers and summary.json of a fit; `test`: its test score when the caller
    computed it already (a population scores all its members in one program), else scored here."""
    data, carry = b.data, res.carry
    rundir.write_state(
        run,
        res.weights,
        carry.state.opt_state,
        {
            "x": data.scaler.to_dict(),
            "y": data.target_scaler.to_dict(),
            "impute": data.imputer.to_dict(),
            "csv": data.layout.to_dict() if data.layout else None,
        },
        {"seed": b.loaded.spec.seed, "epoch": int(carry.epoch), "step": int(carry.state.step)},
    )
    summary = summarize(b, res, run, start.epoch if start is not None else None)
    if res.reason == "all_skipped":
        n = b.loaded.spec.train.max_skipped_epochs
        summary["message"] = (
            f"every step of the last {n} epoch{'s' if n > 1 else ''} was skipped (non-finite loss or gradients "
            f"under on_nonfinite: skip_step): the run failed, those epochs did not change its weights "
            f"(lower the learning rate or clip gradients; train.max_skipped_epochs sets {n})"
        )
    if b.loaded.spec.train.evaluate_test and data.x_test is not None and res.status != "interrupted":
        # the held-out split, in this process
        summary["test"] = test if test is not None else score(b, res.weights, "test")
    rundir.write_json(run / rundir.SUMMARY, summary)
    return summary


def _restore_handlers(old: dict) -> None:
    for sig, h in old.items():
        signal.signal(sig, h)


__all__ = ["TrainResult", "train_run", "resume_run", "carry_template", "Carry", "write_start", "write_final"]
