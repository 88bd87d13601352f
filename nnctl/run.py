"""Run-level operations the CLI and tests call: train, evaluate, predict.

`train_run` = load spec -> prepare data -> build objective and loop -> fit (a generator of epoch records)
-> write the run directory. Progress display is a callback, not part of the loop.
"""

from __future__ import annotations

import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nnctl import rundir
from nnctl.early_stopping import REASONS, EarlyStopping
from nnctl.errors import DataError, RunDirError


# ------------------------------------------------------------------------------------------ building

@dataclass
class Built:
    loaded: Any
    data: Any
    obj: Any
    loop: Any
    epochs: int
    fuse: str
    param_count: int
    chain_desc: str
    placement: str = "device"  # or "stream": data stays on the host, windows of batches go to the device
    window: int = 1  # batches per compiled call when streaming
    prefetch: int = 2


def _regularizers(layers, prefix=""):
    out = []
    for layer in layers:
        reg = getattr(layer, "kernel_regularizer", None)
        if reg is not None and (reg.l1 or reg.l2):
            out.append((f"{prefix}{layer.name}", reg.l1, reg.l2))
        out += _regularizers(layer.children(), f"{prefix}{layer.name}/")
    return out


def _has_conv(layers) -> bool:
    return any(layer.type.startswith(("conv", "max_pool", "avg_pool")) or _has_conv(layer.children())
               for layer in layers)


def _check_metrics(loaded, task: str) -> None:
    """Classification metrics on a regression task are spec errors (found once the task is known)."""
    from nnctl.errors import SpecError
    from nnctl.metrics import METRICS, TASK_NEEDS

    allowed = TASK_NEEDS.get(task)
    if allowed is None:
        return
    why = "data.task" if loaded.spec.data.task else "inferred from the data; set data.task to change it"
    ok = ", ".join(n for n in METRICS.names(aliases=False) if METRICS.get(n).needs in allowed)
    problems = [loaded.problem(("train", "metrics", i), f"'{m}' does not apply to a {task} task ({why}). "
                                                          f"Choices: {ok}")
                for i, m in enumerate(loaded.spec.train.metrics) if METRICS.get(m).needs not in allowed]
    if problems:
        raise SpecError(problems)


def class_weights(loaded, data) -> tuple | None:
    """`train.class_weight` as one factor per class (balanced: n / (classes * count) over the training split)."""
    from nnctl.errors import SpecError

    cw = loaded.spec.train.class_weight
    if cw is None:
        return None
    key = ("train", "class_weight")
    y = data.y_train
    one_label = (data.task == "classification" and y.ndim == 1) or (
        data.task == "binary" and y.reshape(len(y), -1).shape[1] == 1)
    if not one_label:
        what = {"classification": "per-step labels", "binary": "multi-label targets"}.get(data.task, f"a {data.task} task")
        raise SpecError([loaded.problem(key, f"class_weight applies to one class label per example, not to {what}")])
    k = data.num_classes
    labels = y.reshape(-1).astype(np.int64)
    counts = np.bincount(labels, minlength=k)[:k]
    if cw == "balanced":
        return tuple(float(len(labels) / (k * c)) if c else 1.0 for c in counts)
    names = data.class_names or []
    w = [1.0] * k
    problems = []
    for c, v in cw.items():
        idx = names.index(c) if isinstance(c, str) and c in names else (
            int(c) if isinstance(c, int) or (isinstance(c, str) and c.isdigit()) else None)
        if idx is None or not 0 <= idx < k:
            known = f"labels {', '.join(names)} or " if names else ""
            problems.append(loaded.problem((*key, c), f"unknown class {c!r}: use {known}indices 0..{k - 1}"))
        elif not v > 0:
            problems.append(loaded.problem((*key, c), f"weight must be > 0, got {v}"))
        else:
            w[idx] = float(v)
    if problems:
        raise SpecError(problems)
    return tuple(w)


