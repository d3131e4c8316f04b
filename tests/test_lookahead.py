"""Lookahead: optax's fast and slow trajectories over 100 steps (jaxgd keeps the slow
params in the state, optax in a LookaheadParams pair), inner learning rates under vmap
and in sweeps, fit, and clear errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import random_like

import jaxgd
from jaxgd.core.base import is_flatten_invariant

INNER = {
    "sgd": (lambda: jaxgd.sgd(0.05), lambda: optax.sgd(0.05)),
    "adam": (lambda: jaxgd.adam(0.01), lambda: optax.adam(0.01)),
}


def trajectories(ours, theirs, params, num_steps=100):
    """Both fed the same gradients, each on its own trajectory: ours's params and slow
    params, and optax's ``params.fast`` and ``params.slow``, after each step."""
    pair = optax.LookaheadParams.init_synced(params)

    def step(carry, key):
        x, s, p, t = carry
        grads = random_like(x, key)
        u, s = ours.update(grads, s, x)
        v, t = theirs.update(grads, t, p)
        x, p = jaxgd.apply_updates(x, u), optax.apply_updates(p, v)
        return (x, s, p, t), ((x, jaxgd.slow_params(s)), (p.fast, p.slow))

    keys = jax.random.split(jax.random.PRNGKey(1), num_steps)
    start = (params, ours.init(params), pair, theirs.init(pair))
    return jax.jit(lambda: jax.lax.scan(step, start, keys)[1])()


@pytest.mark.parametrize("inner, reset_state", [
    ("sgd", False), ("adam", True),
    pytest.param("sgd", True, marks=pytest.mark.slow),
    pytest.param("adam", False, marks=pytest.mark.slow),
])
def test_fast_and_slow_params_follow_optax_over_100_steps(inner, reset_state, params):
    make_ours, make_theirs = INNER[inner]
    ours = jaxgd.lookahead(make_ours(), sync_period=5, slow_step_size=0.5,
                           reset_state=reset_state)
    theirs = optax.lookahead(make_theirs(), sync_period=5, slow_step_size=0.5,
                             reset_state=reset_state)
    mine, reference = trajectories(ours, theirs, params)
    assert len(jax.tree.leaves(mine)) == 12
    for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(reference), strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype and np.all(np.isfinite(a))
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_one_sync_in_closed_form():
    # sgd on |x|^2 / 2 with lr 0.1: 1 -> 0.9 -> 0.81, then halfway back from 1: 0.905
    opt = jaxgd.lookahead(jaxgd.sgd(0.1), sync_period=2, slow_step_size=0.5)
    x = jnp.ones(2)
    state = opt.init(x)
    seen = []
    for _ in range(3):
        updates, state = opt.update(x, state, x)
        x = jaxgd.apply_updates(x, updates)
        seen.append((float(x[0]), float(jaxgd.slow_params(state)[0])))
    np.testing.assert_allclose(seen, [(0.9, 1.0), (0.905, 0.905), (0.905 * 0.9, 0.905)],
                               rtol=1e-6)


def quadratic(x):
    return 0.5 * jnp.sum(jnp.array([1.0, 10.0]) * x**2)


def run(opt, x, num_steps=12, state=None):
    def step(carry, _):
        x, s = carry
        u, s = opt.update(jax.grad(quadratic)(x), s, x)
        return (jaxgd.apply_updates(x, u), s), None

    state = opt.init(x) if state is None else state
    x, state = jax.lax.scan(step, (x, state), None, num_steps)[0]
    return x, jaxgd.slow_params(state)


@pytest.mark.parametrize("inner", [jaxgd.sgd, jaxgd.adam])
def test_a_vmapped_inner_learning_rate_gives_each_lane_its_own_run(inner):
    rates = jnp.array([0.001, 0.01, 0.05])
    start = jnp.array([1.0, -2.0])

    def build(lr):
        return jaxgd.lookahead(inner(lr), sync_period=3, slow_step_size=0.5)

    lanes = jax.jit(jax.vmap(lambda lr: run(build(lr), start)))(rates)
    for i, lr in enumerate(rates):
        for lane, alone in zip(lanes, run(build(float(lr)), start), strict=True):
            np.testing.assert_allclose(lane[i], alone, rtol=1e-6)
    assert not np.allclose(lanes[0][0], lanes[0][2])


def test_a_reset_keeps_the_inner_learning_rate_set_in_the_state():
    start = jnp.array([1.0, -2.0])
    opt = jaxgd.lookahead(jaxgd.adam(0.01), sync_period=2, slow_step_size=0.5,
                          reset_state=True)
    changed = jaxgd.set_hyperparams(opt.init(start), learning_rate=0.05)
    built = jaxgd.lookahead(jaxgd.adam(0.05), sync_period=2, slow_step_size=0.5,
                            reset_state=True)
    for a, b in zip(run(opt, start, state=changed), run(built, start), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_sweep_over_the_inner_learning_rate_equals_separate_fits():
    start = {"a": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}

    def loss(p):
        return quadratic(p["a"]) + p["b"] ** 2

    def build(learning_rate):
        return jaxgd.lookahead(jaxgd.adam(learning_rate), sync_period=3, slow_step_size=0.5)

    rates = [0.01, 0.1]
    res = jaxgd.sweep(loss, start, build, hyperparams={"learning_rate": rates}, max_steps=10)
    for i, lr in enumerate(rates):
        alone = jaxgd.fit(loss, start, build(lr), max_steps=10)
        for a, b in zip(jax.tree.leaves((res.fit.params, jaxgd.slow_params(res.fit.opt_state))),
                        jax.tree.leaves((alone.params, jaxgd.slow_params(alone.opt_state))),
                        strict=True):
            np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-7)


def test_fit_with_flat_params_equals_the_per_leaf_fit():
    opt = jaxgd.lookahead(jaxgd.adam(0.05), sync_period=3, slow_step_size=0.5)
    assert is_flatten_invariant(opt)
    assert not is_flatten_invariant(jaxgd.lookahead(jaxgd.lamb(0.1), 3, 0.5))
    start = {"a": jnp.array([1.0, -2.0]), "b": jnp.array([0.5, 0.25, -1.0])}

    def loss(p):
        return quadratic(p["a"]) + jnp.sum(p["b"] ** 2)

    flat = jaxgd.fit(loss, start, opt, max_steps=10, flat_params=True)
    per_leaf = jaxgd.fit(loss, start, opt, max_steps=10, flat_params=False)
    for a, b in zip(jax.tree.leaves((flat.params, jaxgd.slow_params(flat.opt_state))),
                    jax.tree.leaves((per_leaf.params, jaxgd.slow_params(per_leaf.opt_state))),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("kwargs, name", [
    ({"sync_period": 0, "slow_step_size": 0.5}, "sync_period"),
    ({"sync_period": 2.0, "slow_step_size": 0.5}, "sync_period"),
    ({"sync_period": 2, "slow_step_size": 1.5}, "slow_step_size"),
])
def test_bad_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        jaxgd.lookahead(jaxgd.sgd(0.1), **kwargs)


def test_misuse_is_explained():
    with pytest.raises(TypeError, match="fast_optimizer"):
        jaxgd.lookahead(0.1, 2, 0.5)
    opt = jaxgd.lookahead(jaxgd.sgd(0.1), 2, 0.5)
    x = jnp.ones(2)
    with pytest.raises(ValueError, match="needs params"):
        opt.update(x, opt.init(x))
    with pytest.raises(ValueError, match="exactly one lookahead state"):
        jaxgd.slow_params(jaxgd.sgd(0.1).init(x))
