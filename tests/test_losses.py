"""jaxgd.losses against optax (test-only dependency) and hand-written references."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgd import losses

RTOL = 1e-6


def _logits(key, shape, extreme=True):
    x = 3.0 * jax.random.normal(key, shape)
    if extreme:  # sprinkle +-100 logits
        x = x.reshape(-1).at[:4].set(jnp.array([100.0, -100.0, 100.0, -100.0])).reshape(shape)
    return x


def test_mse_matches_optax_and_numpy():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    p, t = jax.random.normal(k1, (7, 3)), jax.random.normal(k2, (7, 3))
    got = losses.mse(p, t)
    assert got.shape == ()
    np.testing.assert_allclose(got, optax.squared_error(p, t).mean(), rtol=RTOL)
    p64, t64 = np.asarray(p, np.float64), np.asarray(t, np.float64)
    np.testing.assert_allclose(got, np.mean((p64 - t64) ** 2), rtol=1e-6)


@pytest.mark.parametrize("label_dtype", [jnp.float32, jnp.int32])
def test_binary_cross_entropy_matches_optax(label_dtype):
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    logits = _logits(k1, (16,))
    labels = jax.random.bernoulli(k2, 0.5, (16,)).astype(label_dtype)
    labels = labels.at[:4].set(jnp.array([0, 1, 1, 0], label_dtype))  # wrong, wrong, ok, ok
    got = losses.binary_cross_entropy(logits, labels)
    want = optax.sigmoid_binary_cross_entropy(logits, labels.astype(jnp.float32)).mean()
    assert jnp.isfinite(got)
    np.testing.assert_allclose(got, want, rtol=RTOL)
    # Independent float64 reference: softplus(z) - y z.
    z, y = np.asarray(logits, np.float64), np.asarray(labels, np.float64)
    np.testing.assert_allclose(got, np.mean(np.logaddexp(0.0, z) - y * z), rtol=1e-5)


def test_softmax_cross_entropy_matches_optax():
    k1, k2 = jax.random.split(jax.random.PRNGKey(2))
    logits = _logits(k1, (2, 6, 5))
    labels = jax.random.randint(k2, (2, 6), 0, 5)
    got = losses.softmax_cross_entropy(logits, labels)
    want = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    assert jnp.isfinite(got)
    np.testing.assert_allclose(got, want, rtol=RTOL)
    z, y = np.asarray(logits, np.float64), np.asarray(labels)
    m = z.max(-1, keepdims=True)
    lse = (m + np.log(np.exp(z - m).sum(-1, keepdims=True)))[..., 0]
    ref = np.mean(lse - np.take_along_axis(z, y[..., None], -1)[..., 0])
    np.testing.assert_allclose(got, ref, rtol=1e-5)


def test_extreme_logits_values_and_gradients_finite():
    big = jnp.array([100.0, -100.0, 1e4, -1e4])
    y = jnp.array([0.0, 1.0, 0.0, 1.0])  # all confidently wrong
    val, g = jax.value_and_grad(losses.binary_cross_entropy)(big, y)
    np.testing.assert_allclose(val, np.mean([100.0, 100.0, 1e4, 1e4]), rtol=1e-6)
    np.testing.assert_allclose(g, np.array([1.0, -1.0, 1.0, -1.0]) / 4, rtol=1e-6)

    logits = jnp.array([[100.0, -100.0, 0.0], [-1e4, 1e4, 0.0]])
    labels = jnp.array([1, 0])
    val, g = jax.value_and_grad(losses.softmax_cross_entropy)(logits, labels)
    np.testing.assert_allclose(val, (200.0 + 2e4) / 2, rtol=1e-6)
    assert bool(jnp.all(jnp.isfinite(g)))
    # d/dz = (softmax(z) - onehot(y)) / batch
    np.testing.assert_allclose(g, np.array([[1, -1, 0], [-1, 1, 0]]) / 2, atol=1e-6)


def test_jit_grad_vmap():
    k1, k2 = jax.random.split(jax.random.PRNGKey(3))
    logits = jax.random.normal(k1, (4, 8, 3))
    labels = jax.random.randint(k2, (4, 8), 0, 3)
    per_group = jax.vmap(jax.jit(losses.softmax_cross_entropy))(logits, labels)
    np.testing.assert_allclose(
        per_group.mean(), losses.softmax_cross_entropy(logits, labels), rtol=1e-6
    )
    g = jax.jit(jax.grad(losses.mse))(logits, 2.0 * logits)
    np.testing.assert_allclose(g, -2.0 * logits / logits.size, rtol=1e-6)
    bl = jax.vmap(losses.binary_cross_entropy)(logits[..., 0], (labels > 0).astype(jnp.float32))
    assert bl.shape == (4,)


@pytest.mark.parametrize(
    "fn, a, b",
    [
        (losses.mse, jnp.zeros((5, 1)), jnp.zeros((5,))),
        (losses.mse, jnp.zeros((5,)), jnp.zeros((4,))),
        (losses.binary_cross_entropy, jnp.zeros((5, 1)), jnp.zeros((5,))),
        (losses.softmax_cross_entropy, jnp.zeros((5, 3)), jnp.zeros((5, 3), jnp.int32)),
        (losses.softmax_cross_entropy, jnp.zeros((5, 3)), jnp.zeros((4,), jnp.int32)),
        (losses.softmax_cross_entropy, jnp.zeros(()), jnp.zeros((), jnp.int32)),
    ],
)
def test_shape_mismatch_raises_at_trace_time(fn, a, b):
    with pytest.raises(ValueError, match="shape"):
        fn(a, b)
    with pytest.raises(ValueError, match="shape"):
        jax.jit(fn)(a, b)


def test_softmax_rejects_float_labels():
    with pytest.raises(TypeError, match="integer"):
        losses.softmax_cross_entropy(jnp.zeros((5, 3)), jnp.zeros((5,)))
