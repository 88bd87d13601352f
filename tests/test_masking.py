"""Masks of padded steps (`masking`, `embedding` with `mask_zero`): a padded batch gives every sequence exactly
what it gives alone (final state, outputs, loss, gradients); padded steps count in no loss or metric."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pydantic import TypeAdapter

from nnctl.errors import SpecError
from nnctl.layers import AnyLayer
from nnctl.layers.graph import Network, mask_flow, resolve_names
from tests.conftest import SPECS

LENGTHS = (5, 2, 4)


def _net(raw):
    return Network(tuple(TypeAdapter(list[AnyLayer]).validate_python(resolve_names(raw))))


def _padded(rng, features=2, pad=-1.0):
    seqs = [rng.normal(size=(n, features)).astype(np.float32) for n in LENGTHS]
    x = np.full((len(seqs), max(LENGTHS), features), pad, np.float32)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = s
    return seqs, jnp.asarray(x)


@pytest.mark.parametrize(
    "layer",
    [
        pytest.param({"type": "simple_rnn"}, marks=pytest.mark.slow),
        pytest.param(
            {"type": "simple_rnn", "activation": "relu", "recurrent_init": "identity"}, marks=pytest.mark.slow
        ),
        pytest.param({"type": "gru", "bidirectional": True}, marks=pytest.mark.slow),
        {"type": "lstm", "bidirectional": True},
    ],
    ids=lambda d: "-".join(str(v) for v in d.values()),
)
def test_padded_batch_gives_each_sequence_its_own_final_state_and_outputs(layer):
    seqs, x = _padded(np.random.default_rng(0))
    # two layers side by side on the same input: many-to-many (outputs) and many-to-one (final state)
    both = [
        {**layer, "units": 3, "return_sequences": True, "name": "seq", "inputs": ["src"]},
        {**layer, "units": 3, "name": "last", "inputs": ["src"]},
    ]
    padded = _net([{"type": "masking", "mask_value": -1.0, "name": "src"}, *both])
    alone = _net([{"type": "activation", "name": "src"}, *both])
    v = padded.init(jax.random.key(0), x)
    out = jax.jit(lambda xb: padded.apply(v, xb, capture=("seq", "last"))[1])(x)
    run_alone = jax.jit(lambda xb: alone.apply(v, xb, capture=("seq", "last"))[1])
    for i, s in enumerate(seqs):
        ref = run_alone(jnp.asarray(s[None]))
        # outputs at the real steps as alone, zero at padded steps
        np.testing.assert_allclose(out["seq"][i, : len(s)], ref["seq"][0], rtol=1e-5, atol=1e-6)
        assert np.all(np.asarray(out["seq"][i, len(s) :]) == 0)
        # the final state is the one after the last real step (backward direction: after the first)
        np.testing.assert_allclose(out["last"][i], ref["last"][0], rtol=1e-5, atol=1e-6)


def test_masking_marks_steps_whose_every_value_is_the_pad_value():
    x = jnp.asarray([[[1.0, -1.0], [-1.0, -1.0], [0.0, 0.0]]])
    net = _net([{"type": "masking", "mask_value": -1.0}, {"type": "dense", "units": 1}])
    assert mask_flow(net.layers) == {"masking_0": "masking_0", "dense_1": "masking_0"}
    m = net.layers[0].mask_of(x)
    assert m.tolist() == [[True, False, True]]
    assert net.layers[0].apply([x], False).tolist() == [[[1.0, -1.0], [0.0, 0.0], [0.0, 0.0]]]
    # flatten drops the mask, a many-to-one recurrent layer consumes it
    flat = _net([{"type": "masking"}, {"type": "flatten"}])
    assert "flatten_1" not in mask_flow(flat.layers)
    many_to_one = _net([{"type": "masking"}, {"type": "gru", "units": 2}, {"type": "dense", "units": 1}])
    assert set(mask_flow(many_to_one.layers)) == {"masking_0"}


def _built(*overrides):
    from nnctl.app.builder import build
    from nnctl.data.prepare import prepare
    from nnctl.spec import load_spec

    loaded = load_spec(str(SPECS / "varlen_tagger.yaml"), ("data.n_samples=64", *overrides))
    return build(loaded, prepare(loaded.spec, loaded.analysis, loaded.base_dir))


def test_masked_loss_and_gradients_equal_the_unpadded_sequences_one_by_one():
    b = _built()
    obj = b.obj
    assert obj.masked
    state = obj.init(jax.random.key(1), (20,))
    lengths_all = (b.data.x_train != 0).sum(1)
    rows = [int(np.argmax(lengths_all == n)) for n in sorted(set(lengths_all.tolist()))[:2]]  # 2 lengths < 20
    x, y = jnp.asarray(b.data.x_train[rows]), jnp.asarray(b.data.y_train[rows])
    lengths = lengths_all[rows]

    @jax.jit
    def value_and_grad(p, xb, yb):
        def total(p):
            logits, _ = obj.forward(p, state.model_state, xb, False)
            per = obj.per_example(logits, yb)
            return per.sum(), per

        return jax.value_and_grad(total, has_aux=True)(p)

    (_, per), g = value_and_grad(state.params, x, y)
    alone = [value_and_grad(state.params, x[i : i + 1, :n], y[i : i + 1, :n]) for i, n in enumerate(lengths)]
    np.testing.assert_allclose(per, [a[0][1][0] for a in alone], rtol=1e-5, atol=1e-7)
    total = jax.tree.map(lambda *a: sum(a), *[a[1] for a in alone])
    for a, r in zip(jax.tree.leaves(g), jax.tree.leaves(total)):
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-6)
    # metrics count real steps only: a confusion matrix of exactly sum(lengths) entries
    sums = obj.eval_step(state, obj.zero_sums((20, 2), y.dtype), x, y, jnp.ones(len(rows)))
    assert float(sums["confusion"].sum()) == float(lengths.sum())


@pytest.mark.slow
def test_varlen_tagger_trains_and_evaluates_real_steps_only(tmp_path):
    from nnctl.app import evaluate_run, restore, train_run

    res = train_run(
        str(SPECS / "varlen_tagger.yaml"),
        str(tmp_path / "run"),
        ("train.epochs=3", "data.n_samples=200", "data.validation_split=0"),
    )
    assert res.summary["status"] == "finished"
    assert res.records[-1]["train/loss"] < res.records[0]["train/loss"]
    ev = evaluate_run(tmp_path / "run", "test")
    n_real = int((restore(tmp_path / "run").built.data.x_test != 0).sum())
    assert sum(map(sum, ev["confusion_matrix"])) == n_real < ev["examples"] * 20


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (("data.normalize=standard",), "data.normalize: standard moves the padding value"),
        (("train.loss=mse", "train.metrics=[r2]"), "r2 cannot skip the padded steps"),
    ],
)
def test_masks_refuse_what_would_count_padding(overrides, fragment):
    from nnctl.spec import load_spec

    with pytest.raises(SpecError) as e:
        load_spec(str(SPECS / "varlen_tagger.yaml"), overrides)
    assert fragment in str(e.value)
