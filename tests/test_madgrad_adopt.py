"""MADGRAD and ADOPT: optax's updates over 100 steps on nested trees, closed-form first
steps, learning rates held in the state (vmap, sweep), and clear errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from catalog_tiers import catalog_params
from conftest import nested_params, updates_side_by_side

import jaxgd
from jaxgd.core.base import is_flatten_invariant

LR = 0.01

CASES = {
    "madgrad": (lambda: jaxgd.madgrad(LR), lambda: optax.contrib.madgrad(LR)),
    "madgrad_decay_momentum": (
        lambda: jaxgd.madgrad(LR, momentum=0.5, weight_decay=0.1, eps=1e-5),
        lambda: optax.contrib.madgrad(LR, momentum=0.5, weight_decay=0.1, eps=1e-5)),
    "madgrad_schedule": (
        lambda: jaxgd.madgrad(optax.linear_schedule(0.05, 0.0, 100)),
        lambda: optax.contrib.madgrad(optax.linear_schedule(0.05, 0.0, 100))),
    "scale_by_madgrad": (lambda: jaxgd.scale_by_madgrad(0.02, 0.8),
                         lambda: optax.contrib.scale_by_madgrad(0.02, 0.8)),
    "adopt": (lambda: jaxgd.adopt(LR), lambda: optax.contrib.adopt(LR)),
    "adopt_nesterov_unclipped": (
        lambda: jaxgd.adopt(LR, b1=0.8, b2=0.99, nesterov=True, use_clipping=False),
        lambda: optax.contrib.adopt(LR, b1=0.8, b2=0.99, nesterov=True, use_clipping=False)),
    "adopt_own_clip": (
        lambda: jaxgd.adopt(LR, clip_value_fn=lambda t: 0.5 * t**0.5),
        lambda: optax.contrib.adopt(LR, clip_value_fn=lambda t: 0.5 * t**0.5)),
    "scale_by_adopt": (jaxgd.scale_by_adopt, optax.contrib.scale_by_adopt),
}


def _path(params, updates_of_reference):
    """The params each step started from (updates_side_by_side follows the reference)."""
    leaves = jax.tree.leaves(params)
    return [np.concatenate([np.asarray(p)[None], np.asarray(p) + np.cumsum(u, 0)[:-1]])
            for p, u in zip(leaves, updates_of_reference, strict=True)]


# The aliases with their defaults run by default (each compiles two 100-step runs); the
# other settings with ``-m slow``.
FAST = {"madgrad", "madgrad_decay_momentum", "adopt", "adopt_nesterov_unclipped"}


@pytest.mark.parametrize("name", catalog_params(sorted(CASES), default=FAST))
def test_matches_optax_over_100_steps_on_a_nested_tree(name, params):
    make_ours, make_theirs = CASES[name]
    ours, theirs = updates_side_by_side(make_ours(), make_theirs(), params)
    assert len(ours) == 6
    if "madgrad" not in name:
        for a, b in zip(ours, theirs, strict=True):
            assert a.shape == b.shape and a.dtype == b.dtype and np.all(np.isfinite(a))
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
        return
    # optax's MADGRAD update is its new point minus the old: exact only to a rounding of
    # the params. Compare the points reached, and the updates to that precision.
    for a, b, start in zip(ours, theirs, _path(params, theirs), strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype and np.all(np.isfinite(a))
        np.testing.assert_allclose(start + a, start + b, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=4 * np.finfo(np.float32).eps
                                   * np.max(np.abs(start)))


def test_adopt_with_a_bfloat16_momentum_stays_near_the_float32_run(params):
    # optax multiplies the bfloat16 m by beta1 rounded to bfloat16 (0.8984 for 0.9); m
    # is read in float32 here, so only its storage is rounded.
    ours, wide = updates_side_by_side(jaxgd.adopt(LR, mu_dtype=jnp.bfloat16),
                                      jaxgd.adopt(LR), params, num_steps=30)
    for a, b in zip(ours, wide, strict=True):
        assert a.dtype == b.dtype == jnp.float32
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-2 * np.max(np.abs(b)))
    state = jaxgd.adopt(LR, mu_dtype=jnp.bfloat16).init(params)
    mu = state.inner_state[0].mu
    assert {x.dtype for x in jax.tree.leaves(mu)} == {jnp.dtype(jnp.bfloat16)}


def test_adopt_first_two_steps_in_closed_form():
    lr, b1, g0, g1 = 0.1, 0.9, jnp.array([2.0, -0.5, 0.0]), jnp.array([3.0, -0.25, 1.0])
    opt, x = jaxgd.adopt(lr, b1=b1), jnp.zeros(3)
    state = opt.init(x)
    u0, state = opt.update(g0, state, x)
    np.testing.assert_array_equal(u0, 0.0)  # the first step only records g0^2
    u1, _ = opt.update(g1, state, x)
    # normalised by |g0| (eps=1e-6 where g0 = 0), clipped to 1^(1/4) = 1
    normalised = np.clip(np.asarray(g1) / np.maximum(np.abs(np.asarray(g0)), 1e-6), -1, 1)
    np.testing.assert_allclose(u1, -lr * (1 - b1) * normalised, rtol=1e-6)


def test_madgrad_first_step_in_closed_form():
    lr, c, eps = 0.1, 0.9, 1e-6
    g, x0 = np.array([2.0, -0.5, 1e-3]), np.array([1.0, 2.0, -3.0])
    opt = jaxgd.madgrad(lr, momentum=c, eps=eps)
    u, state = opt.update(jnp.asarray(g, jnp.float32), opt.init(jnp.asarray(x0, jnp.float32)),
                          jnp.asarray(x0, jnp.float32))
    weight = lr + eps  # times sqrt(0 + 1)
    z = x0 - weight * g / (np.cbrt(weight * g**2) + eps)
    np.testing.assert_allclose(u, (1 - c) * (z - x0), rtol=1e-5)
    np.testing.assert_array_equal(state.inner_state[1].x0, x0.astype(np.float32))


@pytest.mark.parametrize("factory", [jaxgd.madgrad, jaxgd.adopt])
def test_elementwise_rules_are_flatten_invariant_and_keep_their_numbers_in_the_state(factory):
    opt = factory(0.1)
    assert is_flatten_invariant(opt)
    names = set(jaxgd.get_hyperparams(opt.init(nested_params())))
    expected = {"learning_rate", "momentum", "eps"} if factory is jaxgd.madgrad else {
        "learning_rate", "b1", "b2", "eps"}
    assert names == expected  # clip_value_fn, flags and a zero weight decay stay fixed
    assert is_flatten_invariant(jaxgd.adopt(0.1, use_clipping=False))


def quadratic(x):
    return 0.5 * jnp.sum(jnp.array([1.0, 10.0]) * x**2)


def run(opt, x, num_steps=30):
    def step(carry, _):
        x, s = carry
        u, s = opt.update(jax.grad(quadratic)(x), s, x)
        return (jaxgd.apply_updates(x, u), s), None

    return jax.lax.scan(step, (x, opt.init(x)), None, num_steps)[0][0]


@pytest.mark.parametrize("factory", [jaxgd.madgrad, jaxgd.adopt])
def test_a_vmapped_learning_rate_gives_each_lane_its_own_run(factory):
    rates = jnp.array([0.003, 0.03, 0.3])
    start = jnp.array([1.0, -2.0])
    lanes = jax.jit(jax.vmap(lambda lr: run(factory(lr), start)))(rates)
    for lr, lane in zip(rates, lanes, strict=True):
        np.testing.assert_allclose(lane, run(factory(float(lr)), start), rtol=1e-6)
    assert not np.allclose(lanes[0], lanes[2])


@pytest.mark.parametrize("factory", [jaxgd.madgrad, jaxgd.adopt])
def test_sweep_trials_equal_separate_fits(factory):
    rates = [0.01, 0.1]
    start = {"a": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}

    def loss(p):
        return quadratic(p["a"]) + p["b"] ** 2

    res = jaxgd.sweep(loss, start, factory, hyperparams={"learning_rate": rates}, max_steps=15)
    for i, lr in enumerate(rates):
        alone = jaxgd.fit(loss, start, factory(lr), max_steps=15)
        for a, b in zip(jax.tree.leaves(res.fit.params), jax.tree.leaves(alone.params),
                        strict=True):
            np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("build, name", [
    (lambda: jaxgd.adopt(0.1, b2=1.0), "b2"),
    (lambda: jaxgd.adopt(0.1, eps=0.0), "eps"),
    (lambda: jaxgd.adopt(0.1, mu_dtype=jnp.int32), "mu_dtype"),
    (lambda: jaxgd.madgrad(0.1, momentum=1.0), "momentum"),
    (lambda: jaxgd.madgrad(-0.1), "learning_rate"),
    (lambda: jaxgd.scale_by_madgrad(0.1, eps=0.0), "eps"),
])
def test_bad_arguments_are_named(build, name):
    with pytest.raises(ValueError, match=name):
        build()


def test_madgrad_without_params_says_it_needs_them():
    opt = jaxgd.madgrad(0.1)
    x = jnp.ones(2)
    with pytest.raises(ValueError, match="needs params"):
        opt.update(x, opt.init(x))
