"""Built-in sequence datasets (generated, seeded): waveform shapes, bit-string parity, token tagging and
majority vote. Token ids are stored as float32 (data x is always float); `embedding` rounds them back.
Use `data.normalize: none` with token ids so the ids reach the embedding unchanged.
"""

from __future__ import annotations

import numpy as np

from nnctl.data.builtin_base import register_builtin

WAVE_STEPS = 40
_SHAPES = ("sine", "square", "triangle", "sawtooth", "pulse")


def _wave(kind: str, phase: np.ndarray) -> np.ndarray:
    """One period per unit of `phase`, values in [-1, 1]."""
    f = np.mod(phase, 1.0)
    if kind == "sine":
        return np.sin(2 * np.pi * f)
    if kind == "square":
        return np.where(f < 0.5, 1.0, -1.0)
    if kind == "triangle":
        return 4 * np.abs(f - 0.5) - 1
    if kind == "sawtooth":
        return 2 * f - 1
    return np.where(f < 0.2, 1.0, -0.25)  # pulse train


@register_builtin(
    "waveforms",
    (WAVE_STEPS,),
    10,
    "noisy 40-step waveforms, 10 classes: sine/square/triangle/sawtooth/pulse x slow (1-2 cycles) "
    "or fast (3-4.5 cycles), random phase and amplitude (n_samples, noise = stddev, default 0.3)",
)
def _waveforms(seed, n, noise):
    rng = np.random.default_rng(seed)
    n = n or 2000
    y = rng.integers(0, 10, n)
    t = np.arange(WAVE_STEPS) / WAVE_STEPS
    x = np.empty((n, WAVE_STEPS), np.float32)
    for i, c in enumerate(y):
        kind, fast = _SHAPES[c % 5], c // 5
        cycles = rng.uniform(3.0, 4.5) if fast else rng.uniform(1.0, 2.0)
        amp = rng.uniform(0.6, 1.4)
        x[i] = amp * _wave(kind, cycles * t + rng.uniform()) + rng.normal(
            0, 0.3 if noise is None else noise, WAVE_STEPS
        )
    return x, y.astype(np.int32)


PARITY_BITS = 10


@register_builtin(
    "parity",
    (PARITY_BITS,),
    2,
    "10-bit strings; label 1 when the number of ones is odd (n_samples; noise = fraction of flipped labels, default 0)",
)
def _parity(seed, n, noise):
    rng = np.random.default_rng(seed)
    n = n or 2000
    x = rng.integers(0, 2, (n, PARITY_BITS))
    y = x.sum(1) % 2
    if noise:
        y = np.where(rng.uniform(size=n) < noise, 1 - y, y)
    return x.astype(np.float32), y.astype(np.int32)


TAG_STEPS, TAG_VOCAB = 20, 10


@register_builtin(
    "token_tags",
    (TAG_STEPS,),
    2,
    "many-to-many tagging: 20 token ids from 0..9; the label of each step is 1 when its token "
    "already occurred earlier in the sequence (targets (N, 20); n_samples; noise = fraction of "
    "flipped tags, default 0)",
)
def _token_tags(seed, n, noise):
    rng = np.random.default_rng(seed)
    n = n or 2000
    x = rng.integers(0, TAG_VOCAB, (n, TAG_STEPS))
    onehot = np.eye(TAG_VOCAB, dtype=np.int32)[x]  # (n, T, V)
    seen = np.cumsum(onehot, axis=1) - onehot  # occurrences strictly before each step
    y = np.take_along_axis(seen, x[..., None], axis=2)[..., 0] > 0
    y = y.astype(np.int32)
    if noise:
        y = np.where(rng.uniform(size=y.shape) < noise, 1 - y, y)
    return x.astype(np.float32), y


MAJ_STEPS, MAJ_VOCAB = 16, 5


@register_builtin(
    "majority",
    (MAJ_STEPS,),
    MAJ_VOCAB,
    "16 token ids from 0..4; the label is the most frequent token (ties: the smallest id) "
    "(n_samples; noise = fraction of labels replaced by a random class, default 0)",
)
def _majority(seed, n, noise):
    rng = np.random.default_rng(seed)
    n = n or 2000
    p = rng.dirichlet(np.ones(MAJ_VOCAB), n)  # each sequence has its own token mix
    x = np.stack([rng.choice(MAJ_VOCAB, MAJ_STEPS, p=pi) for pi in p])
    counts = np.stack([(x == v).sum(1) for v in range(MAJ_VOCAB)], 1)
    y = counts.argmax(1)
    if noise:
        y = np.where(rng.uniform(size=n) < noise, rng.integers(0, MAJ_VOCAB, n), y)
    return x.astype(np.float32), y.astype(np.int32)


@register_builtin(
    "token_tags_varlen",
    (TAG_STEPS,),
    2,
    "variable-length many-to-many tagging: 4 to 20 token ids from 1..9, padded with id 0 to 20 steps; the "
    "label of each real step is 1 when its token already occurred earlier in the sequence, padded steps have "
    "label 0 (mask them: `embedding` with `mask_zero: true`). n_samples; noise = fraction of flipped tags",
)
def _token_tags_varlen(seed, n, noise):
    rng = np.random.default_rng(seed)
    n = n or 2000
    lengths = rng.integers(4, TAG_STEPS + 1, n)
    real = np.arange(TAG_STEPS)[None, :] < lengths[:, None]
    x = np.where(real, rng.integers(1, TAG_VOCAB, (n, TAG_STEPS)), 0)
    onehot = np.eye(TAG_VOCAB, dtype=np.int32)[x]
    seen = np.cumsum(onehot, axis=1) - onehot
    y = (np.take_along_axis(seen, x[..., None], axis=2)[..., 0] > 0) & real
    if noise:
        y = np.where((rng.uniform(size=y.shape) < noise) & real, ~y, y)
    return x.astype(np.float32), y.astype(np.int32)


REV_STEPS, REV_VOCAB = 8, 10


@register_builtin(
    "reverse_digits",
    (REV_STEPS,),
    REV_VOCAB,
    "sequence to sequence (model.type: seq2seq): 8 random digits 0..9 as token ids; the target is the same "
    "digits in reverse order (targets (N, 8), 10 classes; n_samples; noise = fraction of target digits "
    "replaced by a random one, default 0)",
)
def _reverse_digits(seed, n, noise):
    rng = np.random.default_rng(seed)
    n = n or 2000
    x = rng.integers(0, REV_VOCAB, (n, REV_STEPS))
    y = x[:, ::-1].copy()
    if noise:
        y = np.where(rng.uniform(size=y.shape) < noise, rng.integers(0, REV_VOCAB, y.shape), y)
    return x.astype(np.float32), y.astype(np.int32)