def build(loaded, data) -> Built:
    import jax
    import jax.numpy as jnp

    from nnctl.model import abstract_variables, build_network, frozen_layer_names, head_activation
    from nnctl.optim import build_chain
    from nnctl.spec.check import monitor_key
    from nnctl.train import Loop, Supervised

    spec = loaded.spec
    t = spec.train
    _check_metrics(loaded, data.task)
    net = build_network(spec.model, data.num_classes)
    n_train = len(data.x_train)
    bs = n_train if t.batch_size == "full" else min(int(t.batch_size), n_train)
    nb = math.ceil(n_train / bs)
    if t.steps is not None:
        epochs, max_steps = math.ceil(t.steps / nb), t.steps
    else:
        epochs, max_steps = t.epochs, 2**31 - 1
    total_steps = epochs * nb if t.steps is None else t.steps
    abstract = abstract_variables(net, data.input_shape)
    params_shape = abstract["params"]
    obj = None
    if spec.model.type == "sequential":
        tx, frozen, lr = build_chain(t, params_shape, total_steps, nb, frozen_layer_names(spec.model.layers))
        trainable = jax.tree.map(lambda f: not f, frozen)
        obj = Supervised(net, head_activation(spec.model, t.loss.type), t.loss, tuple(t.metrics), data.num_classes or 2, tx,
                         trainable, tuple(_regularizers(spec.model.layers)), t.gradient_clipping, lr,
                         compute_dtype=jnp.bfloat16 if t.precision == "bf16" else None,
                         target_scale=(data.target_scaler.scale if data.task == "regression"
                                       and data.target_scaler.kind != "none" else None),
                         class_weight=class_weights(loaded, data))
    from nnctl.objectives.setup import all_layers, objective_for  # vae, gan, regularizers, transfer (issue 4)
    obj = objective_for(loaded, data, net, obj, params_shape, total_steps, nb)
    tx, trainable = obj.tx, obj.trainable

    es_spec = t.early_stopping
    from nnctl.metrics import METRICS
    if es_spec is not None:
        monitor = monitor_key(es_spec.monitor)
        mode = es_spec.mode
        if mode == "auto":
            mode = METRICS.get(monitor[1]).mode if monitor[1] in METRICS else "min"
        es = EarlyStopping.create(mode, es_spec.patience, es_spec.min_delta, es_spec.baseline,
                                  es_spec.start_from_epoch, es_spec.stopping_threshold, es_spec.divergence_threshold)
        restore = es_spec.restore_best
    else:
        monitor = ("val", "loss") if data.x_val is not None else ("train", "loss")
        es, restore = EarlyStopping.create("min", enabled=False), False

    fuse = t.fuse
    if fuse == "auto":
        fuse = "steps" if (jax.default_backend() == "cpu" and _has_conv(all_layers(spec.model))) else "epochs"
    n_val = 0 if data.x_val is None else len(data.x_val)
    from nnctl.parallel import placement
    extra = {"placement": placement(t.devices, bs)}
    try:
        import optax
        if optax.tree_utils.tree_get(jax.eval_shape(tx.init, params_shape), "scale") is not None:
            extra["plateau_scale"] = lambda s: optax.tree_utils.tree_get(s, "scale")
    except Exception:
        pass
    loop = Loop(obj, n_train, bs, n_val, max(bs, 256), spec.data.shuffle, max_steps, monitor, es, restore,
                t.on_nonfinite == "stop", tuple(loaded.analysis.output_shape), jnp.asarray(data.y_train).dtype,
                spec.seed, True, extra)
    count = sum(math.prod(x.shape) for x in jax.tree.leaves(params_shape))
    chain = []
    if t.gradient_clipping:
        c = t.gradient_clipping
        chain.append(f"clip(max_value={c.max_value})" if c.max_value else
                     f"clip_{'per_tensor' if c.per_tensor else 'global'}_norm({c.max_norm})")
    if t.weight_decay:
        chain.append(f"weight_decay({t.weight_decay})")
    chain.append(t.optimizer.type)
    if any(not v for v in jax.tree.leaves(trainable)):
        chain.append("freeze")
    from nnctl.data.stream import choose_placement, data_bytes, window_size
    where = choose_placement(t.data_placement, data_bytes(data.x_train, data.y_train, data.x_val, data.y_val))
    batch_bytes = bs * (data.x_train[:1].nbytes + data.y_train[:1].nbytes)
    return Built(loaded, data, obj, loop, epochs, fuse, count, " -> ".join(chain), where,
                 window_size(t.stream.window, fuse, batch_bytes, nb), t.stream.prefetch)


# ------------------------------------------------------------------------------------------- fitting

@dataclass
class FitResult:
    carry: Any
    records: list
    compile_s: float
    train_s: float
    status: str
    reason: str
    weights: dict
    checkpoint: Any = None  # path of the checkpoint written by this session, if any


class StopFlag:
    """Set by SIGINT/SIGTERM: the loop finishes the call in flight, then saves and stops."""

    def __init__(self):
        self.signum: int | None = None

    def __call__(self, signum, frame):
        self.signum = signum


