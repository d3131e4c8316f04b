"""LAMB, LARS, NovoGrad, Fromage, Adafactor, SM3, noisy/sign SGD, Rprop, Polyak SGD, optimistic
GD and L-BFGS: optax parity, documented differences, convergence, hyperparameters, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import nested_params, random_like

import jaxgd
from jaxgd.core.hyperparam_state import get_hyperparams, set_hyperparams
from jaxgd.optimizers.adafactor import adafactor
from jaxgd.optimizers.layerwise import fromage, lamb, lars, novograd
from jaxgd.optimizers.lbfgs import lbfgs
from jaxgd.optimizers.optimistic import optimistic_gradient_descent
from jaxgd.optimizers.polyak import polyak_sgd
from jaxgd.optimizers.sgd import noisy_sgd
from jaxgd.optimizers.sign import rprop, sign_sgd
from jaxgd.optimizers.sm3 import sm3
from jaxgd.transforms.lbfgs import scale_by_lbfgs
from jaxgd.transforms.linesearch import ScaleByBacktrackingLinesearchState

LR = 0.01
ROSENBROCK = jaxgd.problems.rosenbrock()


def by_ndim(predicate):
    return lambda tree: jax.tree.map(lambda x: predicate(jnp.ndim(x)), tree)


def zero_bias(params):
    return {**params, "dense": {**params["dense"], "b": jnp.zeros_like(params["dense"]["b"])}}


def without_scalars(params):
    """optax's SM3 fails on rank-0 leaves (see the SM3 test below): give the scalar a shape."""
    scalar, cube = params["pair"]
    return {**params, "pair": (jnp.reshape(scalar, (1,)), cube)}


# name -> (ours, optax's[, params transform]), fed the same random gradients for 100
# steps.
PARITY = {
    "lamb": (lambda: lamb(LR), lambda: optax.lamb(LR)),
    "lamb_decay_masked": (
        lambda: lamb(LR, b1=0.8, eps_root=1e-8, weight_decay=0.1, mask=by_ndim(lambda n: n > 1)),
        lambda: optax.lamb(LR, b1=0.8, eps_root=1e-8, weight_decay=0.1,
                           mask=by_ndim(lambda n: n > 1)),
    ),
    "lars": (lambda: lars(LR), lambda: optax.lars(LR)),
    "lars_masks_nesterov": (
        lambda: lars(LR, weight_decay=0.1, weight_decay_mask=by_ndim(lambda n: n > 0),
                     trust_ratio_mask=by_ndim(lambda n: n > 1), eps=1e-3, nesterov=True),
        lambda: optax.lars(LR, weight_decay=0.1, weight_decay_mask=by_ndim(lambda n: n > 0),
                           trust_ratio_mask=by_ndim(lambda n: n > 1), eps=1e-3, nesterov=True),
    ),
    "novograd": (lambda: novograd(LR), lambda: optax.novograd(LR)),
    "novograd_decay": (
        lambda: novograd(LR, b1=0.5, b2=0.9, eps_root=1e-6, weight_decay=0.1),
        lambda: optax.novograd(LR, b1=0.5, b2=0.9, eps_root=1e-6, weight_decay=0.1),
    ),
    "fromage": (lambda: fromage(LR), lambda: optax.fromage(LR)),
    "fromage_schedule": (
        lambda: fromage(optax.linear_schedule(0.1, 0.01, 50)),
        lambda: optax.fromage(optax.linear_schedule(0.1, 0.01, 50)),
    ),
    "adafactor": (adafactor, optax.adafactor),
    "adafactor_factored_everything": (
        lambda: adafactor(LR, min_dim_size_to_factor=2, decay_rate=0.5, momentum=0.9,
                          weight_decay_rate=0.01, weight_decay_mask=by_ndim(lambda n: n > 1)),
        lambda: optax.adafactor(LR, min_dim_size_to_factor=2, decay_rate=0.5, momentum=0.9,
                                weight_decay_rate=0.01,
                                weight_decay_mask=by_ndim(lambda n: n > 1)),
    ),
    "adafactor_unfactored_unclipped": (
        lambda: adafactor(LR, factored=False, clipping_threshold=None,
                          multiply_by_parameter_scale=False),
        lambda: optax.adafactor(LR, factored=False, clipping_threshold=None,
                                multiply_by_parameter_scale=False),
    ),
    "sm3": (lambda: sm3(LR), lambda: optax.sm3(LR), without_scalars),
    # A zero leaf has trust ratio 1 (else it could never move).
    "lamb_zero_leaf": (lambda: lamb(LR), lambda: optax.lamb(LR), zero_bias),
    "fromage_zero_leaf": (lambda: fromage(LR), lambda: optax.fromage(LR), zero_bias),
    "noisy_sgd": (
        lambda: noisy_sgd(LR, 0.1, 0.3, key=jax.random.key(7)),
        lambda: optax.noisy_sgd(LR, 0.1, 0.3, key=jax.random.key(7)),
    ),
    "sign_sgd": (lambda: sign_sgd(LR), lambda: optax.sign_sgd(LR)),
    "optimistic_gradient_descent_alpha_beta_swapped": (
        lambda: optimistic_gradient_descent(LR, 0.5, 2.0),
        lambda: optax.optimistic_gradient_descent(LR, 0.5, 2.0),
    ),
}




