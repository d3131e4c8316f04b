"""Adam's relatives: optax's updates, the deliberate differences from optax, first steps in
closed form, traced hyperparameters, and convergence on a parabola and on Rosenbrock."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import nested_params, updates_side_by_side

import jaxgd
from jaxgd.transforms.adam_variants import scale_by_yogi
from jaxgd.transforms.lion import scale_by_lion

LR = 0.01
G = jnp.array([0.5, -2.0, 1e-3, 0.0, 3.0])  # a gradient with a tiny and a zero entry


def MASK(params):
    """Decay the dense kernel, the 3-D leaf and the vector; leave the rest alone."""
    return {"dense": {"w": True, "b": False}, "pair": (False, True), "stack": [True, False]}


# name -> (ours, optax's), both built with the same arguments.
PARITY = {
    "adamw": (lambda: jaxgd.adamw(LR), lambda: optax.adamw(LR)),
    "adamw_nesterov_masked": (
        lambda: jaxgd.adamw(LR, 0.8, eps_root=1e-8, weight_decay=0.1, mask=MASK, nesterov=True),
        lambda: optax.adamw(LR, 0.8, eps_root=1e-8, weight_decay=0.1, mask=MASK, nesterov=True),
    ),
    "nadam": (lambda: jaxgd.nadam(LR), lambda: optax.nadam(LR)),
    "nadamw": (
        lambda: jaxgd.nadamw(LR, weight_decay=0.05), lambda: optax.nadamw(LR, weight_decay=0.05)
    ),
    "amsgrad": (lambda: jaxgd.amsgrad(LR), lambda: optax.amsgrad(LR)),
    "amsgrad_paper_eps_root": (
        lambda: jaxgd.amsgrad(LR, eps_root=1e-8, bias_correction_mu=False,
                              bias_correction_nu=False),
        lambda: optax.amsgrad(
            LR, eps_root=1e-8, bias_correction_mu=False, bias_correction_nu=False
        ),
    ),
    "adamax": (lambda: jaxgd.adamax(LR), lambda: optax.adamax(LR)),
    "adamaxw_masked": (
        lambda: jaxgd.adamaxw(LR, weight_decay=0.1, mask=MASK),
        lambda: optax.adamaxw(LR, weight_decay=0.1, mask=MASK),
    ),
    "adabelief": (lambda: jaxgd.adabelief(LR), lambda: optax.adabelief(LR)),
    "adabelief_nesterov": (
        lambda: jaxgd.adabelief(LR, eps=1e-8, nesterov=True),
        lambda: optax.adabelief(LR, eps=1e-8, nesterov=True),
    ),
    "yogi": (lambda: jaxgd.yogi(LR), lambda: optax.yogi(LR)),
    "lion": (lambda: jaxgd.lion(LR), lambda: optax.lion(LR)),
    "lion_masked": (
        lambda: jaxgd.lion(LR, 0.8, weight_decay=0.1, mask=MASK),
        lambda: optax.lion(LR, 0.8, weight_decay=0.1, mask=MASK),
    ),
    "adadelta_with_learning_rate": (lambda: jaxgd.adadelta(LR), lambda: optax.adadelta(LR)),
    "adadelta_weight_decay_masked": (
        lambda: jaxgd.adadelta(0.5, 0.95, 1e-5, weight_decay=0.1, weight_decay_mask=MASK),
        lambda: optax.adadelta(0.5, 0.95, 1e-5, weight_decay=0.1, weight_decay_mask=MASK),
    ),
    # Blocks, for the arguments the aliases do not reach.
    "scale_by_yogi_initial_value": (
        lambda: scale_by_yogi(eps_root=1e-8, initial_accumulator_value=0.1),
        lambda: optax.scale_by_yogi(eps_root=1e-8, initial_accumulator_value=0.1),
    ),
    "scale_by_lion_smooth": (
        lambda: scale_by_lion(mode="smooth", smooth_beta=2.0),
        lambda: optax.scale_by_lion(mode="smooth", smooth_beta=2.0),
    ),
    "scale_by_lion_refined": (
        lambda: scale_by_lion(mode="refined"), lambda: optax.scale_by_lion(mode="refined")
    ),
}


@pytest.mark.parametrize("name", sorted(PARITY))
def test_matches_optax_over_100_steps(name, params):
    make_ours, make_theirs = PARITY[name]
    ours, theirs = updates_side_by_side(make_ours(), make_theirs(), params)
    assert len(ours) == len(theirs) == 6
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert np.all(np.isfinite(a))
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


# --- Deliberate differences from optax -------------------------------------------------


def _sum_of_squares_path(optimizer, num_steps=50):
    loss = lambda x: jnp.sum(x**2)  # noqa: E731

    def step(carry, _):
        x, state = carry
        updates, state = optimizer.update(jax.grad(loss)(x), state, x)
        x = optax.apply_updates(x, updates)
        return (x, state), loss(x)

    x0 = jnp.array([1.0, -2.0, 0.5, 3.0])
    _, losses = jax.lax.scan(step, (x0, optimizer.init(x0)), length=num_steps)
    return float(loss(x0)), np.asarray(losses)


def test_adadelta_with_defaults_descends_monotonically():
    start, losses = _sum_of_squares_path(jaxgd.adadelta())
    assert losses[0] < start and np.all(np.diff(losses) < 0)


def test_adadelta_default_descends_where_optax_default_climbs():
    start, optax_losses = _sum_of_squares_path(optax.adadelta())
    assert optax_losses[0] > start and np.all(np.diff(optax_losses) > 0)
    # Fed the same gradients, ours is optax's step with the sign flipped.
    ours, theirs = updates_side_by_side(jaxgd.adadelta(), optax.adadelta(), G)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, -b, rtol=1e-6)


RADAM_SETTINGS = {
    "default": {},
    "nesterov_threshold_6": {"threshold": 6.0, "nesterov": True},
    "eps_root": {"b1": 0.8, "eps_root": 1e-8},
}


@pytest.mark.parametrize("setting", sorted(RADAM_SETTINGS))
def test_radam_matches_optax_in_float64_where_optax_in_float32_drifts(setting):
    """RAdam's rho_t is a difference of two terms ~2 / (1 - b2): optax's float32 version
    loses ~1e-4 to cancellation, and takes rho_inf from the Python float b2 but b2^t from
    float32 (0.026 apart at 0.999). Ours, in float32, agrees with optax in float64."""
    kwargs = RADAM_SETTINGS[setting]
    grads = np.random.default_rng(0).normal(size=(40, 16)).astype(np.float32)

    def updates(optimizer, dtype):
        def step(state, g):
            u, state = optimizer.update(g, state)
            return state, u

        gs = jnp.asarray(grads, dtype)
        return np.asarray(jax.lax.scan(step, optimizer.init(gs[0]), gs)[1], np.float64)

    with jax.enable_x64(True):
        exact = updates(optax.radam(LR, **kwargs), jnp.float64)
    ours = updates(jaxgd.radam(LR, **kwargs), jnp.float32)
    np.testing.assert_allclose(ours, exact, rtol=1e-5, atol=1e-9)
    theirs = updates(optax.radam(LR, **kwargs), jnp.float32)
    assert not np.allclose(theirs, exact, rtol=1e-4, atol=1e-9)


def test_radam_below_four_stays_finite_where_optax_is_nan():
    """With threshold 3, optax takes sqrt of a negative on the steps with 3 <= rho_t < 4."""
    grads = jnp.array([0.3, -1.0, 2.0])

    def total_update(make, g, num_steps=4):
        opt = make(LR, threshold=3.0)
        state, total = opt.init(g), jnp.zeros_like(g)
        for _ in range(num_steps):
            updates, state = opt.update(g, state, g)
            total = total + updates
        return jnp.sum(total)

    assert np.isnan(jax.jit(total_update, static_argnums=0)(optax.radam, grads))
    ours = jax.jit(total_update, static_argnums=0)(jaxgd.radam, grads)
    # rho_t = 1.0, 1.99, 3.01, 3.99 for b2 = 0.999: every step is unrectified,
    # -lr * m_hat = -lr * g for a constant gradient.
    np.testing.assert_allclose(ours, -4 * LR * jnp.sum(grads), rtol=1e-5)


def test_radam_gradient_through_unrectified_steps_is_finite():
    """optax evaluates r_t at rho_t < 4 too (sqrt of a negative) and discards it with
    jnp.where, whose gradient is then 0 * NaN."""
    def first_steps(g, make):
        opt = make(LR)
        state, total = opt.init(g), jnp.zeros_like(g)
        for _ in range(3):
            updates, state = opt.update(g, state, g)
            total = total + updates
        return jnp.sum(total**2)

    g = jnp.array([0.3, -1.0, 2.0])
    gradient = jax.jit(jax.grad(first_steps), static_argnums=1)
    assert np.any(np.isnan(gradient(g, optax.radam)))
    ours = gradient(g, jaxgd.radam)
    np.testing.assert_allclose(ours, 2 * 9 * LR**2 * g, rtol=1e-5)


# --- First steps in closed form ----------------------------------------------------------

# name -> (optimizer, expected first update for gradient G at params G).
FIRST_STEPS = {
    "adamw": (jaxgd.adamw(LR, weight_decay=0.1), -LR * (G / (jnp.abs(G) + 1e-8) + 0.1 * G)),
    "amsgrad": (jaxgd.amsgrad(LR), -LR * G / (jnp.abs(G) + 1e-8)),
    "adamax": (jaxgd.adamax(LR), -LR * G / (jnp.abs(G) + 1e-8)),
    "radam": (jaxgd.radam(LR), -LR * G),
    "lion": (jaxgd.lion(LR, weight_decay=0.0), -LR * jnp.sign(G)),
    "adadelta": (jaxgd.adadelta(), -jnp.sqrt(1e-6 / (0.1 * G**2 + 1e-6)) * G),
}


@pytest.mark.parametrize("name", sorted(FIRST_STEPS))
def test_first_step_in_closed_form(name):
    optimizer, expected = FIRST_STEPS[name]
    updates, _ = optimizer.update(G, optimizer.init(G), G)
    np.testing.assert_allclose(updates, expected, rtol=1e-5, atol=1e-9)


# --- Hyperparameters ------------------------------------------------------------------

ALIASES = {
    name: getattr(jaxgd, name)
    for name in ("adamw", "nadam", "nadamw", "amsgrad", "adamax", "adamaxw", "radam",
                 "adabelief", "yogi", "lion", "adadelta")
}


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_numeric_hyperparameters_live_in_the_state(name):
    alias = ALIASES[name]
    numeric = {
        k for k, v in jaxgd.hyperparam_names(alias).items()
        if isinstance(v, float) and not isinstance(v, bool)
        and not (k == "weight_decay" and v == 0)  # a zero decay is no block at all
    }
    state = alias(learning_rate=0.1).init(G)
    assert set(jaxgd.get_hyperparams(state)) == numeric | {"learning_rate"}


def test_adadelta_default_learning_rate_is_fixed():
    state = jaxgd.adadelta().init(G)
    assert "learning_rate" not in jaxgd.get_hyperparams(state)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: jaxgd.amsgrad(LR, b1=1.0), r"b1 must be in \[0, 1\)"),
        (lambda: jaxgd.adamaxw(LR, eps=0.0), "eps must be a finite number > 0"),
        (lambda: jaxgd.radam(LR, threshold=float("nan")), "threshold must be a finite number"),
        (lambda: jaxgd.yogi(LR, b2=-0.1), r"b2 must be in \[0, 1\)"),
        (lambda: jaxgd.lion(LR, weight_decay=-1.0), "weight_decay must be a finite number >= 0"),
        (lambda: jaxgd.adadelta(rho=1.5), r"rho must be in \[0, 1\)"),
        (lambda: jaxgd.adabelief(-1.0), "learning_rate must be a finite number >= 0"),
        (lambda: scale_by_lion(mode="soft"), "mode must be one of"),
    ],
)
def test_bad_hyperparameters_raise_naming_the_argument(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_vmapped_radam_thresholds_equal_separate_runs():
    """The threshold and the step count are traced: the switch is a jnp.where."""
    grads = nested_params(3)

    def run(threshold):
        opt = jaxgd.radam(0.1, threshold=threshold)
        state, params = opt.init(grads), grads
        for _ in range(8):
            updates, state = opt.update(grads, state, params)
            params = jaxgd.apply_updates(params, updates)
        return params

    thresholds = jnp.array([2.0, 5.0, 6.5, 100.0])
    swept = jax.jit(jax.vmap(run))(thresholds)
    single_run = jax.jit(run)
    for i, threshold in enumerate(thresholds):
        single = single_run(threshold)
        for a, b in zip(jax.tree.leaves(swept), jax.tree.leaves(single), strict=True):
            np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_low_precision_leaves_keep_their_dtype(name):
    params = {"w": jnp.ones(3, jnp.bfloat16), "b": jnp.ones(2, jnp.float16)}
    optimizer = ALIASES[name](learning_rate=1e-2)
    updates, state = optimizer.update(params, optimizer.init(params), params)
    assert jax.tree.map(lambda u: u.dtype, updates) == jax.tree.map(lambda p: p.dtype, params)
    for moment in jax.tree.leaves(state.inner_state[0]):
        if moment.ndim:
            assert moment.dtype in (jnp.bfloat16, jnp.float16)


# --- Convergence ------------------------------------------------------------------------

# Learning rates tuned with a jax.vmap over jnp.logspace(-4, 0.5, 46): each is near the
# geometric middle of the range that ends within 1e-2 of the minimum (3x inside the test's
# tolerance). Adadelta's parabola value is its default (None, a unit step).
# name -> (parabola, Rosenbrock)
TUNED_LEARNING_RATES = {
    "adamw": (0.02, 0.01),
    "nadam": (0.05, 0.005),
    "nadamw": (0.02, 0.005),
    "amsgrad": (0.1, 0.5),
    "adamax": (0.05, 0.01),
    "adamaxw": (0.05, 0.02),
    "radam": (0.05, 0.0025),
    "adabelief": (0.02, 0.005),
    "yogi": (0.1, 0.1),
    "lion": (0.0025, 0.001),
    "adadelta": (None, 0.04),
}
PARABOLA_CURVATURE = jnp.array([1.0, 10.0])
PARABOLA_MINIMUM = jnp.array([1.0, -2.0])
PARABOLA_STEPS, ROSENBROCK_STEPS = 5_000, 10_000


def _parabola(x):
    return 0.5 * jnp.sum(PARABOLA_CURVATURE * (x - PARABOLA_MINIMUM) ** 2)


def _minimize(optimizer, loss, x0, num_steps):
    def body(_, carry):
        x, state = carry
        updates, state = optimizer.update(jax.grad(loss)(x), state, x)
        return jaxgd.apply_updates(x, updates), state

    return jax.lax.fori_loop(0, num_steps, body, (x0, optimizer.init(x0)))[0]


@pytest.mark.parametrize("name", sorted(TUNED_LEARNING_RATES))
def test_reaches_the_minimum_of_a_parabola_and_of_rosenbrock(name):
    alias = ALIASES[name]
    lr_parabola, lr_rosenbrock = TUNED_LEARNING_RATES[name]
    rosenbrock = jaxgd.problems.rosenbrock()
    x0 = rosenbrock.init_params

    @jax.jit
    def both():
        return (
            _minimize(alias(lr_parabola), _parabola, x0, PARABOLA_STEPS),
            _minimize(alias(lr_rosenbrock), rosenbrock.loss_fn, x0, ROSENBROCK_STEPS),
        )

    at_parabola, at_rosenbrock = both()
    np.testing.assert_allclose(at_parabola, PARABOLA_MINIMUM, rtol=3e-2, atol=3e-2)
    np.testing.assert_allclose(at_rosenbrock, rosenbrock.optimum, rtol=3e-2, atol=3e-2)
