"""Newton's method and the backtracking line search: closed forms, Rosenbrock, optax, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd import newton, scale_by_newton
from jaxgd.core.tree import real_vdot
from jaxgd.transforms.linesearch import scale_by_backtracking_linesearch

SOLVERS = ["dense", "cg"]
DIM = 50


def random_quadratic(seed=0, dim=DIM):
    """f(x) = ½ xᵀAx − bᵀx with A's eigenvalues in [1, 10], and x* = A⁻¹b in float64."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    a = (q * rng.uniform(1.0, 10.0, dim)) @ q.T
    a = (a + a.T) / 2
    b = rng.normal(size=dim)
    return a, b, np.linalg.solve(a, b)


def as_tree(x):
    """Spread a 50-vector over a nested tree, so the solvers are tested on pytrees."""
    return {"w": x[:20].reshape(4, 5), "rest": (x[20:45], [x[45:].reshape(5, 1)])}


def from_tree(tree):
    """The inverse of as_tree."""
    return jnp.concatenate([tree["w"].ravel(), tree["rest"][0], tree["rest"][1][0].ravel()])


def quadratic_loss(a, b):
    a32, b32 = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)

    def loss(tree):
        x = from_tree(tree)
        return 0.5 * x @ a32 @ x - b32 @ x

    return loss


def newton_step(opt, loss, params, **extra):
    updates, _ = opt.update(jax.grad(loss)(params), opt.init(params), params, value_fn=loss,
                            **extra)
    return jaxgd.apply_updates(params, updates)


@pytest.mark.parametrize("solver", SOLVERS)
def test_one_newton_step_solves_a_strictly_convex_quadratic(solver):
    a, b, x_star = random_quadratic()
    loss = quadratic_loss(a, b)
    x0 = as_tree(jnp.asarray(np.random.default_rng(1).normal(size=DIM), jnp.float32))
    x1 = jax.jit(lambda p: newton_step(newton(solver=solver), loss, p))(x0)
    np.testing.assert_allclose(from_tree(x1), x_star, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_cg_and_dense_solvers_agree():
    a, b, _ = random_quadratic(seed=2)
    loss = quadratic_loss(a, b)
    x0 = as_tree(jnp.asarray(np.random.default_rng(3).normal(size=DIM), jnp.float32))
    grads = jax.grad(loss)(x0)
    steps = [
        scale_by_newton(damping=0.5, solver=s).update(grads, None, x0, value_fn=loss)[0]
        for s in SOLVERS
    ]
    np.testing.assert_allclose(from_tree(steps[0]), from_tree(steps[1]), rtol=1e-5, atol=1e-7)
    # Damping λ shifts the spectrum: (A + λI) d = g, checked against numpy in float64.
    want = np.linalg.solve(a + 0.5 * np.eye(DIM), np.asarray(from_tree(grads), np.float64))
    np.testing.assert_allclose(from_tree(steps[0]), want, rtol=1e-5, atol=1e-6)


def test_newton_passes_batch_data_to_the_loss():
    """Least squares with the data given to update: one step lands on lstsq's answer."""
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(64, 5)), rng.normal(size=64)

    def loss(w, x, y):
        return 0.5 * jnp.mean((x @ w - y) ** 2)

    w0 = jnp.zeros(5)
    data = {"x": jnp.asarray(x, jnp.float32), "y": jnp.asarray(y, jnp.float32)}
    opt = newton(solver="cg")
    updates, _ = opt.update(jax.grad(loss)(w0, **data), opt.init(w0), w0, value_fn=loss, **data)
    np.testing.assert_allclose(w0 + updates, np.linalg.lstsq(x, y)[0], rtol=1e-5, atol=1e-6)


def test_newton_hyperparams_are_injected_and_settable():
    a, b, x_star = random_quadratic(seed=5, dim=8)

    def loss(x):
        return 0.5 * x @ jnp.asarray(a, jnp.float32) @ x - jnp.asarray(b, jnp.float32) @ x

    opt = newton(learning_rate=1.0, damping=0.0, solver="dense")
    x0 = jnp.zeros(8)
    state = opt.init(x0)
    assert set(jaxgd.get_hyperparams(state)) == {"learning_rate", "damping", "cg_tol"}
    state = jaxgd.set_hyperparams(state, learning_rate=0.25)
    updates, _ = opt.update(jax.grad(loss)(x0), state, x0, value_fn=loss)
    np.testing.assert_allclose(updates, 0.25 * x_star, rtol=1e-5, atol=1e-6)
    # The learning rate sweeps with vmap: each lane moves lr of the way to x*.
    lrs = jnp.array([0.1, 0.5, 1.0])
    swept = jax.vmap(lambda lr: newton_step(newton(lr, solver="cg"), loss, x0))(lrs)
    np.testing.assert_allclose(swept, lrs[:, None] * x_star, rtol=1e-4, atol=1e-6)


