"""Metrics, by name. Metrics are computed from sums accumulated on device over a whole epoch
(a confusion matrix for classification, sums of errors for regression), so a metric over an epoch is
exact, not an average of per-batch values, and nothing syncs with the host per step.

Precision, recall and F1 are macro averages over classes; for a binary task they are those of the
positive class. AUC accumulates histograms of the predicted probability (`AUC_BUCKETS` buckets) for
positive and negative examples, per class, and integrates the ROC curve through the bucket edges with the
trapezoid rule: exact for scores that differ by more than a bucket, like Keras' `AUC` (200 thresholds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from nnctl.losses import dense_target
from nnctl.registry import Registry


@dataclass(frozen=True)
class Metric:
    name: str
    needs: str  # "confusion" | "regression" | "ranking" | "image"
    value: Callable  # sums -> scalar (jnp)
    mode: str  # "max" or "min": which direction is better (early stopping default)
    doc: str


METRICS: Registry[Metric] = Registry("metric")
AUC_BUCKETS = 200
# which metrics apply to a task (regression metrics of class probabilities are the Brier score: allowed)
TASK_NEEDS = {
    "classification": ("confusion", "ranking", "regression"),
    "binary": ("confusion", "ranking", "regression"),
    "regression": ("regression", "image"),
    "autoencoder": ("regression", "image"),
}
SSIM_K1, SSIM_K2, SSIM_SIGMA, SSIM_WINDOW = 0.01, 0.03, 1.5, 11


def _metric(name: str, needs: str, mode: str, doc: str, *aliases: str):
    def deco(fn):
        METRICS.register(name, *aliases)(Metric(name, needs, fn, mode, doc))
        return fn

    return deco


def _safe_div(a, b):
    return jnp.where(b > 0, a / jnp.where(b > 0, b, 1), 0.0)


def _per_class(cm):
    tp = jnp.diag(cm)
    return tp, cm.sum(axis=0), cm.sum(axis=1)  # true positives, predicted counts, actual counts


def _binary(cm):
    return cm.shape[0] == 2


@_metric("accuracy", "confusion", "max", "fraction of examples whose predicted class is the label", "acc")
def accuracy(s):
    cm = s["confusion"]
    return _safe_div(jnp.trace(cm), cm.sum())


@_metric("precision", "confusion", "max", "TP / (TP + FP), macro-averaged (positive class if binary)")
def precision(s):
    tp, pred, _ = _per_class(s["confusion"])
    p = _safe_div(tp, pred)
    return p[1] if _binary(s["confusion"]) else p.mean()


@_metric("recall", "confusion", "max", "TP / (TP + FN), macro-averaged (positive class if binary)")
def recall(s):
    tp, _, actual = _per_class(s["confusion"])
    r = _safe_div(tp, actual)
    return r[1] if _binary(s["confusion"]) else r.mean()


@_metric("f1", "confusion", "max", "harmonic mean of precision and recall, macro-averaged", "f1_score")
def f1(s):
    tp, pred, actual = _per_class(s["confusion"])
    p, r = _safe_div(tp, pred), _safe_div(tp, actual)
    f = _safe_div(2 * p * r, p + r)
    return f[1] if _binary(s["confusion"]) else f.mean()


@_metric(
    "auc",
    "ranking",
    "max",
    "area under the ROC curve (one-vs-rest, macro-averaged over classes; the "
    "positive class if binary), from probabilities in 200 buckets",
    "roc_auc",
)
def auc(s):
    pos, neg = s["roc_pos"], s["roc_neg"]  # (C, AUC_BUCKETS): counts per probability bucket
    # true/false positive rates at the thresholds "score >= lower edge of bucket k", k = K..0
    tp = jnp.cumsum(pos[:, ::-1], axis=1)
    fp = jnp.cumsum(neg[:, ::-1], axis=1)
    tpr = tp / jnp.maximum(tp[:, -1:], 1.0)
    fpr = fp / jnp.maximum(fp[:, -1:], 1.0)
    zero = jnp.zeros_like(tpr[:, :1])
    tpr, fpr = jnp.concatenate([zero, tpr], 1), jnp.concatenate([zero, fpr], 1)
    area = ((fpr[:, 1:] - fpr[:, :-1]) * (tpr[:, 1:] + tpr[:, :-1]) / 2).sum(1)
    defined = (tp[:, -1] > 0) & (fp[:, -1] > 0)  # a class without positives or negatives has no AUC
    return _safe_div(jnp.where(defined, area, 0.0).sum(), defined.sum())


@_metric("mse", "regression", "min", "mean squared error", "mean_squared_error")
def mse(s):
    return _safe_div(s["sse"].sum(), s["n"] * s["sse"].size)


@_metric("rmse", "regression", "min", "root mean squared error")
def rmse(s):
    return jnp.sqrt(mse(s))


@_metric("mae", "regression", "min", "mean absolute error", "mean_absolute_error")
def mae(s):
    return _safe_div(s["sae"].sum(), s["n"] * s["sae"].size)


@_metric("r2", "regression", "max", "coefficient of determination, averaged over outputs", "r2_score")
def r2(s):
    ss_tot = s["syy"] - _safe_div(s["sy"] ** 2, s["n"])
    return jnp.mean(1.0 - _safe_div(s["sse"], ss_tot))


@_metric(
    "psnr",
    "image",
    "max",
    "peak signal-to-noise ratio 10 log10(1 / MSE) in dB per example (data in [0, 1]), averaged over examples",
)
def psnr(s):
    return _safe_div(s["psnr_sum"], s["n_img"])


@_metric(
    "ssim",
    "image",
    "max",
    "structural similarity (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, range 1; "
    "valid positions, per channel) per example, averaged over examples; a flat output of a square size is read "
    "as a square image",
)
def ssim(s):
    return _safe_div(s["ssim_sum"], s["n_img"])


def _gauss(n: int):
    g = jnp.exp(-0.5 * ((jnp.arange(n) - (n - 1) / 2) / SSIM_SIGMA) ** 2)
    return g / g.sum()


def image_view(v):
    """Per-example images (B, H, W, C) of an output batch: (B, H, W) and (B, H, W, C) as they are; a flat
    (B, n) with n a square as (B, sqrt n, sqrt n, 1), else (B, 1, n, 1)."""
    if v.ndim == 2:
        r = int(round(v.shape[1] ** 0.5))
        return v.reshape(v.shape[0], r, r, 1) if r * r == v.shape[1] else v[:, None, :, None]
    return v[..., None] if v.ndim == 3 else v.reshape(*v.shape[:3], -1)


def ssim_per_example(a, b):
    """SSIM of each example of two (B, H, W, C) batches with values in [0, 1]."""
    wh, ww = (min(SSIM_WINDOW, n) - (1 - min(SSIM_WINDOW, n) % 2) for n in a.shape[1:3])  # odd, fits
    k = jnp.outer(_gauss(wh), _gauss(ww))[:, :, None, None]

    def blur(v):  # each channel on its own, valid positions
        c = v.shape[-1]
        return jax.lax.conv_general_dilated(
            v, jnp.tile(k, (1, 1, 1, c)), (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=c,
        )  # fmt: skip

    c1, c2 = SSIM_K1**2, SSIM_K2**2
    ma, mb = blur(a), blur(b)
    va, vb, cov = blur(a * a) - ma**2, blur(b * b) - mb**2, blur(a * b) - ma * mb
    m = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    return m.reshape(m.shape[0], -1).mean(1)


def _weights(m, shape):
    """Per-value weights of a (B, K) array from the mask: (B,) one per example, or (B, T) one per step of a
    sequence output (each step's K / T values share its weight)."""
    if m.ndim == 1:
        return jnp.broadcast_to(m[:, None], shape)
    return jnp.repeat(m, shape[1] // m.shape[1], axis=1)


SMALL_CONFUSION = 1 << 14  # batch x classes^2 up to which the confusion matrix is summed elementwise: a tiny
# matmul is a library call that costs more than the whole sum on XLA:CPU (4 % of an iris step, issue 12)


def batch_sums(needs: set[str], out, y, mask, num_classes: int) -> dict:
    """Sums over one batch that metrics are computed from. mask: (B,) 1 for real examples, 0 for padding;
    or (B, T) for a sequence output with padded steps (every metric then counts the real steps only)."""
    sums = {}
    m = mask.astype(jnp.float32)
    if "confusion" in needs:
        if out.shape[-1] == 1 or not jnp.issubdtype(y.dtype, jnp.integer):  # binary / multi-label
            pred = (out > 0.5).astype(jnp.int32).reshape(out.shape[0], -1)
            true = (dense_target(out, y) > 0.5).astype(jnp.int32).reshape(out.shape[0], -1)
            w = _weights(m, pred.shape)
            c = 2
        else:
            pred = jnp.argmax(out, -1).reshape(out.shape[0], -1)  # (B, 1), or (B, T) for per-step labels
            true, w, c = y.reshape(y.shape[0], -1), _weights(m, pred.shape), num_classes
        oh_t = jax.nn.one_hot(true.reshape(-1), c) * w.reshape(-1, 1)
        oh_p = jax.nn.one_hot(pred.reshape(-1), c)
        if oh_t.shape[0] * c * c <= SMALL_CONFUSION:  # one fused reduction, no matmul call (exact either way:
            sums["confusion"] = (oh_t[:, :, None] * oh_p[:, None, :]).sum(0)  # sums of 0/1 products)
        else:
            sums["confusion"] = oh_t.T @ oh_p
    if "ranking" in needs:
        c = out.shape[-1]
        scores = out.reshape(-1, c)
        if c == 1 or not jnp.issubdtype(y.dtype, jnp.integer):  # binary / multi-label: each output on its own
            pos = (dense_target(out, y) > 0.5).astype(jnp.float32).reshape(-1, c)
        else:  # classes: one-vs-rest on each class's probability
            pos = jax.nn.one_hot(y.reshape(-1), c)
        mf = m.reshape(-1)
        w = jnp.repeat(mf, scores.shape[0] // mf.shape[0])[:, None]  # per-step labels: one weight per step
        bucket = jnp.clip(jnp.floor(scores * AUC_BUCKETS), 0, AUC_BUCKETS - 1).astype(jnp.int32)
        oh = jax.nn.one_hot(bucket, AUC_BUCKETS)  # (N, C, K)
        sums["roc_pos"] = jnp.einsum("nc,nck->ck", pos * w, oh)
        sums["roc_neg"] = jnp.einsum("nc,nck->ck", (1.0 - pos) * w, oh)
    if "regression" in needs:
        t = dense_target(out, y)
        flat = lambda v: v.reshape(v.shape[0], -1)
        err, tt = flat(out - t), flat(t)
        w = m[:, None] if m.ndim == 1 else _weights(m, err.shape)
        sums.update(
            sse=(err**2 * w).sum(0),
            sae=(jnp.abs(err) * w).sum(0),
            sy=(tt * w).sum(0),
            syy=(tt**2 * w).sum(0),
            n=m.sum() if m.ndim == 1 else w.sum() / err.shape[1],  # mse, mae: over the real values
        )
    if "image" in needs:
        t = dense_target(out, y)
        mse_i = ((out - t) ** 2).reshape(out.shape[0], -1).mean(1)
        sums["psnr_sum"] = (10 * jnp.log10(1.0 / jnp.maximum(mse_i, 1e-10)) * m).sum()
        sums["ssim_sum"] = (ssim_per_example(image_view(out), image_view(t)) * m).sum()
        sums["n_img"] = m.sum()
    return sums


def needs_of(names) -> set[str]:
    return {METRICS.get(n).needs for n in names}


def compute(names, sums) -> dict:
    return {METRICS.canonical(n): METRICS.get(n).value(sums) for n in names}