def fit(b: Built, on_epoch: Callable[[dict], None] = lambda r: None, stop: StopFlag | None = None,
        target_chunk_s: float = 0.25, start: "Resume | None" = None, ckpt: Any = None) -> FitResult:
    """Train from the spec's initial weights, or from `start` (a restored checkpoint).

    `ckpt` (a `checkpoint.Checkpointer`) is called at every epoch that is a multiple of its `every` and when
    a stop signal arrives. In `fuse: epochs` mode a compiled call runs several epochs but never past the
    next checkpoint epoch (the `limit` argument), and a signal is honoured after the call in flight (calls
    are sized to ~`target_chunk_s`). In `fuse: steps` mode a signal is honoured after the step in flight;
    the partial epoch is discarded and the checkpoint holds the state at the start of that epoch.

    How many epochs a call runs (chosen from timing) does not change any number: each epoch's randomness
    comes from (seed, epoch) and the epoch body is the same program (tests/test_resume.py checks that an
    interrupted and resumed run ends bit-identical to an uninterrupted one).
    """
    import jax
    import jax.numpy as jnp

    from nnctl.train import stack_records, steps_mode_fns

    from nnctl.jaxcfg import configure
    configure()  # persistent compilation cache
    loop, data = b.loop, b.data
    place = loop.extra.get("placement")  # data-parallel: all replicated, batches sharded inside the step
    jit = (lambda f, **kw: jax.jit(f, out_shardings=place.replicated, **kw)) if place else jax.jit
    put = place.put if place else (lambda tree: jax.tree.map(jnp.asarray, tree))
    t0 = time.perf_counter()
    if start is None:
        carry = jit(loop.start, static_argnums=0)(tuple(data.input_shape))  # init + carry: one program
        records: list[dict] = []
        compile_s = time.perf_counter() - t0
        train_s = 0.0
    else:
        carry = put(start.carry)
        records = list(start.records)
        compile_s = start.compile_s + time.perf_counter() - t0
        train_s = start.train_s
    streamed = b.placement == "stream"
    if streamed:  # the splits stay on the host; windows of batches are put on the device as they are needed
        train_data = val_data = None
    else:
        train_data = put((data.x_train, data.y_train))
        val_data = put((data.x_val, data.y_val)) if data.x_val is not None else None
    stop = stop or StopFlag()
    every = getattr(ckpt, "every", None) or None
    saved: dict[str, Any] = {"epoch": int(carry["epoch"]), "path": None}

    def emit(recs, seconds):
        for r in recs:
            r["time"] = seconds / max(len(recs), 1)
            r["epoch"] = int(r["epoch"]) + 1
            records.append(r)
            on_epoch(r)

    def save(c, force=False):
        e = int(c["epoch"])
        if ckpt is None or (e == saved["epoch"] and not force) or not (force or ckpt.due(e)):
            return
        saved["path"] = ckpt.save(c, {"compile_seconds": round(compile_s, 4), "train_seconds": round(train_s, 4)})
        saved["epoch"] = e

    if b.fuse == "epochs" and not streamed:
        # One program serves every chunk size: the epoch limit is an argument; `cap` bounds the records buffer.
        cap = max(1, min(b.epochs, 4096))
        t = time.perf_counter()
        compiled = jit(loop.chunk, static_argnums=4, donate_argnums=0).lower(
            carry, train_data, val_data, jnp.int32(b.epochs), cap).compile()
        compile_s += time.perf_counter() - t

        # Pipelined: the next call is dispatched before the records of the previous one are read, so turning
        # records into dicts on the host overlaps the device running the next epochs. The loop state is
        # donated to each call, so a call whose end is a checkpoint epoch is waited for (and saved) before
        # the next one starts. After a stop (early stopping, max steps) a call already dispatched runs no
        # epochs: its while-loop condition reads the stopped flag.
        k = 1
        e_next, stopped = int(carry["epoch"]), bool(carry["stopped"])
        inflight = None  # (records on the device, first epoch, epoch limit) of the call running
        t_mark = time.perf_counter()
        while True:
            more = not stopped and e_next < b.epochs and stop.signum is None
            if inflight is not None and ckpt is not None and ckpt.due(inflight[2]):
                more = False
            new = None
            if more:
                lim = min(e_next + k, b.epochs if not every else min(b.epochs, (e_next // every + 1) * every))
                carry, recs = compiled(carry, train_data, val_data, jnp.int32(lim))
                new, e_next = (recs, e_next, lim), lim
            if inflight is None and new is None:
                break
            if inflight is not None:
                recs = stack_records(inflight[0])  # waits for that call only
                now = time.perf_counter()
                secs, t_mark = now - t_mark, now
                train_s += secs
                emit(recs, secs)
                stopped = stopped or len(recs) < inflight[2] - inflight[1]
                if new is None:
                    save(carry)  # `carry` is that call's result: nothing was dispatched after it
                if recs:  # size the next call to ~target_chunk_s
                    k = int(min(max(1, target_chunk_s / max(secs / len(recs), 1e-7)), cap))
            inflight = new
    else:
        # host-driven epochs: one jitted call per step (`fuse: steps`) or per window of streamed batches
        if streamed:
            from nnctl.data.stream import windows
            from nnctl.train import stream_evaluate, stream_fns
            fns = stream_fns(loop)

            def calls(st, sums, epoch, idx, mask):
                put_train = place.put_windows if place else put  # data-parallel: each device gets its slice
                for i0, xs, ys, ms in windows(data.x_train, data.y_train, np.asarray(idx), np.asarray(mask),
                                              b.window, put_train, b.prefetch):
                    st, sums = fns["window"](st, sums, xs, ys, ms, epoch, jnp.int32(i0))
                    yield st, sums, i0 + len(xs) >= loop.n_batches

            def end(carry, st, sums, epoch):
                val_sums = (stream_evaluate(loop, fns, st, data.x_val, data.y_val, put, b.window, b.prefetch)
                            if loop.n_val else None)
                return fns["end"](carry, st, sums, val_sums, epoch)
        else:
            fns = steps_mode_fns(loop)

            def calls(st, sums, epoch, idx, mask):
                for i in range(loop.n_batches):
                    st, sums = fns["step"](st, sums, train_data, idx, mask, epoch, i)
                    yield st, sums, i == loop.n_batches - 1

            def end(carry, st, sums, epoch):
                return fns["end"](carry, st, sums, val_data, epoch)

        st = carry.pop("state")
        t_first = None
        while int(carry["epoch"]) < b.epochs and not bool(carry["stopped"]) and stop.signum is None:
            t = time.perf_counter()
            epoch = carry["epoch"]
            # a host copy of the epoch-start state: what a signal in the middle of this epoch saves
            snapshot = jax.tree.map(lambda a: np.array(a, copy=True), {**carry, "state": st})
            idx, mask = fns["perm"](epoch)
            sums = fns["sums0"]()
            partial = False
            # the first call of a session compiles (and runs one step or window): that time is compile time
            first = not records or start is not None and len(records) == len(start.records)
            gen = calls(st, sums, epoch, idx, mask)
            for st, sums, last in gen:
                if first:
                    jax.block_until_ready(sums)
                    compile_s += time.perf_counter() - t
                    t_first, first = time.perf_counter(), False
                if stop.signum is not None and not last:
                    partial = True
                    break
            gen.close()
            if partial:
                carry, st = snapshot, None  # the partial epoch is dropped
                break
            t_end = time.perf_counter()
            carry, rec = end(carry, st, sums, epoch)
            if t_first is not None:  # the session's first epoch end: compiling evaluation and end-of-epoch
                jax.block_until_ready(rec)
                compile_s += time.perf_counter() - t_end
                t_first += time.perf_counter() - t_end
            st = carry.pop("state")
            rec = {**rec, "active": jnp.bool_(True), "epoch": epoch}
            recs = stack_records(jax.tree.map(lambda a: jnp.asarray(a)[None], rec))
            secs = time.perf_counter() - t
            train_s += time.perf_counter() - (t_first if t_first is not None else t)
            t_first = None
            emit(recs, secs)
            save({**carry, "state": st})
        if st is not None:
            carry["state"] = st

    reason = REASONS[int(carry["reason"])]
    if stop.signum is not None and not bool(carry["stopped"]):
        status, reason = "interrupted", "interrupted"
        save(carry, force=True)
    elif reason in ("nonfinite",):
        status = "failed"
    elif reason:
        status = "stopped_early"
    else:
        status = "finished"
    weights = loop.final_weights(carry)
    return FitResult(carry, records, compile_s, train_s, status, reason, weights, saved["path"])


@dataclass
class Resume:
    """Where a resumed run starts: the restored carry, the records before it and the time spent so far."""

    carry: Any
    records: list
    compile_s: float
    train_s: float
    epoch: int


def carry_template(b: Built) -> Any:
    """Shapes and dtypes of the loop carry of a spec, without running anything."""
    import jax

    key = jax.random.fold_in(jax.random.key(b.loaded.spec.seed), 0)
    return jax.eval_shape(lambda k: b.loop.init_carry(b.obj.init(k, tuple(b.data.input_shape))), key)


# -------------------------------------------------------------------------------------------- train

@dataclass
class TrainResult:
    run_dir: Path
    summary: dict
    records: list = field(default_factory=list)


def train_run(spec_path: str, out: str | None = None, overrides: tuple[str, ...] = (), seed: int | None = None,
              on_start: Callable[[Built, Path], None] = lambda b, p: None,
              on_epoch: Callable[[dict], None] = lambda r: None, runs_root: str = "runs") -> TrainResult:
    from nnctl.data.prepare import prepare
    from nnctl.spec import load_spec

    ov = tuple(overrides) + ((f"seed={seed}",) if seed is not None else ())
    loaded = load_spec(spec_path, ov)
    spec = loaded.spec
    data = prepare(spec, loaded.analysis, loaded.base_dir)
    b = build(loaded, data)
    name = spec.name or Path(spec_path).stem
    from nnctl.parallel import is_primary, scratch_run_dir
    run = rundir.new_run_dir(out, name, runs_root) if is_primary() else scratch_run_dir()  # process 0 writes
    rundir.write_spec(run, resolved_paths(spec, loaded.base_dir))
    rundir.write_json(run / "origin.json", {"spec_file": str(Path(spec_path).resolve()),
                                            "spec_dir": str(Path(loaded.base_dir).resolve()), "overrides": list(ov)})
    return _session(b, run, None, on_start, on_epoch)


def resume_run(run_dir: str | Path, on_start: Callable[[Built, Path], None] = lambda b, p: None,
               on_epoch: Callable[[dict], None] = lambda r: None) -> TrainResult:
    """Continue a run from its newest checkpoint, in the same directory, under its saved spec."""
    from nnctl import checkpoint
    from nnctl.data.prepare import prepare
    from nnctl.spec import load_text

    run = rundir.check_run_dir(run_dir)
    if (run / rundir.SUMMARY).exists():
        status = rundir.read_json(run / rundir.SUMMARY).get("status")
        if status in ("finished", "stopped_early", "failed"):
            raise RunDirError(f"{run} has already ended (status: {status}); there is nothing to resume. "
                              f"Train again with a new --out to continue from its weights.")
    checkpoint.clean_temporaries(run)
    base = _data_base(run)
    spec_file = run / rundir.SPEC
    try:
        text = spec_file.read_text(encoding="utf-8")
    except OSError as e:
        raise RunDirError(f"cannot read {spec_file}: {e}") from None
    loaded = load_text(text, str(spec_file), (), base)
    data = prepare(loaded.spec, loaded.analysis, base)
    b = build(loaded, data)
    carry, meta = checkpoint.load_latest(run, carry_template(b), loaded.spec)
    epoch = int(meta["epoch"])
    start = Resume(carry, [], float(meta.get("compile_seconds", 0.0)), float(meta.get("train_seconds", 0.0)), epoch)
    return _session(b, run, start, on_start, on_epoch)


def _session(b: Built, run: Path, start: Resume | None, on_start, on_epoch) -> TrainResult:
    """One training session in a run directory: logs, checkpoints, signals, final files."""
    import os
    import socket

    from nnctl import checkpoint
    from nnctl.logs import RunLogs

    spec, data = b.loaded.spec, b.data
    t = spec.train
    ck = getattr(t, "checkpoint", None)
    ckpt = checkpoint.Checkpointer(run, spec, ck.every_epochs if ck else None, ck.keep if ck else 3)
    info = rundir.read_json(run / rundir.RUN) if start is not None and (run / rundir.RUN).exists() else {}
    info.setdefault("started_at", time.strftime("%Y-%m-%dT%H:%M:%S"))
    info.update(pid=os.getpid(), host=socket.gethostname())
    if start is not None:
        info["resumed"] = info.get("resumed", []) + [{"at": time.strftime("%Y-%m-%dT%H:%M:%S"), "epoch": start.epoch}]
        (run / rundir.SUMMARY).unlink(missing_ok=True)
    rundir.write_json(run / rundir.RUN, info)
    logs = RunLogs(run, tuple(getattr(t, "log", None) or ()), start.epoch if start is not None else None)
    ckpt.before_save = logs.flush  # a checkpoint's epochs are in the logs before the checkpoint exists
    if start is not None:
        start.records = [dict(r) for r in logs.previous]
        b.start_epoch = start.epoch  # read by the progress display
    on_start(b, run)

    def record(r):
        logs.write(r)
        on_epoch(r)

    stop = StopFlag()
    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        res = fit(b, record, stop, start=start, ckpt=ckpt)
    except Exception as e:
        rundir.write_json(run / rundir.SUMMARY, {"name": spec.name or run.name, "run_dir": str(run),
                                                 "status": "failed", "error": f"{type(e).__name__}: {e}",
                                                 "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
        for sig, h in old.items():
            signal.signal(sig, h)
        raise
    finally:
        logs.close()

    # the handlers stay until the final files are written: a signal now is noted, not fatal
    try:
        carry = res.carry
        rundir.write_state(run, res.weights, carry["state"]["opt_state"],
                           {"x": data.scaler.to_dict(), "y": data.target_scaler.to_dict(),
                            "impute": data.imputer.to_dict(),
                            "csv": data.layout.to_dict() if data.layout else None},
                           {"seed": spec.seed, "epoch": int(carry["epoch"]), "step": int(carry["state"]["step"])})
        summary = summarize(b, res, run)
        rundir.write_json(run / rundir.SUMMARY, summary)
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
    if stop.signum is not None and res.status == "interrupted":  # a signal after the last epoch changes nothing
        from nnctl.errors import TrainingInterrupted
        code = 130 if stop.signum == signal.SIGINT else 143
        name = signal.Signals(stop.signum).name
        where = f"checkpoint {res.checkpoint}" if res.checkpoint else "the run so far"
        raise TrainingInterrupted(f"{name}: stopped after epoch {int(carry['epoch'])}; {where} is saved. "
                                  f"Resume with: nnctl train --resume {run}", code)
    return TrainResult(run, summary, res.records)


def resolved_paths(spec, base_dir):
    """The spec with data paths made absolute, so the run directory's copy finds the data from anywhere."""
    from nnctl.data.peek import resolve
    if not spec.data.path:
        return spec
    path = str(resolve(spec.data.path, Path(base_dir)).resolve())
    return spec.model_copy(update={"data": spec.data.model_copy(update={"path": path})})


def summarize(b: Built, res: FitResult, run: Path) -> dict:
    carry, recs = res.carry, res.records
    split, metric = b.loop.monitor
    key = f"{split}/{metric}"
    best_epoch = int(carry["es"].best_epoch) + 1 if int(carry["es"].best_epoch) >= 0 else None
    best_value = float(carry["es"].best) if best_epoch else None
    if best_epoch is None and recs:  # no early stopping: best by the default monitor
        vals = [r.get(key, r["train/loss"]) for r in recs]
        mode_max = metric in ("accuracy", "precision", "recall", "f1", "r2")
        if np.all(np.isnan(np.asarray(vals, dtype=float))):
            i = len(vals) - 1
        else:
            i = int(np.nanargmax(vals) if mode_max else np.nanargmin(vals))
        best_epoch, best_value = recs[i]["epoch"], float(vals[i])
    steps = int(carry["state"]["step"])
    bad = [int(v) for v in np.asarray(carry["bad"])]
    t = b.loaded.spec.train
    s = {
        "name": b.loaded.spec.name or run.name, "run_dir": str(run), "status": res.status,
        "stop_reason": res.reason or None, "epochs_run": len(recs), "epochs_planned": b.epochs, "steps": steps,
        "monitor": key, "best_epoch": best_epoch, "best_value": best_value,
        "restored_best": bool(b.loop.restore_best and best_epoch is not None and res.reason != "nonfinite"),
        "compile_seconds": round(res.compile_s, 4), "train_seconds": round(res.train_s, 4),
        "steps_per_second": round(steps / res.train_s, 1) if res.train_s > 0 else None,
        "parameters": b.param_count, "fuse": b.fuse, "data_placement": b.placement, "data_sizes": b.data.sizes, "task": b.data.task,
        "final": {k: v for k, v in (recs[-1] if recs else {}).items()
                  if k.startswith(("train/", "val/"))},
        "at_best_epoch": {k: v for k, v in next((r for r in recs if r["epoch"] == best_epoch), {}).items()
                          if k.startswith(("train/", "val/"))},
        "seed": b.loaded.spec.seed,
        "logs": ["metrics.jsonl", *(getattr(t, "log", None) or ())],
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if res.checkpoint:
        s["checkpoint"] = str(res.checkpoint)
    if getattr(b, "start_epoch", None) is not None:
        s["resumed_from_epoch"] = b.start_epoch
    if getattr(b.obj, "transfer_report", None):  # model.init_from: what was copied, skipped, new
        s["init_from"] = b.obj.transfer_report
    if res.reason == "nonfinite":
        what = {1: "loss", 2: "gradients"}.get(bad[1], "loss")
        s["nonfinite"] = {"epoch": bad[2] + 1, "step": bad[0], "quantity": what}
        s["message"] = (f"non-finite {what} at epoch {bad[2] + 1}, step {bad[0]}: training stopped and the "
                        f"weights of the last good epoch were kept (lower the learning rate or clip gradients)")
    return s


# ------------------------------------------------------------------------------------- eval / predict

@dataclass
class Restored:
    loaded: Any
    built: Built
    weights: dict
    scalers: tuple


def restore(run_dir: str | Path) -> Restored:
    """Rebuild the model from a run's saved spec and put its weights into it."""
    from nnctl.data.prepare import Imputer, Scaler, prepare
    from nnctl.model import abstract_variables
    from nnctl.spec import load_spec

    run = rundir.check_run_dir(run_dir)
    loaded = load_spec(run / rundir.SPEC)
    saved = rundir.read_msgpack(run / rundir.WEIGHTS)
    sc = rundir.read_json(run / rundir.SCALERS)
    try:
        scalers = (Scaler.from_dict(sc["x"]), Scaler.from_dict(sc["y"]), Imputer.from_dict(sc.get("impute")))
    except (KeyError, TypeError) as e:
        raise RunDirError(f"{run / rundir.SCALERS} is malformed ({e})") from None
    base = _data_base(run)
    loaded.base_dir = base
    data = prepare(loaded.spec, loaded.analysis, base, *scalers)
    b = build(loaded, data)
    abstract = abstract_variables(b.obj.net, data.input_shape)
    template = {"params": abstract["params"], "model_state": {k: v for k, v in abstract.items() if k != "params"}}
    weights = rundir.restore_into(template, saved, str(run / rundir.WEIGHTS))
    return Restored(loaded, b, weights, scalers)


def _data_base(run: Path) -> Path:
    meta = run / "origin.json"
    if meta.exists():
        return Path(rundir.read_json(meta).get("spec_dir", "."))
    return Path(".")


def evaluate_run(run_dir: str | Path, split: str = "test") -> dict:
    import jax
    import jax.numpy as jnp

    r = restore(run_dir)
    data, loop = r.built.data, r.built.loop
    x, y = data.split(split)
    if x is None:
        have = [s for s in ("train", "val", "test") if data.split(s)[0] is not None]
        raise DataError(f"this run has no {split} split (set data.{'test' if split == 'test' else 'validation'}_split "
                        f"in the spec); available: {', '.join(have)}")
    state = {"params": r.weights["params"], "model_state": r.weights["model_state"]}
    if r.built.placement == "stream":  # too big for the device at once: the same batches, streamed
        from nnctl.train import stream_evaluate, stream_fns
        sums = stream_evaluate(loop, stream_fns(loop), state, x, y, jax.device_put, r.built.window, r.built.prefetch)
    else:
        sums = jax.jit(lambda s, d: loop.evaluate(s, d, len(x)))(state, (jnp.asarray(x), jnp.asarray(y)))
    out = {k: float(v) for k, v in r.built.obj.finalize(sums).items()}
    result = {"run_dir": str(run_dir), "split": split, "examples": int(len(x)), "metrics": out, "task": data.task}
    if "confusion" in sums:
        result["confusion_matrix"] = np.asarray(sums["confusion"]).astype(int).tolist()
        result["class_names"] = data.class_names
    return result


def predict_run(run_dir: str | Path, input_path: str, output: str | None = None) -> dict:
    r = restore(run_dir)
    data = r.built.data
    x = read_inputs(input_path, r.loaded, data)
    x = r.scalers[0].apply(x)
    out = batched_predict(r.built.obj.predict, r.weights, x, r.built.loop.eval_batch)
    result: dict[str, Any] = {"run_dir": str(run_dir), "input": input_path, "examples": len(x), "task": data.task}
    if data.task == "classification":
        result["classes"] = out.argmax(-1).tolist()
        result["probabilities"] = out.tolist()
    elif data.task == "binary":
        result["classes"] = (out > 0.5).astype(int).reshape(len(out), -1).tolist()
        result["probabilities"] = out.tolist()
    else:
        result["values"] = r.scalers[1].invert(out).tolist() if data.task == "regression" else out.tolist()
    if output:
        write_predictions(Path(output), result, data.class_names)
    return result


def batched_predict(predict, weights: dict, x: np.ndarray, batch: int) -> np.ndarray:
    """`predict` over `x` in fixed-size batches (the last one padded): one compiled program for any number of
    inputs, and only one batch on the device at a time."""
    import jax

    fn = jax.jit(predict)
    b = max(1, min(batch, len(x)))
    outs = []
    for i in range(0, len(x), b):
        xb = x[i:i + b]
        n = len(xb)
        if n < b:
            xb = np.concatenate([xb, np.repeat(xb[-1:], b - n, axis=0)])
        outs.append(np.asarray(fn(weights["params"], weights["model_state"], xb))[:n])
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


def read_inputs(path: str, loaded, data) -> np.ndarray:
    """The examples of an input file (csv or npz) as the model's inputs: csv columns by the names the run was
    trained on (categorical ones one-hot encoded the same way), missing values filled as in training."""
    from nnctl.data.prepare import check_finite
    from nnctl.data.sources import CsvLayout, csv_delimiter, csv_features, csv_header, csv_numeric, csv_rows

    p = Path(path)
    if not p.exists():
        raise DataError(f"no such input file: {p}")
    d = loaded.spec.data
    missing = "mean" if data.imputer.fill is not None else "error"
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            name = d.x if isinstance(d.x, str) and d.x in z.files else ("x" if "x" in z.files else z.files[0])
            x = np.asarray(z[name])
        if x.dtype.kind not in "biuf":
            raise DataError(f"{p}: array '{name}' has dtype {x.dtype}; expected numbers")
        x = x.astype(np.float32)
    else:
        delimiter = csv_delimiter(p, d.delimiter if d.source == "csv" else None)
        header = csv_header(p, delimiter)
        layout = data.layout or CsvLayout(tuple(header), {})
        absent = [c for c in layout.features if c not in header]
        if absent:
            raise DataError(f"{p}: missing feature columns {absent} (the run was trained on "
                            f"{', '.join(layout.features)})")
        a = None if layout.categories else csv_numeric(p, delimiter, [header.index(c) for c in layout.features])
        if a is not None:
            x = a.astype(np.float32)
        else:
            rows = csv_rows(p, header, delimiter)
            if not rows:
                raise DataError(f"{p}: no data rows after the header")
            x = csv_features(p, header, rows, layout, missing, "predictions need every value; a run trained "
                             "with data.missing: mean fills missing ones and unknown categories")
    x = data.imputer.apply(x)
    check_finite(x, str(p))
    n = math.prod(data.input_shape)
    if math.prod(x.shape[1:]) != n:
        raise DataError(f"{p}: examples have {math.prod(x.shape[1:])} values, the model expects "
                        f"{list(data.input_shape)}")
    return x.reshape((len(x), *data.input_shape))


def write_predictions(path: Path, result: dict, class_names) -> None:
    if path.suffix == ".npz":
        arrays = {k: np.asarray(v) for k, v in result.items() if k in ("classes", "probabilities", "values")}
        with open(path, "wb") as f:
            np.savez(f, **arrays)
        return
    rows = []
    if "values" in result:
        vals = np.asarray(result["values"]).reshape(len(result["values"]), -1)
        header = [f"y{i}" for i in range(vals.shape[1])] if vals.shape[1] > 1 else ["prediction"]
        rows = [header] + [[f"{v:.6g}" for v in row] for row in vals]
    elif np.ndim(result["classes"]) == 2 and np.shape(result["classes"])[1] > 1 and np.ndim(result["probabilities"]) == 3:
        # per-step classes (a tagger): one row per example, one class column per step (full probabilities: .npz)
        cls = np.asarray(result["classes"])
        names = class_names or [str(i) for i in range(np.shape(result["probabilities"])[-1])]
        rows = [[f"class_{t}" for t in range(cls.shape[1])]] + [
            [names[c] if c < len(names) else str(c) for c in row] for row in cls]
    else:
        probs = np.asarray(result["probabilities"]).reshape(len(result["probabilities"]), -1)
        cls = np.asarray(result["classes"]).reshape(len(probs), -1)[:, 0]
        names = class_names or [str(i) for i in range(max(probs.shape[1], 2))]
        header = ["class"] + [f"p_{n}" for n in (names if probs.shape[1] > 1 else [names[-1]])]
        rows = [header] + [[names[c] if c < len(names) else str(c)] + [f"{v:.6g}" for v in p] for c, p in zip(cls, probs)]
    path.write_text("\n".join(",".join(r) for r in rows) + "\n")

