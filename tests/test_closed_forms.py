"""Closed-form results from the theory of gradient descent hold."""

import jax
import jax.numpy as jnp
import numpy as np

import jaxgd


def _random_spd(dim, mu, L, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    eigenvalues = np.geomspace(mu, L, dim)
    return (q * eigenvalues) @ q.T, rng.normal(size=dim)


def test_gd_with_step_one_over_L_contracts_at_rate_one_minus_mu_over_L():
    mu, L, dim = 1.0, 50.0, 20
    A, b = _random_spd(dim, mu, L)
    x_star = np.linalg.solve(A, b)
    A32, b32 = jnp.asarray(A, jnp.float32), jnp.asarray(b, jnp.float32)

    def grad(x):
        return A32 @ x - b32

    opt = jaxgd.sgd(1.0 / L)
    x = jnp.zeros(dim)
    state = opt.init(x)
    step = jax.jit(lambda x, s: (lambda u, s: (jaxgd.apply_updates(x, u), s))(
        *opt.update(grad(x), s, x)))
    e0 = np.linalg.norm(np.asarray(x, np.float64) - x_star)
    for k in range(1, 301):
        x, state = step(x, state)
        error = np.linalg.norm(np.asarray(x, np.float64) - x_star)
        # float32 rounding leaves a floor of a few ulps of |x*|.
        assert error <= (1 - mu / L) ** k * e0 + 1e-5 * np.linalg.norm(x_star), k
    assert error < 1e-2 * e0


def test_gd_diverges_above_two_over_L():
    L = 4.0
    opt = jaxgd.sgd(2.2 / L)
    x = jnp.array([1.0])
    state = opt.init(x)
    for _ in range(50):
        updates, state = opt.update(L * x, state)
        x = jaxgd.apply_updates(x, updates)
    assert abs(float(x[0])) > 1e3


def test_gd_on_1d_quadratic_is_exactly_geometric():
    lam, lr, x0 = 3.0, 0.1, 2.0
    opt = jaxgd.sgd(lr)
    x = jnp.array(x0)
    state = opt.init(x)
    for k in range(1, 21):
        updates, state = opt.update(lam * x, state)
        x = jaxgd.apply_updates(x, updates)
        np.testing.assert_allclose(float(x), (1 - lr * lam) ** k * x0, rtol=1e-5)


def test_adam_first_step_is_minus_lr_g_over_abs_g_plus_eps():
    lr, eps = 1e-2, 1e-8
    g = np.array([3.0, -0.5, 1e-3, -2e-7, 0.0], np.float32)
    opt = jaxgd.adam(lr, eps=eps)
    updates, _ = opt.update(jnp.asarray(g), opt.init(jnp.zeros(5)))
    expected = -lr * g.astype(np.float64) / (np.abs(g.astype(np.float64)) + eps)
    np.testing.assert_allclose(np.asarray(updates, np.float64), expected, rtol=1e-5, atol=1e-12)


def test_nesterov_on_quadratic_beats_plain_gd():
    A, b = _random_spd(10, 0.1, 10.0, seed=1)
    x_star = np.linalg.solve(A, b)
    A32, b32 = jnp.asarray(A, jnp.float32), jnp.asarray(b, jnp.float32)

    def run(opt):
        x = jnp.zeros(10)
        state = opt.init(x)
        for _ in range(100):
            updates, state = opt.update(A32 @ x - b32, state)
            x = jaxgd.apply_updates(x, updates)
        return np.linalg.norm(np.asarray(x) - x_star)

    assert run(jaxgd.nesterov(0.1, 0.9)) < 0.1 * run(jaxgd.sgd(0.1))