def run_pairs(pairs, num_steps, seed=1):
    """``conftest.updates_side_by_side`` for many pairs at once: one jitted scan (one XLA
    compilation, the bulk of the cost) in which every pair follows its own reference
    trajectory. ``pairs``: name -> (ours, theirs, params[, loss]).

    Without a loss, every step feeds both the same random gradients (the draws of
    ``updates_side_by_side``, made once per tree shape: drawing is costly to compile).
    With one, the gradient of the pair's loss at the reference's parameters, and
    ``value``, ``grad``, ``value_fn`` as extra arguments.
    Returns name -> (our update leaves, optax's), each stacked over the steps.
    """

    def step(carry, key):
        new_carry, out, draws = {}, {}, {}
        for name, (ours, theirs, _, *loss) in pairs.items():
            p, s_ours, s_theirs = carry[name]
            if loss:
                value, grads = jax.value_and_grad(loss[0])(p)
                extra = {"value": value, "grad": grads, "value_fn": loss[0]}
            else:
                shapes = str(jax.tree.map(jnp.shape, p))
                if shapes not in draws:
                    draws[shapes] = random_like(p, key)
                grads, extra = draws[shapes], {}
            u_ours, s_ours = ours.update(grads, s_ours, p, **extra)
            u_theirs, s_theirs = theirs.update(grads, s_theirs, p, **extra)
            new_carry[name] = (jax.tree.map(jnp.add, p, u_theirs), s_ours, s_theirs)
            out[name] = (u_ours, u_theirs)
        return new_carry, out

    def run(all_params):
        start = {name: (all_params[name], ours.init(all_params[name]),
                        theirs.init(all_params[name]))
                 for name, (ours, theirs, *_) in pairs.items()}
        return jax.lax.scan(step, start, jax.random.split(jax.random.PRNGKey(seed), num_steps))[1]

    out = jax.jit(run)({name: pair[2] for name, pair in pairs.items()})
    return {name: tuple(map(jax.tree.leaves, out[name])) for name in pairs}


def assert_same_updates(ours, theirs, atol=1e-7):
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert np.all(np.isfinite(a)) and np.any(a != 0)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=atol)


