"""AdEMAMix, simplified AdEMAMix and Sophia: optax.contrib's updates over 100 steps, under
jit, vmap, jaxgd.sweep and jaxgd.fit, and their argument errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from catalog_tiers import catalog_params
from conftest import nested_params, updates_side_by_side
from optax import contrib
from optax.contrib._sophia import scale_by_sophia as optax_scale_by_sophia

import jaxgd
from jaxgd.core.base import flatten_invariant, is_flatten_invariant
from jaxgd.sweep import trial_keys

LR = 0.01


def warmup(start, end, steps):
    return optax.linear_schedule(start, end, steps)


# name -> (jaxgd's, optax's), fed the same gradients by updates_side_by_side.
TWINS = {
    "ademamix": (lambda: jaxgd.ademamix(LR), lambda: contrib.ademamix(LR)),
    "ademamix_schedules_decay": (
        lambda: jaxgd.ademamix(LR, b1=0.8, b3=warmup(0.9, 0.999, 60),
                               alpha=warmup(0.0, 8.0, 60), eps_root=1e-8, weight_decay=0.1),
        lambda: contrib.ademamix(LR, b1=0.8, b3=warmup(0.9, 0.999, 60),
                                 alpha=warmup(0.0, 8.0, 60), eps_root=1e-8, weight_decay=0.1),
    ),
    "scale_by_ademamix": (jaxgd.scale_by_ademamix, contrib.scale_by_ademamix),
    "scale_by_ademamix_schedules": (
        lambda: jaxgd.scale_by_ademamix(b3=warmup(0.9, 0.999, 60), alpha=warmup(1.0, 6.0, 60)),
        lambda: contrib.scale_by_ademamix(b3=warmup(0.9, 0.999, 60),
                                          alpha=warmup(1.0, 6.0, 60)),
    ),
    "simplified_ademamix": (lambda: jaxgd.simplified_ademamix(LR),
                            lambda: contrib.simplified_ademamix(LR)),
    "simplified_ademamix_alpha_decay": (
        lambda: jaxgd.simplified_ademamix(LR, b1=0.9, b2=0.99, alpha=warmup(0.0, 2.0, 50),
                                          weight_decay=0.1),
        lambda: contrib.simplified_ademamix(LR, b1=0.9, b2=0.99, alpha=warmup(0.0, 2.0, 50),
                                            weight_decay=0.1),
    ),
    "scale_by_simplified_ademamix": (
        lambda: jaxgd.scale_by_simplified_ademamix(alpha=1.5),
        lambda: contrib.scale_by_simplified_ademamix(alpha=1.5),
    ),
}


def assert_trees_close(ours, theirs, rtol=1e-5, atol=1e-7):
    ours, theirs = jax.tree.leaves(ours), jax.tree.leaves(theirs)
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert np.all(np.isfinite(a))
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


# The cases that cover the most (schedules, weight decay, eps_root; the block against
# optax's plain one) run by default, the rest with ``-m slow``.
FAST = {"ademamix_schedules_decay", "simplified_ademamix_alpha_decay", "scale_by_ademamix"}


@pytest.mark.parametrize("name", catalog_params(sorted(TWINS), default=FAST))
def test_ademamix_matches_optax_contrib_over_100_steps(name, params):
    make_ours, make_theirs = TWINS[name]
    ours, theirs = updates_side_by_side(make_ours(), make_theirs(), params)
    assert len(ours) == 6 and any(u.ndim == 3 and u.shape[1] > 1 for u in ours)
    assert_trees_close(ours, theirs)


# --- Sophia against optax.contrib.sophia, fed the objective ----------------------------

def objective(p):
    """Convex, with a Hessian that changes along the run (quartic terms) and differs
    between coordinates (the weights), so the estimate and its refreshes matter."""
    terms = [jnp.sum((1.0 + jnp.arange(x.size).reshape(x.shape)) * (0.5 * x**2 + 0.1 * x**4))
             for x in jax.tree.leaves(p)]
    return sum(terms)


def side_by_side_with_objective(ours, theirs, params, num_steps=100, ours_kw="obj_fn"):
    """Both fed the true gradient and the objective, along optax's trajectory."""

    @jax.jit
    def step(p, s_ours, s_theirs):
        g = jax.grad(objective)(p)
        u_ours, s_ours = ours.update(g, s_ours, p, **{ours_kw: objective})
        u_theirs, s_theirs = theirs.update(g, s_theirs, p, obj_fn=objective)
        return optax.apply_updates(p, u_theirs), s_ours, s_theirs, u_ours, u_theirs

    s_ours, s_theirs, trace = ours.init(params), theirs.init(params), []
    for _ in range(num_steps):
        params, s_ours, s_theirs, u_ours, u_theirs = step(params, s_ours, s_theirs)
        trace.append((u_ours, u_theirs))
    return [t[0] for t in trace], [t[1] for t in trace]