def run(opt, loss, x0, num_steps):
    """num_steps of ``opt`` in one jitted scan, recording p, f(p), ∇f(p) and the update."""

    def step(carry, _):
        x, state = carry
        value, grad = jax.value_and_grad(loss)(x)
        updates, state = opt.update(grad, state, x, value=value, grad=grad, value_fn=loss)
        return (jaxgd.apply_updates(x, updates), state), (x, value, grad, updates, state)

    (x, _), trace = jax.jit(lambda x: jax.lax.scan(step, (x, opt.init(x)), None, num_steps))(x0)
    return x, trace


@pytest.mark.parametrize("solver", SOLVERS)
def test_damped_newton_with_line_search_reaches_the_rosenbrock_minimum(solver):
    """From (−1.2, 1) in float32: the full Newton step overshoots on the way down the curved
    valley, the line search shortens it, and the last steps converge quadratically."""
    problem = jaxgd.problems.rosenbrock()
    opt = jaxgd.chain(newton(damping=1e-3, solver=solver), scale_by_backtracking_linesearch())
    x, trace = run(opt, problem.loss_fn, problem.init_params, num_steps=50)
    np.testing.assert_allclose(x, [1.0, 1.0], rtol=0, atol=1e-6)
    step_sizes = trace[-1][1].learning_rate
    assert np.min(step_sizes) < 1, "the line search never shortened a step"


def test_line_search_after_gradient_descent_meets_armijo_and_decreases_monotonically():
    problem = jaxgd.problems.rosenbrock()
    c = 1e-4
    opt = jaxgd.chain(jaxgd.sgd(1.0), scale_by_backtracking_linesearch(slope_rtol=c))
    x, (xs, values, grads, updates, states) = run(opt, problem.loss_fn, problem.init_params, 300)
    new_values = jax.vmap(problem.loss_fn)(xs + updates)
    slopes = jax.vmap(real_vdot)(grads, updates)
    assert np.all(np.asarray(slopes) < 0)
    # Armijo, recomputed here: f(p + u) ≤ f(p) + c ⟨∇f, u⟩ (u = t d is the accepted step).
    assert np.all(new_values <= values + c * slopes + 1e-6 * np.abs(values))
    np.testing.assert_array_equal(states[1].info.decrease_error, 0.0)
    assert np.all(np.diff(np.asarray(values)) <= 0)
    assert problem.loss_fn(x) < 0.05 * values[0]


LEAST_SQUARES_X = np.random.default_rng(6).normal(size=(32, 3)).astype(np.float32)


def least_squares(w, x, y):
    return 0.5 * jnp.mean((x @ w - y) ** 2)


@pytest.mark.parametrize("direction", ["sgd", "newton"])
@pytest.mark.parametrize("problem", ["rosenbrock", "least_squares_with_data"])
def test_line_search_matches_optax(direction, problem):
    """Same accepted steps as optax's, after GD or Newton, over 100 steps."""
    if problem == "rosenbrock":
        loss, x0, data = jaxgd.problems.rosenbrock().loss_fn, jnp.array([-1.2, 1.0]), {}
    else:
        x = jnp.asarray(LEAST_SQUARES_X)
        data = {"x": x, "y": x @ jnp.array([1.0, -2.0, 0.5]) + 0.1}
        loss, x0 = least_squares, jnp.zeros(3)
    make = (lambda: jaxgd.sgd(1.0)) if direction == "sgd" else (
        lambda: newton(damping=1e-2, solver="dense"))
    settings = {"max_backtracking_steps": 20, "decrease_factor": 0.7, "increase_factor": 2.0}
    ours = jaxgd.chain(make(), scale_by_backtracking_linesearch(**settings))
    # optax.chain drops extra arguments unless a link is typed as taking them.
    direction_for_optax = optax.GradientTransformationExtraArgs(*make())
    theirs = optax.chain(direction_for_optax, optax.scale_by_backtracking_linesearch(**settings))

    def step(carry, _):
        p, s_ours, s_theirs = carry
        value, grad = jax.value_and_grad(loss)(p, **data)
        kwargs = {"value": value, "grad": grad, "value_fn": loss, **data}
        u_ours, s_ours = ours.update(grad, s_ours, p, **kwargs)
        u_theirs, s_theirs = theirs.update(grad, s_theirs, p, **kwargs)
        return (p + u_theirs, s_ours, s_theirs), (u_ours, u_theirs)

    run_both = jax.jit(lambda p: jax.lax.scan(step, (p, ours.init(p), theirs.init(p)), None, 100))
    _, (u_ours, u_theirs) = run_both(x0)
    assert np.any(np.asarray(u_theirs) != 0)
    np.testing.assert_allclose(u_ours, u_theirs, rtol=1e-5, atol=1e-7)


