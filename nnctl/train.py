"""The training loop as pure functions.

* `Supervised` is the objective of plain (and autoencoder) training: `init`, `train_step`, `eval_step`,
  `finalize`. Other setups (GAN, VAE) provide the same five functions, so the loop below serves them all.
* `Loop.train_epoch` runs a whole epoch (on-device permutation, padded last batch with a mask, every step)
  inside one `lax.scan`; `Loop.chunk` runs several epochs, the validation pass and the early-stopping
  test in one compiled call. Nothing syncs with the host per step; the host reads results once per call.
* `fuse: steps` (chosen automatically for convolutional models on CPU, where XLA runs conv backward
  passes inside scan much slower) calls one jitted step per batch, with the same step function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnctl import metrics as M
from nnctl.early_stopping import EarlyStopping, reason_code
from nnctl.losses import LOSSES, Head


RECORD_BLOCK = 64  # epochs whose records are gathered in a small buffer before joining the call's buffer


def tree_where(cond, a, b):
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)


# ------------------------------------------------------------------------------------------- objective

@dataclass(frozen=True, eq=False)
class Supervised:
    """Loss of a network's output against targets (class indices, 0/1 labels, values or the input)."""

    net: Any
    head: Head
    loss_opts: Any
    metric_names: tuple
    num_classes: int
    tx: optax.GradientTransformation
    trainable: Any  # tree of bools (False = frozen), same structure as params
    regularizers: tuple = ()  # ((layer path, l1, l2), ...)
    clip: Any = None
    lr: Any = 0.0  # float or schedule fn, for logging
    compute_dtype: Any = None  # e.g. jnp.bfloat16: forward/backward in it; weights and optimizer stay float32
    target_scale: Any = None  # regression with normalize_target: metrics are reported in the data's units
    class_weight: tuple | None = None  # train.class_weight: one factor per class on the training loss

    def train_per_example(self, logits, y):
        """The training loss per example: `per_example`, times its class's weight (like Keras'
        `class_weight`, the objective stays a mean over the batch; evaluation losses are unweighted)."""
        per = self.per_example(logits, y)
        if self.class_weight is None:
            return per
        w = jnp.asarray(self.class_weight, jnp.float32)
        if jnp.issubdtype(y.dtype, jnp.integer):
            return per * w[y.reshape(per.shape[0])]
        t = y.reshape(per.shape[0]).astype(jnp.float32)  # binary 0/1 labels, one output
        return per * (t * w[1] + (1.0 - t) * w[0])

    # --- variables --------------------------------------------------------------------------------
    def init(self, key, input_shape) -> dict:
        x = jnp.zeros((1, *input_shape), jnp.float32)
        variables = self.net.init({"params": key, "dropout": key}, x, train=False)
        params = variables["params"]
        model_state = {k: v for k, v in variables.items() if k != "params"}
        return {"params": params, "model_state": model_state, "opt_state": self.tx.init(params),
                "step": jnp.int32(0)}

    def forward(self, params, model_state, x, train: bool, key=None):
        if self.compute_dtype is not None:
            return self._forward_cast(params, model_state, x, train, key)
        variables = {"params": params, **model_state}
        if train and model_state:
            out, new_state = self.net.apply(variables, x, train=True, head=False, rngs={"dropout": key},
                                            mutable=list(model_state))
            return out, dict(new_state)
        out = self.net.apply(variables, x, train=train, head=False, rngs={"dropout": key} if train else {})
        return out, model_state

    def _forward_cast(self, params, model_state, x, train, key):
        """Mixed precision: cast float32 weights and inputs down (gradients flow back to float32 through the
        cast), run the network, return float32 outputs; model state (e.g. batch statistics) stays float32."""
        dt = self.compute_dtype
        down = lambda t: jax.tree.map(lambda a: a.astype(dt) if jnp.issubdtype(a.dtype, jnp.floating) else a, t)
        out, new_state = dataclass_replace(self, compute_dtype=None).forward(down(params), model_state, down(x),
                                                                             train, key)
        new_state = jax.tree.map(lambda n, o: n.astype(o.dtype), new_state, model_state)
        return out.astype(jnp.float32), new_state

    def predict(self, params, model_state, x):
        out, _ = self.forward(params, model_state, x, False)
        return self.head.fn(out)

    # --- losses -----------------------------------------------------------------------------------
    def penalty(self, params):
        total = jnp.float32(0)
        for path, l1, l2 in self.regularizers:
            node = params
            for k in path.split("/"):
                node = node[k]
            w = node["kernel"]
            total = total + l1 * jnp.abs(w).sum() + l2 * (w * w).sum()
        return total

    def per_example(self, logits, y):
        return LOSSES.build(self.loss_opts, logits, y, self.head)

    # --- accumulators -------------------------------------------------------------------------------
    def zero_sums(self, out_shape, y_dtype, train: bool) -> dict:
        out = jax.ShapeDtypeStruct((1, *out_shape), jnp.float32)
        y = jax.ShapeDtypeStruct((1,) if jnp.issubdtype(y_dtype, jnp.integer) else (1, *out_shape), y_dtype)
        shapes = jax.eval_shape(lambda o, t: M.batch_sums(M.needs_of(self.metric_names), o, t,
                                                          jnp.ones(1), self.num_classes), out, y)
        sums = {"n": jnp.float32(0), "loss": jnp.float32(0), **jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)}
        if train:
            sums.update(grad_norm=jnp.float32(0), clipped=jnp.float32(0), steps=jnp.float32(0),
                        skipped=jnp.float32(0), bad_step=jnp.int32(-1), bad_what=jnp.int32(0))
        return sums

    def _add_batch(self, sums, logits, y, mask, loss_sum, weight):
        m = mask * weight
        batch = M.batch_sums(M.needs_of(self.metric_names), self.head.fn(logits), y, m, self.num_classes)
        new = dict(sums)
        for k, v in batch.items():
            new[k] = sums[k] + v
        new["n"] = sums["n"] + m.sum()
        new["loss"] = sums["loss"] + loss_sum * weight
        return new

    # --- steps ------------------------------------------------------------------------------------
    def train_step(self, state, sums, x, y, mask, key, max_steps, halt_on_nonfinite: bool):
        params, ms = state["params"], state["model_state"]
        n = jnp.maximum(mask.sum(), 1.0)

        def objective(p):
            logits, new_ms = self.forward(p, ms, x, True, key)
            per = self.train_per_example(logits, y)
            data_loss = (per * mask).sum() / n
            return data_loss + self.penalty(p), (new_ms, logits)

        (loss, (new_ms, logits)), grads = jax.value_and_grad(objective, has_aux=True)(params)
        grads = jax.tree.map(lambda g, t: g if t else jnp.zeros_like(g), grads, self.trainable)
        gnorm = optax.tree.norm(grads)
        updates, new_opt = self.tx.update(grads, state["opt_state"], params, value=loss)
        new_params = optax.apply_updates(params, updates)

        finite_loss, finite_grad = jnp.isfinite(loss), jnp.isfinite(gnorm)
        active = (state["step"] < max_steps) & (sums["bad_step"] < 0 if halt_on_nonfinite else True)
        ok = active & finite_loss & finite_grad
        new_state = {"params": new_params, "model_state": new_ms, "opt_state": new_opt, "step": state["step"] + 1}
        state = tree_where(ok, new_state, state)

        from nnctl.optim import clipped_flag
        sums = self._add_batch(sums, logits, y, mask, loss * mask.sum(), ok.astype(jnp.float32))
        bad = active & ~(finite_loss & finite_grad)
        sums.update(
            grad_norm=sums["grad_norm"] + jnp.where(ok, gnorm, 0.0),
            clipped=sums["clipped"] + jnp.where(ok, clipped_flag(self.clip, grads), 0.0),
            steps=sums["steps"] + ok,
            skipped=sums["skipped"] + bad,
            bad_step=jnp.where(bad & (sums["bad_step"] < 0), state["step"], sums["bad_step"]),
            bad_what=jnp.where(bad & (sums["bad_step"] < 0), jnp.where(finite_loss, 2, 1), sums["bad_what"]),
        )
        return state, sums

    def eval_step(self, state, sums, x, y, mask):
        logits, _ = self.forward(state["params"], state["model_state"], x, False)
        per = self.per_example(logits, y)
        loss_sum = (per * mask).sum() + self.penalty(state["params"]) * mask.sum()
        return self._add_batch(sums, logits, y, mask, loss_sum, 1.0)

    def finalize(self, sums) -> dict:
        out = {"loss": sums["loss"] / jnp.maximum(sums["n"], 1.0)}
        if self.target_scale is not None and "sse" in sums:
            # targets were scaled by 1/scale (and shifted) for training: error sums back in the data's units;
            # R^2 is unchanged, the loss stays the training objective
            k = jnp.asarray(self.target_scale, jnp.float32).reshape(sums["sse"].shape)
            sums = {**sums, "sse": sums["sse"] * k * k, "sae": sums["sae"] * k, "sy": sums["sy"] * k,
                    "syy": sums["syy"] * k * k}
        out.update(M.compute(self.metric_names, sums))
        return out