KEY = jax.random.PRNGKey(42)

SOPHIA_SETTINGS = {
    "defaults": {},
    # unclipped Newton-like steps on most coordinates, refreshed every 3 steps
    "curvature_steps": {"gamma": 1.0, "clip_threshold": 5.0, "update_interval": 3,
                        "b1": 0.9, "b2": 0.9, "weight_decay": 0.0},
    # without a clip the floor eps must bound the first step (h is 0 until refreshed)
    "no_clip": {"gamma": 1.0, "clip_threshold": None, "eps": 1.0, "update_interval": 1,
                "weight_decay": 1e-3},
}


@pytest.mark.parametrize("setting", catalog_params(sorted(SOPHIA_SETTINGS),
                                                   default={"curvature_steps"}))
def test_sophia_matches_optax_contrib_over_100_steps_with_the_same_key(setting):
    """Against optax's alias with its hyperparameters injected, i.e. held as float32
    arrays as jaxgd holds them: with Python floats, 1 - b1 rounds differently, which
    near the minimum (a momentum far smaller than the gradients it averages) moves a few
    updates by 3e-5 of themselves. The block is compared with optax's plain one below."""
    kwargs = SOPHIA_SETTINGS[setting]
    ours = jaxgd.sophia(LR, hessian_diagonal_fn=jaxgd.hutchinson_estimator_diag_hessian(KEY),
                        **kwargs)
    theirs = optax.inject_hyperparams(contrib.sophia)(
        LR, hessian_diagonal_fn=contrib.hutchinson_estimator_diag_hessian(KEY), **kwargs)
    u_ours, u_theirs = side_by_side_with_objective(ours, theirs, nested_params())
    assert_trees_close(u_ours, u_theirs)
    if setting == "curvature_steps":  # not all clipped: the curvature estimate is used
        steps = np.abs(np.concatenate([x.ravel() for x in jax.tree.leaves(u_ours)]))
        assert np.mean(steps < 0.99 * LR * kwargs["clip_threshold"]) > 0.2


def test_scale_by_sophia_with_hutchinson_matches_optax_and_value_fn_equals_obj_fn():
    kwargs = {"gamma": 0.5, "update_interval": 2}
    ours = jaxgd.scale_by_sophia(
        hessian_diagonal_fn=jaxgd.hutchinson_estimator_diag_hessian(KEY), **kwargs)
    theirs = optax_scale_by_sophia(  # not exported by optax.contrib
        hessian_diagonal_fn=contrib.hutchinson_estimator_diag_hessian(KEY), **kwargs)
    by_obj_fn, reference = side_by_side_with_objective(ours, theirs, nested_params(),
                                                       num_steps=30)
    assert_trees_close(by_obj_fn, reference)
    by_value_fn, _ = side_by_side_with_objective(ours, theirs, nested_params(), num_steps=30,
                                                 ours_kw="value_fn")
    assert_trees_close(by_value_fn, by_obj_fn, rtol=0, atol=0)