def test_matches_optax_over_100_steps(subtests):
    """Every pair of :data:`PARITY`, and Rprop's lagging step below, in one compiled run
    (one test, so that the run is not repeated on each pytest-xdist worker)."""
    params = nested_params()
    pairs = {name: (ours(), theirs(), transform[0](params) if transform else params)
             for name, (ours, theirs, *transform) in PARITY.items()}
    pairs["rprop_lagging"] = (rprop(LR), optax.rprop(LR), params)
    runs = run_pairs(pairs, num_steps=100)
    for name in sorted(PARITY):
        with subtests.test(name):
            ours, theirs = runs[name]
            assert len(ours) == 6
            assert_same_updates(ours, theirs)
    with subtests.test("rprop_lagging"):
        check_rprop_lags_one_step(*runs["rprop_lagging"])


# --- Transformations that need the loss: fed the gradients of a smooth loss. ---


def nested_loss(params):
    """A strictly convex, non-quadratic loss over every leaf of a nested tree."""

    def leaf_loss(x):
        curvature = jnp.linspace(0.5, 3.0, x.size).reshape(x.shape)
        return jnp.sum(curvature * (x - 0.5) ** 2 + 0.1 * x**4)

    return sum(leaf_loss(x) for x in jax.tree.leaves(params))


def zoom():
    """optax.lbfgs's default line search."""
    return optax.scale_by_zoom_linesearch(max_linesearch_steps=20, initial_guess_strategy="one")


# name -> (ours, optax's, loss, params), 30 steps.
LOSS_PARITY = {
    "polyak_sgd": (polyak_sgd, optax.polyak_sgd, nested_loss, nested_params()),
    "polyak_sgd_plus_capped": (
        lambda: polyak_sgd(0.05, f_min=2.0, eps=1e-3, variant="sps+"),
        lambda: optax.polyak_sgd(0.05, f_min=2.0, eps=1e-3, variant="sps+"),
        nested_loss, nested_params(),
    ),
    "lbfgs_fixed_step": (
        lambda: lbfgs(linesearch=None), lambda: optax.lbfgs(linesearch=None),
        nested_loss, nested_params(),
    ),
    "lbfgs_memory_3_unscaled_lr": (
        lambda: lbfgs(0.1, memory_size=3, scale_init_precond=False, linesearch=None),
        lambda: optax.lbfgs(0.1, memory_size=3, scale_init_precond=False, linesearch=None),
        nested_loss, nested_params(),
    ),
    "lbfgs_with_optax_zoom_is_optax_lbfgs": (
        lambda: lbfgs(linesearch=zoom()), optax.lbfgs, nested_loss, nested_params(),
    ),
    "lbfgs_with_optax_zoom_on_rosenbrock": (
        lambda: lbfgs(linesearch=zoom()), optax.lbfgs,
        ROSENBROCK.loss_fn, ROSENBROCK.init_params,
    ),
}


def test_matches_optax_on_a_loss_with_extra_args(subtests):
    """Every pair of :data:`LOSS_PARITY` in one compiled run; L-BFGS's defaults differ
    from optax's (its line search, see below)."""
    pairs = {name: (ours(), theirs(), params, loss)
             for name, (ours, theirs, loss, params) in LOSS_PARITY.items()}
    pairs["lbfgs_defaults"] = (lbfgs(), optax.lbfgs(), ROSENBROCK.init_params,
                               ROSENBROCK.loss_fn)
    runs = run_pairs(pairs, num_steps=30)
    for name in sorted(LOSS_PARITY):
        with subtests.test(name):
            assert_same_updates(*runs[name], atol=1e-6)
    with subtests.test("lbfgs_defaults"):
        ours, theirs = runs["lbfgs_defaults"]
        assert not np.allclose(ours[0], theirs[0], rtol=1e-3)


def test_scale_by_lbfgs_matches_optax_on_random_gradients_in_float64():
    """Random gradients make the L-BFGS pairs arbitrarily ill-conditioned (updates reach
    1e24), so float32 rounding (one flat dot product here, one per leaf in optax) is
    amplified to ~1e-2. In float64 the two agree to ~1e-12: the rule is the same."""
    with jax.enable_x64(True):
        params = jax.tree.map(lambda x: x.astype(jnp.float64), nested_params())
        runs = run_pairs({"lbfgs": (scale_by_lbfgs(), optax.scale_by_lbfgs(), params)}, 100)
        ours, theirs = runs["lbfgs"]
        assert ours[0].dtype == jnp.float64
        assert_same_updates(ours, theirs)


