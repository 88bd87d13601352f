"""The adversarial losses on hand-computed inputs (nnctl.objectives.gan_losses), and the spec checks of
model.adversarial. No training here: tests/test_gan_variants.py trains the specs."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnctl.errors import SpecError
from nnctl.objectives import gan_losses as L
from nnctl.spec import load_text

R = jnp.array([0.5, -1.0])  # the discriminator's raw outputs on two real examples
F = jnp.array([0.0, 2.0])  # ... and on two generated ones


def sigmoid(v):
    return 1 / (1 + math.exp(-v))


# (kind, minimax) -> (L_D per pair, L_G per generated example), written out by hand
GOLDEN = {
    # the notes' -V(D, G) = -log D(x) - log(1 - D(G(z))), D = sigmoid of the logit
    ("bce", False): (
        [-math.log(sigmoid(0.5)) - math.log(1 - sigmoid(0.0)), -math.log(sigmoid(-1.0)) - math.log(1 - sigmoid(2.0))],
        [-math.log(sigmoid(0.0)), -math.log(sigmoid(2.0))],  # non-saturating: -log D(G(z))
    ),
    ("bce", True): (
        [1.1672241, 3.4401897],  # log(1 + e^-0.5) + log 2, log(1 + e) + log(1 + e^2)
        [math.log(0.5), math.log(1 - sigmoid(2.0))],  # minimax: log(1 - D(G(z))) = -0.6931472, -2.1269280
    ),
    ("least_squares", False): ([0.125, 4.0], [0.5, 0.5]),  # 1/2 (r - 1)^2 + 1/2 f^2; 1/2 (f - 1)^2
    ("wasserstein", False): ([-0.5, 3.0], [0.0, -2.0]),  # f - r; -f
}


@pytest.mark.parametrize("kind, minimax", sorted(GOLDEN))
def test_adversarial_losses_match_hand_computed_values(kind, minimax):
    want_d, want_g = GOLDEN[(kind, minimax)]
    np.testing.assert_allclose(L.d_loss(kind, R, F), want_d, rtol=1e-6)
    np.testing.assert_allclose(L.g_loss(kind, F, minimax), want_g, rtol=1e-6, atol=1e-7)


def test_minimax_generator_loss_saturates_where_the_non_saturating_one_does_not():
    """Where D confidently rejects a generated example (logit -5), the notes' log(1 - D(G(z))) has slope
    -s(-5) = -0.0066929 and -log D(G(z)) has slope -s(5) = -0.9933071: why non_saturating is the default."""
    minimax = jax.grad(lambda f: L.g_loss("bce", f, True))(-5.0)
    non_sat = jax.grad(lambda f: L.g_loss("bce", f, False))(-5.0)
    assert float(minimax) == pytest.approx(-0.0066929, abs=1e-7)
    assert float(non_sat) == pytest.approx(-0.9933071, abs=1e-7)


def test_gradient_penalty_on_critics_with_known_gradients():
    key = jax.random.key(0)
    real = jnp.array([[1.0, 0.0], [0.0, 2.0]])
    fake = jnp.array([[0.0, 1.0], [3.0, 3.0]])
    # linear critic D(x) = 3 x0 + 4 x1: its gradient is (3, 4) everywhere, norm 5, penalty (5 - 1)^2 = 16
    linear = lambda x: x @ jnp.array([3.0, 4.0])
    np.testing.assert_allclose(L.gradient_penalty(linear, real, fake, key), [16.0, 16.0], rtol=1e-6)
    # D(x) = 1/2 ||x||^2 has gradient x_hat; with real = fake, x_hat is that point whatever e is drawn
    same = jnp.array([[0.6, 0.8], [0.3, 0.4]])  # norms 1 and 0.5: penalties 0 and 0.25
    quad = lambda x: 0.5 * jnp.sum(x**2, axis=1)
    np.testing.assert_allclose(L.gradient_penalty(quad, same, same, key), [0.0, 0.25], atol=1e-6)


def test_clip_weights_clips_trainable_weights_only():
    params = {"a": jnp.array([-0.5, 0.005, 0.3]), "b": jnp.array([2.0])}
    out = L.clip_weights(params, 0.01, {"a": True, "b": False})
    np.testing.assert_allclose(out["a"], [-0.01, 0.005, 0.01])
    np.testing.assert_allclose(out["b"], [2.0])


def test_info_and_class_losses():
    # Q head: 2 category logits (2, 0), then one continuous mean 0.5; codes: category 0, continuous 0
    q = jnp.array([[2.0, 0.0, 0.5]])
    got = L.info_loss(q, jnp.array([0]), jnp.array([[0.0]]), cont_weight=1.0)
    np.testing.assert_allclose(got, [math.log(1 + math.exp(-2)) + 0.5 * 0.5**2], rtol=1e-6)  # 0.1269280 + 0.125
    np.testing.assert_allclose(L.info_loss(q[:, 2:], None, jnp.array([[0.0]]), 2.0), [0.25], rtol=1e-6)
    np.testing.assert_allclose(L.class_loss(jnp.array([[0.0, 0.0]]), jnp.array([1])), [math.log(2)], rtol=1e-6)


GAN = """name: g
data: {{source: builtin:ring, n_samples: 64}}
model:
  type: gan
  latent_dim: 2
  adversarial: {adv}
  generator: [{{type: dense, units: 2}}]
  discriminator: [{{type: dense, units: {d_out}}}]
train: {{loss: {loss}, epochs: 1}}
"""


@pytest.mark.parametrize(
    "adv, loss, d_out, where, says",
    [
        ("{generator_loss: minimax}", "least_squares", 1, "model.adversarial.generator_loss", "use loss: bce"),
        ("{clip_value: 0.01}", "bce", 1, "model.adversarial.clip_value", "train.loss: wasserstein"),
        ("{gradient_penalty: 10}", "least_squares", 1, "model.adversarial.gradient_penalty", "wasserstein"),
        ("{auxiliary_classifier: true}", "bce", 1, "model.discriminator[0]", "units: 9"),
        ("{info_codes: {categorical: 3, continuous: 2}}", "bce", 1, "model.discriminator[0]", "units: 6"),
        ("{info_codes: {}}", "bce", 1, "model.adversarial.info_codes", "categorical > 0"),
        (
            "{auxiliary_classifier: true, info_codes: {categorical: 2}}",
            "bce",
            9,
            "model.adversarial.info_codes",
            "not both",
        ),
    ],
)
def test_adversarial_spec_errors_are_located(adv, loss, d_out, where, says):
    with pytest.raises(SpecError) as e:
        load_text(GAN.format(adv=adv, loss=loss, d_out=d_out), "g.yaml")
    assert where in str(e.value) and says in str(e.value), str(e.value)


def test_wasserstein_without_a_constraint_warns():
    loaded = load_text(GAN.format(adv="null", loss="wasserstein", d_out=1), "g.yaml")
    assert any("Lipschitz" in str(w) for w in loaded.analysis.warnings)


def test_adversarial_is_refused_by_other_kinds():
    text = """name: s
data: {source: builtin:xor}
model:
  adversarial: {n_critic: 2}
  layers: [{type: dense, units: 1, activation: sigmoid}]
train: {loss: bce}
"""
    with pytest.raises(SpecError, match="does not use adversarial"):
        load_text(text, "s.yaml")