# ------------------------------------------------------------------------------------------------ loop

@dataclass(frozen=True, eq=False)
class Loop:
    """Static facts the compiled loop closes over."""

    obj: Any
    n_train: int
    batch_size: int
    n_val: int
    eval_batch: int
    shuffle: bool
    max_steps: int
    monitor: tuple  # (split, metric)
    es: EarlyStopping
    restore_best: bool
    halt_on_nonfinite: bool
    out_shape: tuple
    y_dtype: Any
    seed: int
    track_best: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def n_batches(self) -> int:
        return math.ceil(self.n_train / self.batch_size)

    def epoch_key(self, epoch):
        return jax.random.fold_in(jax.random.fold_in(jax.random.key(self.seed), 1), epoch)

    def batch_index(self, key):
        """(n_batches, batch) indices of one epoch and the mask of real (unpadded) examples."""
        n, b, nb = self.n_train, self.batch_size, self.n_batches
        perm = jax.random.permutation(jax.random.fold_in(key, 0), n) if self.shuffle else jnp.arange(n)
        pad = nb * b - n
        idx = jnp.concatenate([perm, perm[:pad]]) if pad else perm
        mask = (jnp.arange(nb * b) < n).astype(jnp.float32)
        return idx.reshape(nb, b), mask.reshape(nb, b)

    def place_batch(self, batch):
        """Data-parallel: shard the batch over the device mesh (a no-op on one device)."""
        placement = self.extra.get("placement")
        return placement.constrain(batch) if placement is not None else batch

    # --- one epoch ------------------------------------------------------------------------------------
    def train_sums0(self):
        return self.obj.zero_sums(self.out_shape, self.y_dtype, True)

    def train_epoch(self, state, data, epoch):
        key = self.epoch_key(epoch)
        idx, mask = self.batch_index(key)
        x, y = data

        def body(carry, inp):
            st, sums = carry
            i, m, b = inp
            xb, yb, m = self.place_batch((x[i], y[i], m))
            return self.obj.train_step(st, sums, xb, yb, m, jax.random.fold_in(key, b + 1), self.max_steps,
                                       self.halt_on_nonfinite), None

        (state, sums), _ = jax.lax.scan(body, (state, self.train_sums0()), (idx, mask, jnp.arange(self.n_batches)))
        return state, sums

    def evaluate(self, state, data, n):
        """Loss and metric sums over a whole split, in fixed-size masked batches."""
        x, y = data
        b = min(self.eval_batch, n)
        nb = math.ceil(n / b)
        idx = jnp.arange(nb * b) % n
        mask = (jnp.arange(nb * b) < n).astype(jnp.float32)

        def body(sums, inp):
            i, m = inp
            return self.obj.eval_step(state, sums, x[i], y[i], m), None

        sums, _ = jax.lax.scan(body, self.obj.zero_sums(self.out_shape, self.y_dtype, False),
                               (idx.reshape(nb, b), mask.reshape(nb, b)))
        return sums

    # --- end of epoch: metrics, early stopping, best/good weights ---------------------------------------
    def end_epoch(self, carry, sums, val_sums, epoch):
        state = carry["state"]
        record = {f"train/{k}": v for k, v in self.obj.finalize(sums).items()}
        if val_sums is not None:
            record.update({f"val/{k}": v for k, v in self.obj.finalize(val_sums).items()})
        steps = jnp.maximum(sums["steps"], 1.0)
        record["grad_norm"] = sums["grad_norm"] / steps
        record["clip_fraction"] = sums["clipped"] / steps
        record["skipped_steps"] = sums["skipped"]
        record["lr"] = self.learning_rate(state)
        record["step"] = state["step"]
        split, metric = self.monitor
        value = record.get(f"{split}/{metric}", record["train/loss"])
        es, improved = carry["es"].update(epoch, value)
        halted = (sums["bad_step"] >= 0) & self.halt_on_nonfinite
        epoch_ok = sums["bad_step"] < 0
        new = dict(carry)
        new["es"] = es
        if self.track_best:
            new["best"] = tree_where(improved, {"params": state["params"], "model_state": state["model_state"]},
                                     carry["best"])
        new["good"] = tree_where(epoch_ok, {"params": state["params"], "model_state": state["model_state"]},
                                 carry["good"])
        reason = jnp.where(halted, reason_code("nonfinite"), es.reason)
        reason = jnp.where((reason == 0) & (state["step"] >= self.max_steps), reason_code("steps"), reason)
        new["stopped"] = carry["stopped"] | (reason > 0)
        new["reason"] = jnp.where(carry["stopped"], carry["reason"], reason)
        new["bad"] = jnp.where(carry["bad"][0] >= 0, carry["bad"],
                               jnp.stack([sums["bad_step"], sums["bad_what"], jnp.int32(epoch)]))
        new["epoch"] = epoch + 1
        record["monitor"] = value
        record["improved"] = improved
        return new, record

    def learning_rate(self, state):
        lr = self.obj.lr
        value = lr(state["step"]) if callable(lr) else jnp.float32(lr)
        scale = self.extra.get("plateau_scale")
        return value * scale(state["opt_state"]) if scale else value

    def init_carry(self, state) -> dict:
        snap = {"params": state["params"], "model_state": state["model_state"]}
        return {"state": state, "es": self.es, "best": snap, "good": snap, "stopped": jnp.bool_(False),
                "reason": jnp.int32(0), "bad": jnp.array([-1, 0, -1], jnp.int32), "epoch": jnp.int32(0)}

    # --- several epochs in one call -------------------------------------------------------------------------
    def one_epoch(self, carry, train_data, val_data):
        epoch = carry["epoch"]
        state, sums = self.train_epoch(carry["state"], train_data, epoch)
        val_sums = self.evaluate(state, val_data, self.n_val) if self.n_val else None
        return self.end_epoch({**carry, "state": state}, sums, val_sums, epoch)

    def chunk(self, carry, train_data, val_data, limit, k: int):
        """Epochs until epoch `limit`, a stop, or `k` of them, in one compiled call.

        `limit` is a traced value, so one compiled program serves every chunk size up to the static
        capacity `k` (the records buffer). Records beyond the epochs run are marked inactive.

        Two nested `lax.while_loop`s: the inner one runs up to `RECORD_BLOCK` epochs and writes their
        records into a small buffer, the outer one copies each block into the `k`-long buffer. XLA:CPU
        rewrites a loop-carried buffer on every iteration that writes into it, so writing each epoch's record
        straight into the `k`-long buffer cost more than the epoch itself for tiny models (XOR: ~9 us vs ~5 us
        per epoch at k = 4096, measured with bench/).
        """
        template = jax.eval_shape(lambda c: self.one_epoch(c, train_data, val_data)[1], carry)
        block = min(RECORD_BLOCK, k)
        nblocks = -(-k // block)
        buf0 = jax.tree.map(lambda s: jnp.zeros((nblocks, block, *s.shape), s.dtype), template)
        small0 = jax.tree.map(lambda s: jnp.zeros((block, *s.shape), s.dtype), template)
        epoch0 = carry["epoch"]

        def go(c, n):
            return ~c["stopped"] & (c["epoch"] < limit) & (n < k)

        def inner_cond(s):
            j, n, c, _ = s
            return (j < block) & go(c, n)

        def inner_body(s):
            j, n, c, small = s
            c, rec = self.one_epoch(c, train_data, val_data)
            small = jax.tree.map(lambda b, r: jax.lax.dynamic_update_index_in_dim(b, r, j, 0), small, rec)
            return j + 1, n + 1, c, small

        def outer_body(s):
            i, n, c, buf = s
            _, n, c, small = jax.lax.while_loop(inner_cond, inner_body, (jnp.int32(0), n, c, small0))
            buf = jax.tree.map(lambda b, r: jax.lax.dynamic_update_index_in_dim(b, r, i, 0), buf, small)
            return i + 1, n, c, buf

        _, n, carry, buf = jax.lax.while_loop(lambda s: go(s[2], s[1]), outer_body,
                                              (jnp.int32(0), jnp.int32(0), carry, buf0))
        buf = jax.tree.map(lambda b: b.reshape(nblocks * block, *b.shape[2:])[:k], buf)
        idx = jnp.arange(k, dtype=jnp.int32)
        return carry, {**buf, "active": idx < n, "epoch": epoch0 + idx}

    def start(self, input_shape: tuple):
        """Initial loop carry (variables, optimizer state, early-stopping value) from the seed: one program."""
        key = jax.random.fold_in(jax.random.key(self.seed), 0)
        state = self.obj.init(key, input_shape)
        return self.init_carry(state)  # XLA gives every output its own buffer: the carry can be donated

    def final_weights(self, carry):
        """Weights to keep: the last good ones after a non-finite stop, else the best (restore_best)."""
        reason = int(carry["reason"])
        if reason == reason_code("nonfinite"):
            return carry["good"]
        if self.restore_best and int(carry["es"].best_epoch) >= 0:
            return carry["best"]
        return {"params": carry["state"]["params"], "model_state": carry["state"]["model_state"]}


def stack_records(records: dict) -> list[dict]:
    """Host side: the per-epoch records of one chunk (arrays with a leading epoch axis) -> list of dicts."""
    import gc

    host = jax.device_get(records)
    keep = np.nonzero(np.asarray(host.pop("active")))[0]
    enabled = gc.isenabled()
    gc.disable()  # thousands of small dicts per call: no collector pauses while building them
    try:
        cols = {k: np.asarray(v)[keep].tolist() for k, v in host.items()}  # column-wise, not per epoch
        return [dict(zip(cols, row)) for row in zip(*cols.values())]
    finally:
        if enabled:
            gc.enable()


def steps_mode_fns(loop: Loop) -> dict[str, Callable]:
    """Jitted pieces for `fuse: steps`: one step per call (buffers donated), then evaluation and end of epoch."""
    nb, b = loop.n_batches, loop.batch_size

    def perm(epoch):
        idx, mask = loop.batch_index(loop.epoch_key(epoch))
        return idx, mask

    def step(state, sums, data, idx, mask, epoch, i):
        x, y = data
        key = jax.random.fold_in(loop.epoch_key(epoch), i + 1)
        xb, yb, m = loop.place_batch((x[idx[i]], y[idx[i]], mask[i]))
        return loop.obj.train_step(state, sums, xb, yb, m, key, loop.max_steps, loop.halt_on_nonfinite)

    def end(carry, state, sums, val_data, epoch):
        val_sums = loop.evaluate(state, val_data, loop.n_val) if loop.n_val else None
        return loop.end_epoch({**carry, "state": state}, sums, val_sums, epoch)

    del nb, b
    return {"perm": jax.jit(perm), "step": jax.jit(step, donate_argnums=(0, 1)), "end": jax.jit(end),
            "sums0": jax.jit(loop.train_sums0)}


def stream_fns(loop: Loop) -> dict[str, Callable]:
    """Jitted pieces for data streamed from the host (`data_placement: stream`).

    `window` trains on a window of batches already gathered on the host, `(k, batch, ...)`, with the
    randomness of the fused epoch (batch `i0 + j` of epoch `e` uses key `fold_in(epoch_key(e), i0 + j + 1)`),
    so streaming visits the same batches with the same dropout/augmentation draws as a device-resident
    run. `i0` and `epoch` are traced: one program per window length (at most two: full and last)."""

    def perm(epoch):
        return loop.batch_index(loop.epoch_key(epoch))

    def window(state, sums, xs, ys, ms, epoch, i0):
        key = loop.epoch_key(epoch)

        def one(carry, inp):
            st, s = carry
            xb, yb, m, j = inp
            xb, yb, m = loop.place_batch((xb, yb, m))
            return loop.obj.train_step(st, s, xb, yb, m, jax.random.fold_in(key, i0 + j + 1), loop.max_steps,
                                       loop.halt_on_nonfinite), None

        steps = jnp.arange(xs.shape[0], dtype=jnp.int32)
        if xs.shape[0] == 1:  # no loop at all: XLA:CPU runs conv backward passes slower inside one
            return one((state, sums), (xs[0], ys[0], ms[0], steps[0]))[0]
        (state, sums), _ = jax.lax.scan(one, (state, sums), (xs, ys, ms, steps))
        return state, sums

    def eval_window(state, sums, xs, ys, ms):
        def one(s, inp):
            xb, yb, m = inp
            return loop.obj.eval_step(state, s, xb, yb, m), None

        if xs.shape[0] == 1:
            return one(sums, (xs[0], ys[0], ms[0]))[0]
        return jax.lax.scan(one, sums, (xs, ys, ms))[0]

    def end(carry, state, sums, val_sums, epoch):
        return loop.end_epoch({**carry, "state": state}, sums, val_sums, epoch)

    return {"perm": jax.jit(perm), "window": jax.jit(window, donate_argnums=(0, 1)),
            "eval": jax.jit(eval_window, donate_argnums=1), "end": jax.jit(end),
            "sums0": jax.jit(loop.train_sums0),
            "eval0": jax.jit(lambda: loop.obj.zero_sums(loop.out_shape, loop.y_dtype, False))}


def stream_evaluate(loop: Loop, fns: dict, state, x: np.ndarray, y: np.ndarray, put: Callable,
                    window: int, prefetch: int = 2):
    """Loss and metric sums over a host-resident split: the batches of `Loop.evaluate`, streamed."""
    from nnctl.data.stream import eval_index, windows

    idx, mask = eval_index(len(x), loop.eval_batch)
    sums = fns["eval0"]()
    for _, xs, ys, ms in windows(x, y, idx, mask, window, put, prefetch):
        sums = fns["eval"](state, sums, xs, ys, ms)
    return sums
