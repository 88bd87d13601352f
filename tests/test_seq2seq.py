"""The sequence-to-sequence encoder-decoder (model.type: seq2seq): teacher forcing feeds the shifted target,
greedy decoding feeds back its own output, one epoch trains and predicts, its spec checks; (slow) the example
spec learns to reverse digits free-running."""

import jax.numpy as jnp
import numpy as np
import pytest

from nnctl.app import predict_run, restore, train_run
from nnctl.data.builtin_seq import _reverse_digits
from nnctl.errors import SpecError
from nnctl.objectives.seq2seq import shifted
from nnctl.spec import load_text
from tests.conftest import SPECS

SMALL = (
    "train.epochs=1",
    "data.n_samples=300",
    "model.encoder.1.units=16",
    "model.decoder.1.units=16",
    "train.batch_size=32",
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    res = train_run(str(SPECS / "seq2seq_reverse.yaml"), str(tmp_path_factory.mktemp("s2s") / "r"), SMALL)
    return res, restore(res.run_dir)


def test_reverse_digits_data_is_seeded_and_reversed():
    x, y = _reverse_digits(3, 50, None)
    assert x.shape == y.shape == (50, 8) and np.array_equal(y, x[:, ::-1].astype(np.int32))
    assert np.array_equal(_reverse_digits(3, 50, None)[0], x) and not np.array_equal(_reverse_digits(4, 50, None)[0], x)


def test_teacher_forced_input_is_the_shifted_target(run):
    y = jnp.array([[3, 1, 4, 1], [5, 9, 2, 6]], jnp.int32)
    assert np.array_equal(shifted(y, 10), [[10, 3, 1, 4], [10, 5, 9, 2]])
    _, r = run
    obj, w = r.built.loop.obj, r.weights
    x, y = r.built.data.x_test[:6], r.built.data.y_test[:6]
    tf, _ = obj.teacher_forced(w["params"], w["model_state"], x, y, False)
    v = {"params": w["params"], **w["model_state"]}
    state = obj.net.apply(v, x, method="encode")
    by_hand = obj.net.apply(v, state, shifted(jnp.asarray(y), 10), head=False, method="decode")
    assert np.array_equal(np.asarray(tf), np.asarray(by_hand))
    # the decoder really reads its input: other previous tokens give other scores
    other = obj.net.apply(v, state, shifted(jnp.asarray((y + 1) % 10), 10), head=False, method="decode")
    assert not np.allclose(np.asarray(other), np.asarray(by_hand))


def test_greedy_decoding_feeds_back_its_own_output(run):
    _, r = run
    obj, w = r.built.loop.obj, r.weights
    x = r.built.data.x_test[:6]
    logits, fed = obj.greedy(w["params"], w["model_state"], x)
    v = {"params": w["params"], **w["model_state"]}
    state = obj.net.apply(v, x, method="encode")
    tokens = jnp.full((6, 1), 10, jnp.int32)  # a step-by-step loop over a growing prefix, no buffer
    for t in range(8):
        step = obj.net.apply(v, state, tokens, head=False, method="decode")[:, -1]
        np.testing.assert_allclose(np.asarray(step), np.asarray(logits[:, t]), rtol=1e-5, atol=1e-5)
        tokens = jnp.concatenate([tokens, jnp.argmax(step, -1)[:, None].astype(jnp.int32)], 1)
    assert np.array_equal(np.asarray(fed), np.asarray(tokens[:, :8]))
    assert np.array_equal(np.asarray(fed[:, 1:]), np.asarray(jnp.argmax(logits[:, :-1], -1)))


def test_one_epoch_trains_and_predicts_free_running(run, tmp_path):
    res, r = run
    rec = res.records[-1]
    for k in ("loss", "teacher_forced_accuracy", "free_running_accuracy", "free_running_sequence_accuracy"):
        assert np.isfinite(rec[f"val/{k}"]), k
    np.savez(tmp_path / "x.npz", x=r.built.data.x_test[:4])
    pred = predict_run(res.run_dir, str(tmp_path / "x.npz"))
    w = r.weights
    logits, _ = r.built.loop.obj.greedy(w["params"], w["model_state"], r.built.data.x_test[:4])
    assert np.array_equal(np.asarray(pred["classes"]), np.asarray(jnp.argmax(logits, -1)))
    assert np.asarray(pred["probabilities"]).shape == (4, 8, 10)


SPEC = """name: s
data: {{source: builtin:reverse_digits, n_samples: 100}}
model:
  type: seq2seq
  encoder: [{{type: embedding, vocab_size: 10, features: 4}}, {enc}]
  decoder: [{{type: embedding, vocab_size: 11, features: 4}}, {dec}, {{type: dense, units: 10}}]
train: {{loss: categorical_crossentropy}}
"""
LSTM = "{type: lstm, units: 8, return_sequences: true}"


@pytest.mark.parametrize(
    "enc, dec, where, says",
    [
        ("{type: dense, units: 8}", LSTM, "model.encoder[1]", "ends in a one-directional recurrent layer"),
        ("{type: lstm, units: 8}", "{type: gru, units: 8, return_sequences: true}", "model.decoder[1]", "lstm of 8"),
        ("{type: lstm, units: 8}", "{type: lstm, units: 8}", "model.decoder[1]", "return_sequences: true"),
        ("{type: lstm, units: 8}", "{type: conv1d, filters: 8, kernel_size: 3}", "model.decoder[1].type", "causal"),
    ],
)
def test_seq2seq_spec_errors(enc, dec, where, says):
    with pytest.raises(SpecError) as e:
        load_text(SPEC.format(enc=enc, dec=dec), "s.yaml")
    assert where in str(e.value) and says in str(e.value), str(e.value)


def test_a_good_spec_validates():
    load_text(SPEC.format(enc="{type: lstm, units: 8}", dec=LSTM), "s.yaml")


@pytest.mark.slow
def test_reverse_digits_learns_free_running(tmp_path):
    res = train_run(str(SPECS / "seq2seq_reverse.yaml"), str(tmp_path / "r"), ("train.epochs=15",))
    rec = res.records[-1]
    assert rec["val/free_running_accuracy"] > 0.9 and rec["val/free_running_sequence_accuracy"] > 0.6, rec
