"""jaxgd.problems: known optima checked against independent (mostly NumPy float64) references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgd import problems


def _value(p, params):
    return p.loss_fn(params) if p.data is None else p.loss_fn(params, p.data)


def _assert_f32(tree):
    for leaf in jax.tree_util.tree_leaves(tree):
        assert leaf.dtype == jnp.float32, leaf.dtype


# ---------------------------------------------------------------- 2-D test functions


@pytest.mark.parametrize(
    "p",
    [problems.rosenbrock(), problems.rosenbrock(a=2.0, b=10.0), problems.beale()]
    + [problems.himmelblau(start=(0.5, 0.5))],
    ids=["rosenbrock", "rosenbrock_a2", "beale", "himmelblau"],
)
def test_test_function_optimum(p):
    _assert_f32(p.init_params)
    assert p.min_value == 0.0
    assert float(_value(p, p.optimum)) == pytest.approx(0.0, abs=1e-10)
    np.testing.assert_allclose(jax.grad(p.loss_fn)(p.optimum), 0.0, atol=1e-5)
    # Strictly positive at the start and at random points away from the minima.
    assert float(_value(p, p.init_params)) > 0.1
    pts = jax.random.uniform(jax.random.PRNGKey(0), (64, 2), minval=-4.0, maxval=4.0)
    assert bool(jnp.all(jax.vmap(p.loss_fn)(pts) > 0))


def test_test_function_closed_forms():
    # Independent references: hand-evaluated values at fixed points.
    assert float(problems.rosenbrock().loss_fn(jnp.array([0.0, 0.0]))) == pytest.approx(1.0)
    assert float(problems.rosenbrock().loss_fn(jnp.array([-1.2, 1.0]))) == pytest.approx(24.2)
    np.testing.assert_allclose(problems.rosenbrock(a=2.0).optimum, [2.0, 4.0])
    b = 1.5**2 + 2.25**2 + 2.625**2
    assert float(problems.beale().loss_fn(jnp.zeros(2))) == pytest.approx(b)
    assert float(problems.himmelblau().loss_fn(jnp.zeros(2))) == pytest.approx(170.0)


def test_himmelblau_all_minima():
    p = problems.himmelblau()
    assert len(problems.HIMMELBLAU_MINIMA) == 4
    assert tuple(p.optimum.tolist()) == (3.0, 2.0)
    for m in problems.HIMMELBLAU_MINIMA:
        x, y = m  # float64 evaluation of the formula
        assert (x * x + y - 11) ** 2 + (x + y * y - 7) ** 2 < 1e-20
        m32 = jnp.array(m, jnp.float32)
        assert float(p.loss_fn(m32)) < 1e-8
        np.testing.assert_allclose(jax.grad(p.loss_fn)(m32), 0.0, atol=2e-4)


# ---------------------------------------------------------------- quadratics


@pytest.mark.parametrize("spacing", ["geometric", "linear"])
def test_quadratic_spectrum_and_optimum(spacing):
    p = problems.quadratic(dim=12, mu=0.5, L=200.0, key=jax.random.PRNGKey(3), spacing=spacing)
    A = np.asarray(p.info["A"], np.float64)
    b = np.asarray(p.info["b"], np.float64)
    np.testing.assert_array_equal(A, A.T)
    eig = np.linalg.eigvalsh(A)
    assert p.info["mu"] == 0.5 and p.info["L"] == 200.0
    assert eig.min() == pytest.approx(0.5, rel=1e-4)
    assert eig.max() == pytest.approx(200.0, rel=1e-4)
    assert np.all(eig > 0.5 * (1 - 1e-4)) and np.all(eig < 200.0 * (1 + 1e-4))
    if spacing == "geometric":
        np.testing.assert_allclose(eig, np.geomspace(0.5, 200.0, 12), rtol=1e-4)
    else:
        np.testing.assert_allclose(eig, np.linspace(0.5, 200.0, 12), rtol=1e-4, atol=1e-4)
    x_star = np.linalg.solve(A, b)
    np.testing.assert_allclose(p.optimum, x_star, rtol=1e-5, atol=1e-6)
    assert p.min_value == pytest.approx(-0.5 * b @ x_star, rel=1e-10)
    assert float(_value(p, p.optimum)) == pytest.approx(p.min_value, rel=1e-5)
    # Gradient A x - b at the optimum, relative to its scale at the start (= -b).
    g = jax.grad(p.loss_fn)(p.optimum)
    assert float(jnp.linalg.norm(g)) < 1e-4 * np.linalg.norm(b)
    np.testing.assert_allclose(jax.grad(p.loss_fn)(p.init_params), -b, rtol=1e-6)


def test_quadratic_deterministic_and_validates():
    p1, p2 = problems.quadratic(), problems.quadratic()
    np.testing.assert_array_equal(p1.info["A"], p2.info["A"])
    np.testing.assert_array_equal(p1.optimum, p2.optimum)
    p3 = problems.quadratic(key=1)
    assert not np.array_equal(p1.info["A"], p3.info["A"])
    _assert_f32((p1.init_params, p1.optimum, p1.info["A"]))
    with pytest.raises(ValueError):
        problems.quadratic(mu=2.0, L=1.0)
    with pytest.raises(ValueError):
        problems.quadratic(dim=1)
    with pytest.raises(ValueError):
        problems.quadratic(dim=3, start=[0.0, 0.0])


def test_noisy_quadratic():
    p = problems.noisy_quadratic()
    H = np.asarray(p.info["H"], np.float64)
    np.testing.assert_array_equal(H, H.T)
    eig = np.linalg.eigvalsh(H)  # ascending
    assert np.all(eig[:90] > 0) and np.all(eig[:90] < 1.0 + 1e-4)
    assert np.all(eig[90:] > 30.0 - 1e-3) and np.all(eig[90:] < 60.0 + 1e-3)
    np.testing.assert_allclose(eig, np.sort(p.info["eigenvalues"]), rtol=1e-3, atol=1e-4)
    X = np.asarray(p.data, np.float64)
    assert X.shape == (1000, 100) and p.test_data.shape == (1000, 100)
    assert X.std() == pytest.approx(0.6, rel=0.02)
    np.testing.assert_allclose(p.optimum, X.mean(0), atol=1e-6)
    c = X - X.mean(0)
    ref = 0.5 * np.mean(np.einsum("ni,ij,nj->n", c, H, c))
    assert p.min_value == pytest.approx(ref, rel=1e-10)
    assert float(_value(p, p.optimum)) == pytest.approx(p.min_value, rel=1e-5)
    g = jax.grad(p.loss_fn)(p.optimum, p.data)
    assert float(jnp.abs(g).max()) < 1e-4
    # Mini-batch gradients are noisy: two batches disagree at the optimum.
    g1 = jax.grad(p.loss_fn)(p.optimum, p.data[:10])
    g2 = jax.grad(p.loss_fn)(p.optimum, p.data[10:20])
    assert float(jnp.linalg.norm(g1 - g2)) > 1.0
    np.testing.assert_array_equal(p.init_params, np.ones(100, np.float32))


# ---------------------------------------------------------------- datasets


def test_linear_regression_matches_lstsq():
    p = problems.linear_regression(num_examples=50, num_features=3, noise=0.1, key=7)
    X, y = p.data
    assert X.shape == (50, 3) and y.shape == (50,)
    _assert_f32((p.init_params, p.optimum, p.data))
    x1 = np.c_[np.asarray(X, np.float64), np.ones(50)]
    coef, *_ = np.linalg.lstsq(x1, np.asarray(y, np.float64), rcond=None)
    np.testing.assert_allclose(p.optimum["w"], coef[:3], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p.optimum["b"], coef[3], rtol=1e-5, atol=1e-6)
    resid = x1 @ coef - np.asarray(y, np.float64)
    assert p.min_value == pytest.approx(np.mean(resid**2), rel=1e-8)
    assert float(_value(p, p.optimum)) == pytest.approx(p.min_value, rel=1e-3)
    g = jax.grad(p.loss_fn)(p.optimum, p.data)
    assert max(float(jnp.abs(v).max()) for v in jax.tree_util.tree_leaves(g)) < 1e-5
    assert p.min_value < 0.1 < float(_value(p, p.init_params))  # noise**2 ~ 0.01


def test_logistic_regression():
    p = problems.logistic_regression(num_examples=300, num_features=4, key=1)
    X, y = p.data
    assert X.shape == (300, 4) and y.shape == (300,) and y.dtype == jnp.int32
    assert set(np.unique(np.asarray(y))) == {0, 1}
    assert p.test_data[0].shape == (300, 4)
    _assert_f32((p.init_params, X))
    assert float(_value(p, p.init_params)) == pytest.approx(np.log(2.0), rel=1e-6)
    # Newton optimum: stationary under jax.grad, value matches, below the init value.
    g = jax.grad(p.loss_fn)(p.optimum, p.data)
    assert max(float(jnp.abs(v).max()) for v in jax.tree_util.tree_leaves(g)) < 1e-5
    assert float(_value(p, p.optimum)) == pytest.approx(p.min_value, rel=1e-5)
    assert p.min_value < np.log(2.0)
    # Accuracy: the true model gets exactly the unflipped labels right.
    acc_true = float(p.accuracy_fn(p.info["true_params"], p.data))
    assert acc_true == pytest.approx(1.0 - p.info["num_flipped"] / 300)
    assert 0 < p.info["num_flipped"] < 60
    # Perfect predictor: labels produced by the params themselves.
    params = p.optimum
    perfect = (np.asarray(X @ params["w"] + params["b"]) > 0).astype(np.int32)
    assert float(p.accuracy_fn(params, (X, jnp.asarray(perfect)))) == 1.0
    assert float(p.accuracy_fn(params, (X, jnp.asarray(1 - perfect)))) == 0.0


def test_mlp_digits():
    pytest.importorskip("sklearn")
    p = problems.mlp_digits(hidden=(16,), key=0, test_fraction=0.25)
    X, y = p.data
    Xt, yt = p.test_data
    assert X.shape[0] + Xt.shape[0] == 1797 and Xt.shape[0] == round(0.25 * 1797)
    assert X.shape[1] == 64 and y.dtype == jnp.int32
    assert float(X.min()) == 0.0 and float(X.max()) == 1.0
    assert set(np.unique(np.asarray(y))) == set(range(10))
    assert [(lyr["w"].shape, lyr["b"].shape) for lyr in p.init_params] == [
        ((64, 16), (16,)),
        ((16, 10), (10,)),
    ]
    _assert_f32((p.init_params, X, Xt))
    # Deterministic split given the key, different for another key.
    np.testing.assert_array_equal(problems.mlp_digits(hidden=(16,), key=0).data[1], y)
    assert not np.array_equal(problems.mlp_digits(hidden=(16,), key=1).data[1], y)
    # Initial loss near log(10); perfect predictor has accuracy 1.
    assert float(_value(p, p.init_params)) == pytest.approx(np.log(10.0), rel=0.3)
    own = jnp.argmax(p.info["predict"](p.init_params, Xt), -1)
    assert float(p.accuracy_fn(p.init_params, (Xt, own))) == 1.0
    assert float(p.accuracy_fn(p.init_params, (Xt, (own + 1) % 10))) == 0.0
    # A few full-batch gradient steps lower the loss (the problem is trainable).
    step = jax.jit(
        lambda w: jax.tree_util.tree_map(
            lambda a, g: a - 0.5 * g, w, jax.grad(p.loss_fn)(w, p.data)
        )
    )
    params = p.init_params
    for _ in range(20):
        params = step(params)
    assert float(_value(p, params)) < 0.8 * float(_value(p, p.init_params))
    # Softmax regression variant.
    assert len(problems.mlp_digits(hidden=(), test_fraction=0.0).init_params) == 1


# ---------------------------------------------------------------- recommender


def _true_ratings_np(true):
    """The true ratings matrix in float64, from the generating params, with NumPy."""
    t = {k: np.asarray(v, np.float64) for k, v in true.items()}
    return t["mean"] + t["user_bias"][:, None] + t["item_bias"][None, :] + t["user"] @ t["item"].T


def test_matrix_factorization_loss_at_truth_is_noise():
    p = problems.matrix_factorization(num_users=30, num_items=20, rank=3, density=0.5,
                                      noise=0.3, key=3)
    user, item, rating = (np.asarray(x) for x in p.data)
    tu, ti, tr = (np.asarray(x) for x in p.test_data)
    assert len(rating) + len(tr) == 300 and len(tr) == 60
    assert user.dtype == item.dtype == np.int32 and rating.dtype == np.float32
    _assert_f32(p.init_params)
    assert p.init_params["user"].shape == (30, 3) and p.init_params["item_bias"].shape == (20,)
    # every observed cell once, train and test disjoint
    cells = np.concatenate([user * 20 + item, tu * 20 + ti])
    assert len(np.unique(cells)) == 300
    truth = _true_ratings_np(p.info["true_params"])
    noise_mse = np.mean((rating - truth[user, item]) ** 2)
    assert float(p.loss_fn(p.info["true_params"], p.data)) == pytest.approx(noise_mse, rel=1e-5)
    assert p.info["train_noise_mse"] == pytest.approx(noise_mse, rel=1e-5)
    test_rmse = np.sqrt(np.mean((tr - truth[tu, ti]) ** 2))
    assert p.info["test_noise_rmse"] == pytest.approx(test_rmse, rel=1e-5)
    assert float(p.info["rmse"](p.info["true_params"], p.test_data)) == pytest.approx(
        test_rmse, rel=1e-5)
    assert 0.2 < test_rmse < 0.4  # noise = 0.3
    assert float(p.loss_fn(p.init_params, p.data)) > 2 * noise_mse


def test_matrix_factorization_l2_penalty_per_rating():
    p = problems.matrix_factorization(num_users=12, num_items=9, rank=2, density=0.6, l2=0.1,
                                      key=0)
    true = p.info["true_params"]
    user, item, rating = (np.asarray(x) for x in p.data)
    t = {k: np.asarray(v, np.float64) for k, v in true.items()}
    err = rating - _true_ratings_np(true)[user, item]
    norms = (np.sum(t["user"][user] ** 2, 1) + np.sum(t["item"][item] ** 2, 1)
             + t["user_bias"][user] ** 2 + t["item_bias"][item] ** 2)
    expected = np.mean(err**2 + 0.1 * norms)
    assert float(p.loss_fn(true, p.data)) == pytest.approx(expected, rel=1e-5)
    # a batch's gradient touches only its own users' rows
    grad = jax.grad(p.loss_fn)(true, jax.tree.map(lambda x: x[:3], p.data))
    touched = np.zeros(12, bool)
    touched[user[:3]] = True
    assert np.all(np.asarray(grad["user"])[~touched] == 0)
    assert np.all(np.any(np.asarray(grad["user"])[touched] != 0, axis=1))


def test_matrix_factorization_deterministic_and_validates():
    a, b = problems.matrix_factorization(key=5), problems.matrix_factorization(key=5)
    for x, y in zip(jax.tree.leaves((a.data, a.init_params)),
                    jax.tree.leaves((b.data, b.init_params)), strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(problems.matrix_factorization(key=6).data[2], a.data[2])
    for kwargs, name in [({"rank": 0}, "rank"), ({"num_users": 2.5}, "num_users"),
                         ({"density": 0.0}, "density"), ({"density": 1.5}, "density"),
                         ({"noise": -1.0}, "noise"), ({"l2": float("nan")}, "l2"),
                         ({"test_fraction": 1.0}, "test_fraction"),
                         ({"init_scale": 0.0}, "init_scale")]:
        with pytest.raises(ValueError, match=name):
            problems.matrix_factorization(**kwargs)
