"""Table-driven tests over every registered activation, initializer, loss, metric, optimizer and schedule.

Each table must cover its whole registry: registering a new entry without a reference here fails."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from pydantic import TypeAdapter
from sklearn import metrics as skm

from nnctl.activations import ACTIVATIONS, ActivationRef
from nnctl.initializers import INITIALIZERS, InitRef
from nnctl.losses import LOSSES, Head
from nnctl.metrics import METRICS, batch_sums, compute
from nnctl.optim import OPTIMIZERS, SCHEDULES, OptimizerRef, ScheduleRef, build_learning_rate, build_optimizer

X = np.linspace(-3, 3, 13).astype(np.float32)
sig = lambda v: 1 / (1 + np.exp(-v))

ACT_REF = {
    "linear": lambda v: v,
    "step": lambda v: (v >= 0).astype(np.float32),  # step(0) = 1, as the notes define it
    "sigmoid": sig,
    "tanh": np.tanh,
    "relu": lambda v: np.maximum(v, 0),
    "leaky_relu": lambda v: np.where(v > 0, v, 0.01 * v),
    "elu": lambda v: np.where(v > 0, v, np.exp(v) - 1),
    "selu": lambda v: 1.0507009873554805 * np.where(v > 0, v, 1.6732632423543772 * (np.exp(v) - 1)),
    "gelu": lambda v: 0.5 * v * (1 + np.vectorize(__import__("math").erf)(v / np.sqrt(2))),
    "swish": lambda v: v * sig(v),
    "softplus": lambda v: np.log1p(np.exp(v)),
    "softmax": lambda v: np.exp(v) / np.exp(v).sum(),
    "softsign": lambda v: v / (1 + np.abs(v)),
    "mish": lambda v: v * np.tanh(np.log1p(np.exp(v))),
    "hard_sigmoid": lambda v: np.where(v <= -3, 0, np.where(v >= 3, 1, v / 6 + 0.5)),
    "hard_tanh": lambda v: np.where(v >= 1, 1, np.where(v <= -1, -1, v)),
    "hard_swish": lambda v: np.where(v <= -3, 0, np.where(v >= 3, v, v * (v + 3) / 6)),
    "log_sigmoid": lambda v: np.log(sig(v)),
    "tanhshrink": lambda v: v - np.tanh(v),
    "softshrink": lambda v: np.where(v > 0.5, v - 0.5, np.where(v < -0.5, v + 0.5, 0)),
    "hardshrink": lambda v: np.where(np.abs(v) > 0.5, v, 0),
    "sinc": lambda v: np.where(v == 0, 1.0, np.sin(v) / np.where(v == 0, 1.0, v)),
}
# options: (spec, x, want) against the formula with the option's value
ACT_OPTION_REF = [
    ({"type": "softplus", "beta": 2.0}, X, np.log1p(np.exp(2 * X)) / 2),
    ({"type": "mish", "beta": 2.0}, X, X * np.tanh(np.log1p(np.exp(2 * X)) / 2)),
    ({"type": "hard_tanh", "min_val": -2.0, "max_val": 0.5}, X, np.clip(X, -2.0, 0.5)),
    ({"type": "softshrink", "lambd": 1.0}, X, np.where(X > 1, X - 1, np.where(X < -1, X + 1, 0))),
    ({"type": "hardshrink", "lambd": 1.0}, X, np.where(np.abs(X) > 1, X, 0)),
    ({"type": "step", "threshold": 1.0}, np.array([0.5, 1.0, 1.5], np.float32), np.array([0.0, 1.0, 1.0])),
]


def test_activation_table_covers_registry():
    assert set(ACT_REF) == set(ACTIVATIONS.names(aliases=False))


@pytest.mark.parametrize("name", sorted(ACT_REF))
def test_activation_values(name):
    opts = TypeAdapter(ActivationRef).validate_python(name)
    got = np.asarray(ACTIVATIONS.build(opts, jnp.asarray(X)))
    np.testing.assert_allclose(got, ACT_REF[name](X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", ACT_OPTION_REF, ids=lambda c: str(c[0]))
def test_activation_option_values(case):
    spec, x, want = case
    opts = TypeAdapter(ActivationRef).validate_python(spec)
    np.testing.assert_allclose(np.asarray(ACTIVATIONS.build(opts, jnp.asarray(x))), want, rtol=1e-5, atol=1e-6)


def test_step_of_zero_is_one_as_the_notes_define_it():
    opts = TypeAdapter(ActivationRef).validate_python("step")
    assert float(ACTIVATIONS.build(opts, jnp.float32(0.0))) == 1.0
    assert float(ACTIVATIONS.build(opts, jnp.float32(-1e-6))) == 0.0


def test_activation_options_and_aliases():
    leaky = TypeAdapter(ActivationRef).validate_python({"type": "leaky_relu", "negative_slope": 0.1})
    assert float(ACTIVATIONS.build(leaky, jnp.float32(-2.0))) == pytest.approx(-0.2)
    silu = TypeAdapter(ActivationRef).validate_python("silu")
    assert float(ACTIVATIONS.build(silu, jnp.float32(1.0))) == pytest.approx(1 * sig(1.0), rel=1e-6)


INIT_CHECK = {
    "zeros": ({}, lambda w: np.all(w == 0)),
    "ones": ({}, lambda w: np.all(w == 1)),
    "constant": ({"value": 0.35}, lambda w: np.allclose(w, 0.35)),
    "values": ({"values": [[float(i) for i in range(64)] for _ in range(64)]}, lambda w: w[3, 5] == 5.0),
    "normal": ({"stddev": 0.5}, lambda w: abs(w.std() - 0.5) < 0.03 and abs(w.mean()) < 0.03),
    "uniform": (
        {"minval": -0.2, "maxval": 0.3},
        lambda w: w.min() >= -0.2 and w.max() <= 0.3 and abs(w.mean() - 0.05) < 0.02,
    ),
    "truncated_normal": ({"stddev": 0.5}, lambda w: np.abs(w).max() <= 1.0 + 1e-6),
    "glorot_uniform": ({}, lambda w: np.abs(w).max() <= np.sqrt(6 / 128) + 1e-6 and abs(w.var() - 2 / 128) < 3e-3),
    "glorot_normal": ({}, lambda w: abs(w.var() - 2 / 128) < 3e-3),
    "he_uniform": ({}, lambda w: np.abs(w).max() <= np.sqrt(6 / 64) + 1e-6 and abs(w.var() - 2 / 64) < 5e-3),
    "he_normal": ({}, lambda w: abs(w.var() - 2 / 64) < 5e-3),
    "lecun_normal": ({}, lambda w: abs(w.var() - 1 / 64) < 3e-3),
    "lecun_uniform": ({}, lambda w: np.abs(w).max() <= np.sqrt(3 / 64) + 1e-6),
    "orthogonal": ({}, lambda w: np.allclose(w.T @ w, np.eye(64), atol=1e-4)),
    "identity": ({"gain": 0.5}, lambda w: np.array_equal(w, 0.5 * np.eye(64))),
}


def test_initializer_table_covers_registry():
    assert set(INIT_CHECK) == set(INITIALIZERS.names(aliases=False))


@pytest.mark.parametrize("name", sorted(INIT_CHECK))
def test_initializer(name):
    opts, check = INIT_CHECK[name]
    init = INITIALIZERS.build(TypeAdapter(InitRef).validate_python({"type": name, **opts}))
    w = np.asarray(init(jax.random.key(0), (64, 64), jnp.float32))
    assert w.shape == (64, 64)
    assert check(w), name


# --------------------------------------------------------------------------------------------- losses
LOGITS = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]], np.float32)
LABELS = np.array([0, 2], np.int32)
ONEHOT = np.eye(3, dtype=np.float32)[LABELS]
REG_OUT = np.array([[0.5, -1.0], [2.0, 0.0]], np.float32)
REG_T = np.array([[0.0, -1.5], [1.0, 2.5]], np.float32)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


LOSS_REF = {
    "mse": ("linear", REG_OUT, REG_T, ((REG_OUT - REG_T) ** 2).mean(1)),
    "least_squares": ("linear", REG_OUT, REG_T, ((REG_OUT - REG_T) ** 2).mean(1)),  # the LSGAN loss outside a gan
    "half_sum_squared_error": ("linear", REG_OUT, REG_T, 0.5 * ((REG_T - REG_OUT) ** 2).sum(1)),
    "perceptron": (
        "linear",
        REG_OUT,
        (REG_T > 0).astype(np.float32),
        -(((REG_T > 0).astype(np.float32) - (REG_OUT >= 0)) * REG_OUT).sum(1),
    ),
    "mae": ("linear", REG_OUT, REG_T, np.abs(REG_OUT - REG_T).mean(1)),
    "huber": (
        "linear",
        REG_OUT,
        REG_T,
        np.where(np.abs(REG_OUT - REG_T) <= 1, 0.5 * (REG_OUT - REG_T) ** 2, np.abs(REG_OUT - REG_T) - 0.5).mean(1),
    ),
    "binary_crossentropy": (
        "sigmoid",
        REG_OUT,
        (REG_T > 0).astype(np.float32),
        -((REG_T > 0) * np.log(sig(REG_OUT)) + (REG_T <= 0) * np.log(1 - sig(REG_OUT))).mean(1),
    ),
    "categorical_crossentropy": ("softmax", LOGITS, LABELS, -np.log(_softmax(LOGITS)[[0, 1], LABELS])),
    "kl_divergence": ("softmax", LOGITS, ONEHOT, -np.log(_softmax(LOGITS)[[0, 1], LABELS])),
    "hinge": (
        "linear",
        REG_OUT,
        (REG_T > 0).astype(np.float32),
        np.maximum(0, 1 - np.where(REG_T > 0, 1, -1) * REG_OUT).mean(1),
    ),
    "wasserstein": (
        "linear",
        REG_OUT,
        (REG_T > 0).astype(np.float32),
        (-np.where(REG_T > 0, 1.0, -1.0) * REG_OUT).mean(1),
    ),
}
HEADS = {"linear": lambda z: z, "sigmoid": jax.nn.sigmoid, "softmax": lambda z: jax.nn.softmax(z, -1)}


def test_loss_table_covers_registry():
    assert set(LOSS_REF) == set(LOSSES.names(aliases=False))


@pytest.mark.parametrize("name", sorted(LOSS_REF))
def test_loss_values(name):
    head, out, y, want = LOSS_REF[name]
    opts = TypeAdapter(LOSSES.models[name]).validate_python({"type": name})
    got = np.asarray(jax.jit(lambda o, t: LOSSES.build(opts, o, t, Head(head, HEADS[head])))(out, y))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_crossentropy_from_logits_equals_from_probabilities():
    opts = TypeAdapter(LOSSES.models["categorical_crossentropy"]).validate_python({"type": "categorical_crossentropy"})
    a = LOSSES.build(opts, jnp.asarray(LOGITS), jnp.asarray(LABELS), Head("softmax", HEADS["softmax"]))
    probs = jax.nn.softmax(jnp.asarray(LOGITS))
    b = LOSSES.build(opts, probs, jnp.asarray(LABELS), Head("linear", HEADS["linear"]))
    np.testing.assert_allclose(a, b, rtol=1e-5)


# -------------------------------------------------------------------------------------------- metrics
RNG = np.random.default_rng(0)
P = RNG.random((40, 4)).astype(np.float32)
Y = RNG.integers(0, 4, 40).astype(np.int32)
PN = P / P.sum(1, keepdims=True)  # probabilities, for AUC
RV = RNG.normal(size=(40, 1)).astype(np.float32)
RT = (RV + RNG.normal(scale=0.5, size=(40, 1))).astype(np.float32)
IT = RNG.uniform(size=(40, 8, 8)).astype(np.float32)  # images: targets, and outputs with noise
IO = np.clip(IT + RNG.normal(scale=0.1, size=IT.shape), 0, 1).astype(np.float32)


def _ssim_ref(a, b, win=7, sigma=1.5):
    """Wang et al.'s SSIM written out: Gaussian-weighted local means, variances and covariance at every valid
    window position (win = the largest odd size <= 11 that fits the 8x8 images), averaged."""
    g = np.exp(-0.5 * ((np.arange(win) - (win - 1) / 2) / sigma) ** 2)
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2, vals = 0.01**2, 0.03**2, []
    for i in range(a.shape[0] - win + 1):
        for j in range(a.shape[1] - win + 1):
            pa, pb = a[i : i + win, j : j + win], b[i : i + win, j : j + win]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va, vb, cov = (w * pa * pa).sum() - ma**2, (w * pb * pb).sum() - mb**2, (w * pa * pb).sum() - ma * mb
            vals.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return np.mean(vals)


METRIC_REF = {
    "psnr": lambda: np.mean([10 * np.log10(1 / np.mean((o - t) ** 2)) for o, t in zip(IO, IT)]),
    "ssim": lambda: np.mean([_ssim_ref(o.astype(np.float64), t.astype(np.float64)) for o, t in zip(IO, IT)]),
    "accuracy": lambda: skm.accuracy_score(Y, P.argmax(1)),
    "precision": lambda: skm.precision_score(Y, P.argmax(1), average="macro", zero_division=0),
    "recall": lambda: skm.recall_score(Y, P.argmax(1), average="macro", zero_division=0),
    "f1": lambda: skm.f1_score(Y, P.argmax(1), average="macro", zero_division=0),
    "auc": lambda: skm.roc_auc_score(Y, PN, multi_class="ovr"),
    "mse": lambda: skm.mean_squared_error(RT, RV),
    "rmse": lambda: np.sqrt(skm.mean_squared_error(RT, RV)),
    "mae": lambda: skm.mean_absolute_error(RT, RV),
    "r2": lambda: skm.r2_score(RT, RV),
}


def test_metric_table_covers_registry():
    assert set(METRIC_REF) == set(METRICS.names(aliases=False))


@pytest.mark.parametrize("name", sorted(METRIC_REF))
def test_metric_matches_sklearn(name):
    m = METRICS.get(name)
    out, y = {"confusion": (P, Y), "ranking": (PN, Y), "regression": (RV, RT), "image": (IO, IT)}[m.needs]
    # accumulate over two uneven batches, with a padded row masked out: must equal the whole-set value
    sums = None
    for sl in (slice(0, 17), slice(17, 40)):
        o, t = np.concatenate([out[sl], out[:1]]), np.concatenate([y[sl], y[:1]])
        mask = np.r_[np.ones(len(out[sl])), 0.0].astype(np.float32)
        b = batch_sums({m.needs}, jnp.asarray(o), jnp.asarray(t), jnp.asarray(mask), 4)
        sums = b if sums is None else {k: sums[k] + b[k] for k in b}
    # AUC from 200 probability buckets: exact unless two scores share a bucket (a few do among these 40)
    tol = dict(rel=0, abs=5e-3) if name == "auc" else dict(rel=1e-4 if name in ("psnr", "ssim") else 1e-5, abs=1e-6)
    assert float(compute([name], sums)[name]) == pytest.approx(METRIC_REF[name](), **tol)


def test_auc_is_exact_when_scores_fall_in_distinct_buckets_binary_and_per_step():
    rng = np.random.default_rng(1)
    # binary, sigmoid output: 150 scores at distinct bucket centres
    p = ((rng.permutation(200)[:150] + 0.5) / 200).astype(np.float32)[:, None]
    y = (rng.random((150, 1)) < p).astype(np.float32)
    sums = batch_sums({"ranking"}, jnp.asarray(p), jnp.asarray(y), jnp.ones(150), 2)
    assert float(compute(["auc"], sums)["auc"]) == pytest.approx(skm.roc_auc_score(y[:, 0], p[:, 0]), abs=1e-6)
    # per-step labels (a tagger): (B, T) classes, (B, T, C) probabilities; padded example masked out
    probs = rng.dirichlet(np.ones(3), size=(5, 4)).astype(np.float32)
    labels = rng.integers(0, 3, (5, 4)).astype(np.int32)
    mask = np.array([1, 1, 1, 1, 0], np.float32)
    sums = batch_sums({"ranking"}, jnp.asarray(probs), jnp.asarray(labels), jnp.asarray(mask), 3)
    want = skm.roc_auc_score(labels[:4].reshape(-1), probs[:4].reshape(-1, 3), multi_class="ovr")
    assert float(compute(["auc"], sums)["auc"]) == pytest.approx(want, abs=2e-3)  # unmasked: off by 5e-3


def test_binary_metrics_use_positive_class():
    p = np.array([[0.9], [0.2], [0.7], [0.4]], np.float32)
    y = np.array([[1.0], [0.0], [0.0], [1.0]], np.float32)
    sums = batch_sums({"confusion"}, jnp.asarray(p), jnp.asarray(y), jnp.ones(4), 2)
    got = compute(["precision", "recall", "accuracy"], sums)
    assert float(got["precision"]) == pytest.approx(0.5)
    assert float(got["recall"]) == pytest.approx(0.5)
    assert float(got["accuracy"]) == pytest.approx(0.5)


# ------------------------------------------------------------------------------ optimizers/schedules
OPT_LR = {
    "sgd": 0.1,
    "momentum": 0.05,
    "momentum_ema": 0.5,
    "adagrad": 0.5,
    "adadelta": 10.0,
    "rmsprop": 0.05,
    "adam": 0.1,
    "adamw": 0.1,
    "nadam": 0.1,
    "adamax": 0.1,
    "lion": 0.05,
}


def test_optimizer_table_covers_registry():
    assert set(OPT_LR) == set(OPTIMIZERS.names(aliases=False))


@pytest.mark.parametrize("name", sorted(OPT_LR))
def test_optimizer_minimises_quadratic_under_jit(name):
    opts = TypeAdapter(OptimizerRef).validate_python({"type": name, "learning_rate": OPT_LR[name]})
    links, _ = build_optimizer(opts, 200, 10)
    tx = optax.chain(*links)
    target = jnp.array([1.0, -2.0, 3.0])
    f = lambda w: jnp.sum((w - target) ** 2)

    @jax.jit
    def run(w):
        def body(c, _):
            w, s = c
            g = jax.grad(f)(w)
            u, s = tx.update(g, s, w, value=f(w))
            return (optax.apply_updates(w, u), s), None

        (w, _), _ = jax.lax.scan(body, (w, tx.init(w)), None, length=200)
        return w

    w0 = jnp.zeros(3)
    assert float(f(run(w0))) < 0.05 * float(f(w0)), name


SCHED = {
    "constant": ({"value": 0.1}, lambda f: f(0) == f(99) == pytest.approx(0.1)),
    "cosine": ({"initial": 0.1}, lambda f: f(0) == pytest.approx(0.1) and f(100) == pytest.approx(0.0, abs=1e-7)),
    "exponential": ({"initial": 0.1, "decay_rate": 0.5}, lambda f: f(10) == pytest.approx(0.05)),
    "step": (
        {"initial": 0.1, "factor": 0.1, "every_epochs": 5},
        lambda f: f(49) == pytest.approx(0.1) and f(50) == pytest.approx(0.01),
    ),
    "linear_warmup_cosine": ({"peak": 0.1, "warmup_steps": 10}, lambda f: f(0) == 0 and f(10) == pytest.approx(0.1)),
    "reduce_on_plateau": ({"initial": 0.1}, lambda f: f(0) == pytest.approx(0.1)),
}


def test_schedule_table_covers_registry():
    assert set(SCHED) == set(SCHEDULES.names(aliases=False))


@pytest.mark.parametrize("name", sorted(SCHED))
def test_schedule(name):
    opts, check = SCHED[name]
    sched = TypeAdapter(ScheduleRef).validate_python({"type": name, **opts})
    lr, _ = build_learning_rate(sched, 100, 10)
    f = (lambda s: float(lr(s))) if callable(lr) else (lambda s: lr)
    assert check(f)


@pytest.mark.parametrize("eps_in_sqrt", [False, True])
def test_rmsprop_is_the_notes_formula(eps_in_sqrt):
    """rmsprop: v = rho v + (1 - rho) g^2, w -= lr g / (sqrt(v) + eps) (eps outside the root, as the notes and
    Keras write it); eps_in_sqrt: true is Optax's sqrt(v + eps)."""
    import jax.numpy as jnp
    import optax

    from nnctl.optim import OPTIMIZERS

    lr, rho, eps = 0.1, 0.9, 0.01
    tx = OPTIMIZERS.get("rmsprop")(learning_rate=lr, decay=rho, eps=eps, eps_in_sqrt=eps_in_sqrt)
    w, state = jnp.array([1.0, -2.0]), None
    state = tx.init(w)
    w_ref, v = np.array([1.0, -2.0]), np.zeros(2)
    for _ in range(3):
        g = 2 * w  # the gradient of sum(w^2)
        u, state = tx.update(g, state, w)
        w = optax.apply_updates(w, u)
        g_ref = 2 * w_ref
        v = rho * v + (1 - rho) * g_ref**2
        w_ref = w_ref - lr * g_ref / (np.sqrt(v + eps) if eps_in_sqrt else np.sqrt(v) + eps)
    np.testing.assert_allclose(np.asarray(w), w_ref, rtol=1e-5)