# --- Deliberate differences from optax 0.2.8, each shown. ---


def test_sm3_handles_scalar_leaves_where_optax_raises():
    scalar = {"s": jnp.array(0.7)}
    with pytest.raises(IndexError):
        optax.sm3(LR).update(scalar, optax.sm3(LR).init(scalar), scalar)
    # A scalar is treated as the one-element vector it is (AdaGrad with momentum).
    runs = run_pairs({"scalar": (sm3(LR), sm3(LR), scalar),
                      "vector": (sm3(LR), optax.sm3(LR), {"s": jnp.array([0.7])})}, 20)
    (scalar_updates,), _ = runs["scalar"]
    (vector_updates,), (optax_vector_updates,) = runs["vector"]
    assert scalar_updates.shape == (20,)
    np.testing.assert_allclose(scalar_updates, vector_updates[:, 0], rtol=1e-6)
    # Against optax, the tolerance of every parity test here: 1 - b1 is rounded from
    # float32(0.9) in jaxgd (hyperparameters are arrays), from the float 0.9 in optax, a
    # 2e-7 relative difference that reaches 1.1e-6 in 20 steps on some CPUs (AMD EPYC);
    # with momentum=0.5, exact in float32, the two are bitwise equal.
    assert_same_updates((vector_updates,), (optax_vector_updates,))


def check_rprop_lags_one_step(ours, theirs):
    """Rprop steps with the current gradient, where optax returns the step computed at
    the *previous* call (0 at the first one). Both keep the same state; only the
    returned update differs."""
    first_grads = random_like(nested_params(), jax.random.split(jax.random.PRNGKey(1), 100)[0])
    for a, b, g0 in zip(ours, theirs, jax.tree.leaves(first_grads), strict=True):
        a, b = np.asarray(a), np.asarray(b)
        np.testing.assert_array_equal(b[0], 0)
        np.testing.assert_allclose(a[0], -LR * np.sign(g0), rtol=1e-6)
        # optax's step t+1 is ours of step t, except where the sign flipped (then 0).
        lagged, current = b[1:], a[:-1]
        np.testing.assert_array_equal(lagged[lagged != 0], current[lagged != 0])
        assert np.mean(lagged != 0) > 0.2


@pytest.mark.parametrize("variant", ["sps", "sps+"])
def test_polyak_below_f_min_climbs_with_sps_and_stops_with_sps_plus(variant):
    grads = {"w": jnp.array([1.0, -2.0])}
    ours, theirs = (opt.update(grads, opt.init(grads), grads, value=1.0)[0]["w"]
                    for opt in (polyak_sgd(f_min=2.0, variant=variant),
                                optax.polyak_sgd(f_min=2.0, variant=variant)))
    # gap = 1 - 2 = -1, ||g||^2 = 5: sps steps by +g/5 (ascent), sps+ not at all.
    expected = grads["w"] / 5 if variant == "sps" else jnp.zeros(2)
    np.testing.assert_allclose(ours, expected, rtol=1e-6)
    np.testing.assert_allclose(theirs, expected, rtol=1e-6)