def test_hutchinson_estimate_is_the_exact_diagonal_on_average():
    """Closed form: for f = sum_i c_i x_i^2 / 2 + x_0 x_1 the diagonal is c exactly, and
    each estimate z * (H z) = c + z_0 z_1 (off-diagonal noise) on the coupled entries."""
    c = jnp.array([1.0, 2.0, 3.0, 4.0])

    def f(p):
        x = p["x"]
        return 0.5 * jnp.sum(c * x**2) + x[0] * x[1]

    est = jaxgd.hutchinson_estimator_diag_hessian(jax.random.key(0))
    params = {"x": jnp.ones(4)}

    def draw(state, _):
        h, state = est.update(None, state, params, obj_fn=f)
        return state, h["x"]

    draws = np.asarray(jax.jit(lambda s: jax.lax.scan(draw, s, length=400)[1])(
        est.init(params)))
    np.testing.assert_array_equal(draws[:, 2:], np.broadcast_to(c[2:], (400, 2)))
    assert set(np.unique(draws[:, 0] - 1.0)) == {-1.0, 1.0}
    np.testing.assert_allclose(draws.mean(axis=0), c, atol=0.15)


# --- jit, vmap over the learning rate, sweep and fit -----------------------------------

FACTORIES = {"ademamix": jaxgd.ademamix, "simplified_ademamix": jaxgd.simplified_ademamix,
             "sophia": jaxgd.sophia}


def run(opt, params, num_steps=8):
    """``num_steps`` jitted-friendly steps on ``objective``, passing it as value_fn."""
    def step(carry, _):
        p, s = carry
        g = jax.grad(objective)(p)
        u, s = opt.update(g, s, p, value_fn=objective)
        return (jaxgd.apply_updates(p, u), s), None

    return jax.lax.scan(step, (params, opt.init(params)), length=num_steps)[0][0]


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_each_vmapped_learning_rate_equals_its_own_jitted_run(name):
    """In float64, as the sweep below (float32 lanes differ from single runs by FMA
    rounding, which the cancellations in these updates magnify)."""
    factory = FACTORIES[name]
    with jax.enable_x64(True):
        params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), nested_params())
        lrs = jnp.array([1e-3, 1e-2, 5e-2])
        lanes = jax.jit(jax.vmap(lambda lr: run(factory(lr), params)))(lrs)
        one_run = jax.jit(lambda lr: run(factory(lr), params))  # one program for all three
        for i, lr in enumerate(lrs):
            alone = one_run(lr)
            assert_trees_close(jax.tree.map(lambda x, i=i: x[i], lanes), alone, rtol=1e-9,
                               atol=1e-12)
    assert not np.allclose(jax.tree.leaves(lanes)[0][0], jax.tree.leaves(lanes)[0][2])


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_sweep_over_learning_rate_equals_separate_fits(name):
    """In float64 (see tests/test_sweep.py: FMA contraction differs between widths)."""
    factory = FACTORIES[name]
    with jax.enable_x64(True):
        params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), nested_params())
        lrs = [1e-3, 1e-2, 5e-2]
        res = jaxgd.sweep(objective, params, factory, hyperparams={"learning_rate": lrs},
                          max_steps=12)
        _, fit_key = trial_keys(0)
        for i, lr in enumerate(lrs):
            alone = jaxgd.fit(objective, params, factory(lr), max_steps=12, key=fit_key)
            for a, b in zip(jax.tree.leaves(alone.params),
                            jax.tree.leaves(jax.tree.map(lambda x, i=i: x[i], res.fit.params)),
                            strict=True):
                np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)
            assert res.losses[i][-1] < res.losses[i][0]


def test_sophia_in_fit_follows_optax_sophia_fed_the_objective():
    key, steps = jax.random.PRNGKey(5), 25
    result = jaxgd.fit(objective, nested_params(), jaxgd.sophia(
        0.05, update_interval=2, hessian_diagonal_fn=jaxgd.hutchinson_estimator_diag_hessian(
            key)), max_steps=steps)
    theirs = contrib.sophia(0.05, update_interval=2,
                            hessian_diagonal_fn=contrib.hutchinson_estimator_diag_hessian(key))

    @jax.jit
    def step(p, s):
        u, s = theirs.update(jax.grad(objective)(p), s, p, obj_fn=objective)
        return optax.apply_updates(p, u), s

    params = nested_params()
    state = theirs.init(params)
    for _ in range(steps):
        params, state = step(params, state)
    assert int(result.num_steps) == steps
    assert_trees_close(result.params, params)
    assert result.losses[-1] < 0.5 * result.losses[0]


