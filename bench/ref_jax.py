"""Hand-written reference JAX training loops, written for speed on XLA:CPU.

Plain functions of arrays (no module system), Optax Adam, buffers donated, shuffling on device.
* dense and LSTM models: a whole epoch is one `lax.scan` over batches; tiny models run *all* epochs in one
  call (scan over epochs of scans over batches), with loss and accuracy accumulated on device.
* CNN: one jitted step per batch (the perf notes measured scan-fused conv steps 8x slower on XLA:CPU),
  max-pool written as reshape + max (faster than `lax.reduce_window` on CPU).
"""

from __future__ import annotations

import math
import time

import numpy as np


def init_params(w, key):
    import jax
    import jax.numpy as jnp

    def dense(k, a, b):
        lim = math.sqrt(6.0 / (a + b))
        return {"w": jax.random.uniform(k, (a, b), jnp.float32, -lim, lim), "b": jnp.zeros((b,), jnp.float32)}

    ks = jax.random.split(key, 8)
    out = max(w.classes, 1)
    if w.kind in ("xor", "iris", "mlp"):
        dims = [math.prod(w.input_shape), *w.hidden, out]
        return [dense(ks[i], a, b) for i, (a, b) in enumerate(zip(dims[:-1], dims[1:]))]
    if w.kind == "cnn":

        def conv(k, cin, cout):
            lim = math.sqrt(6.0 / (9 * cin + 9 * cout))
            return {
                "w": jax.random.uniform(k, (3, 3, cin, cout), jnp.float32, -lim, lim),
                "b": jnp.zeros((cout,), jnp.float32),
            }

        return [conv(ks[0], 1, 32), conv(ks[1], 32, 64), dense(ks[2], 7 * 7 * 64, 128), dense(ks[3], 128, out)]
    if w.kind == "lstm":
        i, h = w.input_shape[1], w.hidden[0]
        lim = math.sqrt(6.0 / (i + 4 * h))
        return {
            "wi": jax.random.uniform(ks[0], (i, 4 * h), jnp.float32, -lim, lim),
            "wh": jax.random.uniform(ks[1], (h, 4 * h), jnp.float32, -lim, lim) * 0.5,
            "b": jnp.zeros((4 * h,), jnp.float32).at[h : 2 * h].set(1.0),
            "out": dense(ks[2], h, out),
        }
    raise ValueError(w.kind)