def test_polyak_scaling_multiplies_the_step_where_optax_divides_it():
    """optax scales the gradient before computing the Polyak step, which gives
    min(gap / (s ||g||^2), s * max_lr): a scaling of 0.5 doubles its uncapped step."""
    params = nested_params()
    value, grads = jax.value_and_grad(nested_loss)(params)

    @jax.jit
    def steps(params):
        return [jax.tree.leaves(opt.update(grads, opt.init(params), params, value=value)[0])
                for opt in (polyak_sgd(max_learning_rate=100.0),
                            polyak_sgd(max_learning_rate=100.0, scaling=0.5),
                            optax.polyak_sgd(max_learning_rate=100.0, scaling=0.5))]

    unscaled, ours, theirs = steps(params)
    for u, a, b in zip(unscaled, ours, theirs, strict=True):
        np.testing.assert_allclose(a, 0.5 * u, rtol=1e-6)
        np.testing.assert_allclose(b, 2.0 * u, rtol=1e-6)


def test_lbfgs_default_line_search_is_backtracking_not_optax_zoom():
    """Different searches, different steps (checked above); both reach the Rosenbrock
    minimum."""
    state = lbfgs().init(ROSENBROCK.init_params)
    is_search = lambda x: isinstance(x, ScaleByBacktrackingLinesearchState)  # noqa: E731
    assert sum(map(is_search, jax.tree.leaves(state, is_leaf=is_search))) == 1
    for opt in (lbfgs(), optax.lbfgs()):
        final = minimize(opt, ROSENBROCK.loss_fn, 200)
        np.testing.assert_allclose(final, ROSENBROCK.optimum, rtol=3e-2, atol=3e-2)


# --- Convergence on a parabola and on Rosenbrock, from (-1.2, 1). ---

PARABOLA_MINIMUM = jnp.array([1.0, -0.5])


def parabola(p):
    d = p - PARABOLA_MINIMUM
    return d[0] ** 2 + 10.0 * d[1] ** 2


def minimize(opt, loss, num_steps, x0=ROSENBROCK.init_params):
    """``num_steps`` of ``opt`` in one jitted scan; every extra argument is passed (the
    aliases ignore those they do not need)."""

    def step(carry, _):
        x, state = carry
        value, grad = jax.value_and_grad(loss)(x)
        updates, state = opt.update(grad, state, x, value=value, grad=grad, value_fn=loss)
        return (jaxgd.apply_updates(x, updates), state), None

    run = jax.jit(lambda x: jax.lax.scan(step, (x, opt.init(x)), None, length=num_steps)[0][0])
    return run(x0)


# Tuned with a jax.vmap over jnp.logspace(-4, 0, 17) learning rates (10,000 steps, then
# refined): a value in the middle of the converging range where there is one.
# alias -> (factory of the learning rate, lr on the parabola, lr on Rosenbrock)
CONVERGENCE = {
    "lamb": (lamb, 3.2e-3, 3.2e-3),
    "lars": (lars, 0.56, 0.56),
    "novograd": (novograd, 1e-3, 1e-3),
    "fromage": (fromage, 3.2e-3, 3.2e-3),
    "adafactor": (adafactor, 5.6e-3, 5.6e-3),
    "sm3": (sm3, 0.56, 0.56),
    "noisy_sgd": (lambda lr: noisy_sgd(lr, key=0), 1.8e-3, 1.8e-3),
    # Sign steps have a fixed length: they need a decaying rate to settle in the valley.
    "sign_sgd": (sign_sgd, 1e-2, jaxgd.exponential_decay(1e-2, 10_000, 1e-3)),
    "rprop": (rprop, 1e-3, 1e-3),  # initial step size; converges for any in [1e-4, 1]
    "polyak_sgd": (polyak_sgd, 1.0, 1.0),  # max_learning_rate; f_min = 0 is exact here
    # With beta = 1 the iteration is stable only for lr * L < 2/3 (GD: 2), too slow for
    # Rosenbrock's condition number 2508 in 10,000 steps; beta = 0.1 keeps it GD-like.
    "optimistic_gradient_descent": (
        lambda lr: optimistic_gradient_descent(lr, beta=0.1), 1e-2, 1.3e-3),
    "lbfgs": (lambda lr: lbfgs(lr), None, None),  # the line search picks the step
}
NUM_STEPS = {"lbfgs": 200}