def test_line_search_computes_value_and_grad_when_not_given():
    problem = jaxgd.problems.rosenbrock()
    opt = jaxgd.chain(jaxgd.sgd(1.0), scale_by_backtracking_linesearch())
    p = problem.init_params
    value, grad = jax.value_and_grad(problem.loss_fn)(p)
    given, _ = opt.update(grad, opt.init(p), p, value=value, grad=grad, value_fn=problem.loss_fn)
    computed, _ = opt.update(grad, opt.init(p), p, value_fn=problem.loss_fn)
    np.testing.assert_array_equal(given, computed)


def test_line_search_takes_no_step_when_every_trial_loss_is_nan():
    def loss(x):  # defined (= x) only for x > 0.1
        return jnp.sum(jnp.where(x > 0.1, x, jnp.nan))

    opt = jaxgd.chain(jaxgd.sgd(1000.0), scale_by_backtracking_linesearch(3))
    p = jnp.ones(1)
    updates, state = opt.update(jnp.ones(1), opt.init(p), p, value_fn=loss)
    np.testing.assert_array_equal(updates, 0.0)
    # No step was accepted: the last accepted step size (the initial 1) is kept.
    assert float(state[1].learning_rate) == 1.0 and float(state[1].value) == 1.0
    assert int(state[1].info.num_linesearch_steps) == 4
    # So the next search starts from it again rather than from 0 (where it would accept
    # t = 0, and every later search too): with a shorter direction it moves.
    updates, state = opt.update(jnp.full(1, 1e-3), state, p, value_fn=loss)
    np.testing.assert_allclose(updates, -0.8, rtol=1e-6)
    assert float(state[1].learning_rate) == pytest.approx(0.8)


@pytest.mark.parametrize(
    "make",
    [
        lambda: jaxgd.chain(jaxgd.sgd(1.0), scale_by_backtracking_linesearch()),
        lambda: newton(),
        lambda: scale_by_newton(solver="dense"),
    ],
    ids=["linesearch", "newton", "scale_by_newton"],
)
def test_missing_value_fn_says_to_pass_it(make):
    opt, p = make(), jnp.ones(2)
    with pytest.raises(ValueError, match="pass value_fn="):
        opt.update(jnp.ones(2), opt.init(p), p)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: newton(damping=-0.1), "damping must be a finite number >= 0"),
        (lambda: scale_by_newton(damping=-1.0), "damping must be a finite number >= 0"),
        (lambda: newton(solver="cholesky"), r"solver must be one of \('cg', 'dense'\)"),
        (lambda: newton(cg_maxiter=0), "cg_maxiter must be None or an int >= 1"),
        (lambda: scale_by_backtracking_linesearch(-1), "max_backtracking_steps must be"),
        (lambda: scale_by_backtracking_linesearch(decrease_factor=1.0), "decrease_factor"),
        (lambda: scale_by_backtracking_linesearch(slope_rtol=1.0), "slope_rtol"),
        (lambda: scale_by_backtracking_linesearch(increase_factor=0.0), "increase_factor"),
        (lambda: scale_by_backtracking_linesearch(max_learning_rate=0.0), "max_learning_rate"),
    ],
)
def test_bad_hyperparameters_raise_when_built(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_missing_params_raise():
    opt = newton()
    with pytest.raises(ValueError, match="needs params"):
        opt.update(jnp.ones(2), opt.init(jnp.ones(2)), None, value_fn=jnp.sum)