def test_half_sum_squared_error_is_the_notes_e_total_for_any_output_count():
    """E = sum 1/2 (t - o)^2: 0.298371109 on the notes' two outputs (where mse agrees), and 3/2 mse on three."""
    out = np.array([[0.75136507, 0.772928465]], np.float32)
    t = np.array([[0.01, 0.99]], np.float32)
    opts = TypeAdapter(LOSSES.models["half_sum_squared_error"]).validate_python({"type": "half_sse"})
    lin = Head("linear", HEADS["linear"])
    assert float(LOSSES.build(opts, jnp.asarray(out), jnp.asarray(t), lin)[0]) == pytest.approx(0.298371109, abs=1e-7)
    o3, t3 = np.array([[1.0, 2.0, 3.0]], np.float32), np.zeros((1, 3), np.float32)
    mse = TypeAdapter(LOSSES.models["mse"]).validate_python({"type": "mse"})
    got = float(LOSSES.build(opts, jnp.asarray(o3), jnp.asarray(t3), lin)[0])
    assert got == pytest.approx(7.0) == pytest.approx(1.5 * float(LOSSES.build(mse, o3, t3, lin)[0]))


@pytest.mark.parametrize("name", ["momentum", "momentum_ema"])
def test_momentum_forms(name):
    """momentum: v = beta v + g (Optax/PyTorch/Keras); momentum_ema: v = beta v + (1 - beta) g (the notes);
    both w -= lr v."""
    lr, beta = 0.1, 0.9
    tx = OPTIMIZERS.get(name)(learning_rate=lr, momentum=beta)
    w = jnp.array([1.0, -2.0])
    state = tx.init(w)
    w_ref, v = np.array([1.0, -2.0]), np.zeros(2)
    for _ in range(3):
        u, state = tx.update(2 * w, state, w)
        w = optax.apply_updates(w, u)
        v = beta * v + (1 - beta if name == "momentum_ema" else 1.0) * 2 * w_ref
        w_ref = w_ref - lr * v
    np.testing.assert_allclose(np.asarray(w), w_ref, rtol=1e-5)


def test_psnr_and_ssim_golden_values():
    """MSE 0.01 is 20 dB; an image is perfectly similar to itself (SSIM 1) and a flat 64-vector is read as 8x8."""
    t = np.full((2, 64), 0.5, np.float32)
    sums = batch_sums({"image"}, jnp.asarray(t + 0.1), jnp.asarray(t), jnp.ones(2), 1)
    assert float(compute(["psnr"], sums)["psnr"]) == pytest.approx(20.0, abs=1e-4)
    same = batch_sums({"image"}, jnp.asarray(IT[:3]), jnp.asarray(IT[:3]), jnp.ones(3), 1)
    assert float(compute(["ssim"], same)["ssim"]) == pytest.approx(1.0, abs=1e-6)
    flat = batch_sums({"image"}, jnp.asarray(IO[:2].reshape(2, 64)), jnp.asarray(IT[:2].reshape(2, 64)), jnp.ones(2), 1)
    want = np.mean([_ssim_ref(o.astype(np.float64), t.astype(np.float64)) for o, t in zip(IO[:2], IT[:2])])
    assert float(compute(["ssim"], flat)["ssim"]) == pytest.approx(want, rel=1e-4)