@pytest.mark.parametrize("problem", ["parabola", "rosenbrock"])
@pytest.mark.parametrize("name", sorted(CONVERGENCE))
def test_reaches_the_minimum(name, problem):
    make, lr_parabola, lr_rosenbrock = CONVERGENCE[name]
    if problem == "parabola":
        loss, optimum, lr = parabola, PARABOLA_MINIMUM, lr_parabola
    else:
        loss, optimum, lr = ROSENBROCK.loss_fn, ROSENBROCK.optimum, lr_rosenbrock
    final = minimize(make(lr), loss, NUM_STEPS.get(name, 10_000))
    np.testing.assert_allclose(final, optimum, rtol=3e-2, atol=3e-2)


# --- Hyperparameters live in the state: vmappable, settable, structural ones static. ---

HYPERPARAMS = {
    # A weight decay of exactly 0 is no decay block (and fixed): build with a non-zero one.
    "lamb": (lamb(LR, weight_decay=1e-4), {"learning_rate", "b1", "b2", "eps", "eps_root",
                                           "weight_decay"}),
    "lars": (lars(LR, weight_decay=1e-4), {"learning_rate", "weight_decay",
                                           "trust_coefficient", "eps", "momentum"}),
    "novograd": (novograd(LR, weight_decay=1e-4), {"learning_rate", "b1", "b2", "eps",
                                                   "eps_root", "weight_decay"}),
    "fromage": (fromage(LR), {"learning_rate", "min_norm"}),
    "adafactor": (adafactor(LR), {"learning_rate", "decay_rate", "decay_offset",
                                  "clipping_threshold", "eps"}),
    "sm3": (sm3(LR), {"learning_rate", "momentum"}),
    "noisy_sgd": (noisy_sgd(LR, key=1), {"learning_rate", "eta", "gamma"}),
    "sign_sgd": (sign_sgd(LR), {"learning_rate"}),
    "rprop": (rprop(LR), {"learning_rate", "eta_minus", "eta_plus", "min_step_size",
                          "max_step_size"}),
    "polyak_sgd": (polyak_sgd(), {"max_learning_rate", "scaling", "f_min", "eps"}),
    "optimistic_gradient_descent": (optimistic_gradient_descent(LR),
                                    {"learning_rate", "alpha", "beta"}),
    "lbfgs": (lbfgs(LR), {"learning_rate"}),
}


@pytest.mark.parametrize("name", sorted(HYPERPARAMS))
def test_numeric_hyperparameters_are_in_the_state_and_structural_ones_are_not(name):
    opt, expected = HYPERPARAMS[name]
    assert set(get_hyperparams(opt.init(ROSENBROCK.init_params))) == expected


SWEPT = {name: make for name, (make, *_) in CONVERGENCE.items() if name != "sign_sgd"}
SWEPT["sign_sgd"] = sign_sgd


@pytest.mark.parametrize("name", sorted(SWEPT))
def test_vmap_over_learning_rates_equals_separate_runs(name):
    """No Python branch on a hyperparameter value: each lane of a vmapped sweep is its own
    run (float64, see test_hyperparams.py for why)."""
    make = SWEPT[name]
    with jax.enable_x64(True):
        x0 = jnp.asarray(ROSENBROCK.init_params, jnp.float64)
        lrs = jnp.array([1e-3, 4e-3], jnp.float64)
        swept = jax.vmap(lambda lr: minimize(make(lr), parabola, 20, x0))(lrs)
        single = minimize(make(4e-3), parabola, 20, x0)
        assert swept.dtype == jnp.float64
        np.testing.assert_allclose(swept[1], single, rtol=1e-6)
        assert not np.allclose(swept[0], swept[1])