# --- errors and flags -------------------------------------------------------------------

def test_sophia_without_the_objective_names_obj_fn():
    params = {"w": jnp.ones((2, 2))}
    opt = jaxgd.sophia(LR)
    state = opt.init(params)
    with pytest.raises(ValueError, match="obj_fn="):
        opt.update(params, state, params)
    with pytest.raises(ValueError, match="obj_fn="):
        jax.jit(opt.update)(params, state, params)
    with pytest.raises(ValueError, match="needs params"):
        opt.update(params, state, obj_fn=lambda p: jnp.sum(p["w"]))
    with pytest.raises(TypeError, match="obj_fn must be callable"):
        opt.update(params, state, params, obj_fn=1.0)


@pytest.mark.parametrize("make, match", [
    (lambda: jaxgd.ademamix(LR, b3=1.0), "b3 must be in"),
    (lambda: jaxgd.ademamix(LR, alpha=float("nan")), "alpha must be a finite"),
    (lambda: jaxgd.ademamix(LR, mu_dtype=jnp.int32), "mu_dtype must be a floating"),
    (lambda: jaxgd.simplified_ademamix(LR, b1=1.5), "b1 must be in"),
    (lambda: jaxgd.sophia(LR, update_interval=0), "update_interval must be an integer"),
    (lambda: jaxgd.sophia(LR, update_interval=2.5), "update_interval must be an integer"),
    (lambda: jaxgd.sophia(LR, clip_threshold=0.0), "clip_threshold must be"),
    (lambda: jaxgd.sophia(LR, eps=0.0), "eps must be"),
    (lambda: jaxgd.sophia(LR, gamma=-1.0), "gamma must be"),
    (lambda: jaxgd.sophia(LR, hessian_diagonal_fn=lambda g: g), "hessian_diagonal_fn must"),
    (lambda: jaxgd.sophia(LR, print_win_rate_every_n_steps=-1), "print_win_rate"),
])
def test_bad_arguments_are_named_when_the_optimizer_is_built(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_ademamix_is_flatten_invariant_and_sophia_only_with_an_elementwise_estimator():
    assert is_flatten_invariant(jaxgd.ademamix(LR))
    assert is_flatten_invariant(jaxgd.simplified_ademamix(LR))
    assert not is_flatten_invariant(jaxgd.sophia(LR))  # Hutchinson draws per leaf
    elementwise = flatten_invariant(jaxgd.identity())
    assert is_flatten_invariant(jaxgd.sophia(LR, hessian_diagonal_fn=elementwise))


def test_ademamix_state_keeps_its_dtypes_through_a_jitted_step():
    params = {"w": jnp.ones((3, 2)), "b": jnp.ones(2)}
    opt = jaxgd.ademamix(LR, mu_dtype=jnp.bfloat16)
    state = opt.init(params)
    _, new = jax.jit(opt.update)(params, state, params)
    assert jax.tree.map(lambda x: x.dtype, new) == jax.tree.map(lambda x: x.dtype, state)
    assert new.inner_state[0].m2["w"].dtype == jnp.bfloat16
    assert new.inner_state[0].nu["w"].dtype == jnp.float32


def test_schedules_are_stepped_and_their_values_kept_in_the_state():
    params = {"w": jnp.ones(2)}
    opt = jaxgd.ademamix(LR, alpha=warmup(0.0, 4.0, 4), b3=warmup(0.5, 0.9, 4))
    state = opt.init(params)
    for step in range(3):
        _, state = opt.update(params, state, params)
        assert float(state.hyperparams["alpha"]) == pytest.approx(step)
        assert float(state.hyperparams["b3"]) == pytest.approx(0.5 + 0.1 * step)