def forward(w, params, x):
    import jax
    import jax.numpy as jnp

    if w.kind in ("xor", "iris", "mlp"):
        act = jnp.tanh if w.kind == "xor" else jax.nn.relu
        for layer in params[:-1]:
            x = act(x @ layer["w"] + layer["b"])
        return x @ params[-1]["w"] + params[-1]["b"]
    if w.kind == "cnn":

        def conv(x, p):
            y = jax.lax.conv_general_dilated(x, p["w"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
            return jax.nn.relu(y + p["b"])

        def pool(x):
            n, hh, ww, c = x.shape
            return x.reshape(n, hh // 2, 2, ww // 2, 2, c).max(axis=(2, 4))

        x = pool(conv(x, params[0]))
        x = pool(conv(x, params[1]))
        x = jax.nn.relu(x.reshape(x.shape[0], -1) @ params[2]["w"] + params[2]["b"])
        return x @ params[3]["w"] + params[3]["b"]
    if w.kind == "lstm":
        h_size = w.hidden[0]
        xs = jnp.swapaxes(x, 0, 1)  # (T, B, I)

        def cell(carry, xt):
            h, c = carry
            z = xt @ params["wi"] + h @ params["wh"] + params["b"]
            i, f, g, o = jnp.split(z, 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), None

        zeros = jnp.zeros((x.shape[0], h_size), jnp.float32)
        (h, _), _ = jax.lax.scan(cell, (zeros, zeros), xs)
        return h @ params["out"]["w"] + params["out"]["b"]
    raise ValueError(w.kind)


def loss_and_correct(w, params, x, y, mask):
    import jax
    import jax.numpy as jnp
    import optax

    logits = forward(w, params, x)
    if w.classes == 1:
        z = logits[:, 0]
        per = optax.sigmoid_binary_cross_entropy(z, y)
        correct = ((z > 0) == (y > 0.5)).astype(jnp.float32)
    else:
        per = optax.softmax_cross_entropy_with_integer_labels(logits, y)
        correct = (logits.argmax(-1) == y).astype(jnp.float32)
    n = jnp.maximum(mask.sum(), 1.0)
    del jax
    return (per * mask).sum() / n, (correct * mask).sum()


def run(w, x_np, y_np) -> dict:
    """Train; return timed throughput (after a warm-up call that compiles)."""
    import jax
    import jax.numpy as jnp
    import optax

    tx = optax.adam(w.lr)
    params = init_params(w, jax.random.key(0))
    opt = tx.init(params)
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)
    n, b = w.n, w.batch
    nb = math.ceil(n / b)
    pad = nb * b - n
    mask = (jnp.arange(nb * b) < n).astype(jnp.float32).reshape(nb, b)

    def step(carry, xb, yb, m):
        params, opt, acc = carry
        (loss, correct), g = jax.value_and_grad(lambda p: loss_and_correct(w, p, xb, yb, m), has_aux=True)(params)
        upd, opt = tx.update(g, opt, params)
        params = optax.apply_updates(params, upd)
        return params, opt, acc + jnp.stack([loss * m.sum(), correct])

    def epoch_index(key):
        perm = jax.random.permutation(key, n)
        idx = jnp.concatenate([perm, perm[:pad]]) if pad else perm
        return idx.reshape(nb, b)

    def epoch(carry, key):
        idx = epoch_index(key)

        def body(c, inp):
            i, m = inp
            return step(c, x[i], y[i], m), None

        carry, _ = jax.lax.scan(body, carry, (idx, mask))
        return carry

    acc0 = jnp.zeros(2, jnp.float32)
    carry = (params, opt, acc0)
    tiny = w.kind in ("xor", "iris")
    if tiny:
        # all epochs in one program
        def many(carry, key, k):
            def body(c, e):
                return epoch(c, jax.random.fold_in(key, e)), None

            c, _ = jax.lax.scan(body, carry, jnp.arange(k))
            return c

        f = jax.jit(many, static_argnums=2, donate_argnums=0)
        t, c0 = time.perf_counter(), time.process_time()
        compiled = f.lower(carry, jax.random.key(1), w.epochs).compile()
        compile_s = time.perf_counter() - t
        carry = jax.block_until_ready(compiled(carry, jax.random.key(1)))  # warm-up run
        t, c0 = time.perf_counter(), time.process_time()
        carry = jax.block_until_ready(compiled(carry, jax.random.key(2)))
        secs, cpu = time.perf_counter() - t, time.process_time() - c0
        steps = w.epochs * nb
    elif w.kind == "cnn":
        # one step per call (fastest on XLA:CPU for convolutions)
        f = jax.jit(lambda c, i, m: step(c, x[i], y[i], m), donate_argnums=0)
        perm = jax.jit(epoch_index)
        t, c0 = time.perf_counter(), time.process_time()
        idx = perm(jax.random.key(0))
        carry = jax.block_until_ready(f(carry, idx[0], mask[0]))
        compile_s = time.perf_counter() - t
        for i in range(1, nb):  # rest of the warm-up epoch
            carry = f(carry, idx[i], mask[i])
        jax.block_until_ready(carry)
        t, c0 = time.perf_counter(), time.process_time()
        for e in range(w.epochs):
            idx = perm(jax.random.key(e + 1))
            for i in range(nb):
                carry = f(carry, idx[i], mask[i])
        carry = jax.block_until_ready(carry)
        secs, cpu = time.perf_counter() - t, time.process_time() - c0
        steps = w.epochs * nb
    else:
        f = jax.jit(epoch, donate_argnums=0)
        t, c0 = time.perf_counter(), time.process_time()
        compiled = f.lower(carry, jax.random.key(0)).compile()
        compile_s = time.perf_counter() - t
        carry = jax.block_until_ready(compiled(carry, jax.random.key(0)))  # warm-up epoch
        t, c0 = time.perf_counter(), time.process_time()
        for e in range(w.epochs):
            carry = compiled(carry, jax.random.key(e + 1))
        carry = jax.block_until_ready(carry)
        secs, cpu = time.perf_counter() - t, time.process_time() - c0
        steps = w.epochs * nb
    acc = np.asarray(carry[2])
    return {
        "seconds": secs,
        "cpu_seconds": cpu,
        "steps": steps,
        "samples": w.epochs * n,
        "compile_s": compile_s,
        "final_loss_sum": float(acc[0]),
    }