def test_changing_a_hyperparameter_does_not_retrace_and_takes_effect():
    traces = []
    opt = lars(0.1)

    @jax.jit
    def step(x, state):
        traces.append(1)
        updates, state = opt.update(jax.grad(parabola)(x), state, x)
        return updates, state

    state = opt.init(ROSENBROCK.init_params)
    before, _ = step(ROSENBROCK.init_params, state)
    after, _ = step(ROSENBROCK.init_params, set_hyperparams(state, learning_rate=0.05))
    assert len(traces) == 1
    np.testing.assert_allclose(after, 0.5 * before, rtol=1e-6)


# --- Noise: the key lives in the state. ---


def test_noisy_sgd_noise_has_the_annealed_variance_and_a_fresh_draw_each_step():
    eta, gamma = 0.5, 0.55
    opt = noisy_sgd(1.0, eta, gamma, key=4)
    zeros = jnp.zeros(200_000)
    state = opt.init(zeros)
    draws = []
    for _ in range(3):
        updates, state = opt.update(zeros, state)
        draws.append(np.asarray(updates))
    for t, draw in enumerate(draws, start=1):
        np.testing.assert_allclose(np.std(draw), np.sqrt(eta / t**gamma), rtol=1e-2)
    assert abs(np.corrcoef(draws[0], draws[1])[0, 1]) < 1e-2


def test_noisy_sgd_seed_is_the_same_as_key_and_other_keys_differ():
    grads = {"w": jnp.ones(5)}

    def first_update(opt):
        return opt.update(grads, opt.init(grads))[0]["w"]

    np.testing.assert_array_equal(first_update(noisy_sgd(LR, seed=5)),
                                  first_update(noisy_sgd(LR, key=5)))
    for same in (jax.random.key(5), jax.random.PRNGKey(5)):
        np.testing.assert_array_equal(first_update(noisy_sgd(LR, key=5)),
                                      first_update(noisy_sgd(LR, key=same)))
        np.testing.assert_array_equal(first_update(noisy_sgd(LR, key=5)),
                                      first_update(optax.noisy_sgd(LR, key=5)))
    assert not np.allclose(first_update(noisy_sgd(LR, key=5)),
                           first_update(noisy_sgd(LR, key=6)))


# --- Errors name the problem. ---


def test_polyak_sgd_without_the_loss_value_says_to_pass_value():
    opt = polyak_sgd()
    x = ROSENBROCK.init_params
    with pytest.raises(ValueError, match=r"value=loss"):
        opt.update(x, opt.init(x), x)


def test_lbfgs_without_value_fn_says_to_pass_value_fn():
    opt = lbfgs()
    x = ROSENBROCK.init_params
    with pytest.raises(ValueError, match="value_fn="):
        opt.update(x, opt.init(x), x, value=ROSENBROCK.loss_fn(x), grad=x)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: lbfgs(memory_size=0), "memory_size must be an int >= 1"),
        (lambda: polyak_sgd(variant="sps-"), "variant must be one of"),
        (lambda: noisy_sgd(LR, key=1, seed=1), "key or seed, not both"),
        (lambda: noisy_sgd(LR, key="abc"), "key must be an int seed or a PRNG key"),
        (lambda: rprop(0.0), "learning_rate must be a finite number > 0"),
        (lambda: lamb(LR, b2=1.0), r"b2 must be in \[0, 1\)"),
        (lambda: sm3(-1.0), "learning_rate must be a finite number >= 0"),
        (lambda: adafactor(clipping_threshold=0.0), "threshold must be a finite number > 0"),
        (lambda: fromage(LR, min_norm=-1.0), "min_norm must be a finite number >= 0"),
    ],
)
def test_bad_arguments_raise_when_built(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


@pytest.mark.parametrize("make", [lamb, lars, fromage, novograd, adafactor, lbfgs])
def test_transformations_that_need_params_say_so(make):
    opt = make(LR)
    x = ROSENBROCK.init_params
    with pytest.raises(ValueError, match="needs params"):
        opt.update(x, opt.init(x), None, value_fn=ROSENBROCK.loss_fn)
