"""reduce_on_plateau: optax's updates and states over 100 steps, the step halved on a
flat loss (by hand, in jaxgd.chain, in jaxgd.fit and in jaxgd.sweep), clear errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import random_like

import jaxgd

SETTINGS = {
    "defaults": {},
    "everything": {"factor": 0.5, "patience": 3, "rtol": 1e-3, "atol": 0.01, "cooldown": 2,
                   "accumulation_size": 3, "min_scale": 0.05},
}


def losses(num_steps):
    """Falling, then a noisy plateau at 1."""
    steps = np.arange(num_steps)
    noise = 0.01 * np.random.default_rng(0).standard_normal(num_steps)
    return np.maximum(5.0 - 0.1 * steps, 1.0).astype(np.float32) + noise.astype(np.float32)


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_matches_optax_over_100_steps_on_a_nested_tree(setting, params):
    kwargs = SETTINGS[setting]
    ours = jaxgd.chain(jaxgd.sgd(0.1), jaxgd.reduce_on_plateau(**kwargs))
    theirs = optax.chain(optax.sgd(0.1), optax.contrib.reduce_on_plateau(**kwargs))

    def step(carry, inputs):
        p, s, t = carry
        key, value = inputs
        grads = random_like(p, key)
        u, s = ours.update(grads, s, p, value=value)
        v, t = theirs.update(grads, t, p, value=value)
        return (jax.tree.map(jnp.add, p, v), s, t), (u, v, s[1], t[1])

    keys = jax.random.split(jax.random.PRNGKey(1), 100)
    start = (params, ours.init(params), theirs.init(params))
    u, v, s, t = jax.jit(lambda: jax.lax.scan(step, start, (keys, losses(100)))[1])()
    for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(v), strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype and np.all(np.isfinite(a))
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert s._fields == t._fields
    for field in s._fields:
        a, b = getattr(s, field), getattr(t, field)
        assert a.dtype == b.dtype, field
        np.testing.assert_allclose(a, b, rtol=1e-6, err_msg=field)
    assert np.min(s.scale) < 1  # it did reduce


def flat_loss(p):
    """Always 1, with gradient 1 everywhere: a loss that never improves, and steps that
    show the scale."""
    return 1.0 + sum(jnp.sum(x - jax.lax.stop_gradient(x)) for x in jax.tree.leaves(p))


def expected_scales(factor, num_steps):
    # patience 2: the first loss sets the best, then every second step is a reduction
    return factor ** (np.arange(num_steps) // 2)


def test_the_step_halves_on_a_flat_loss_inside_chain():
    lr, x = 0.1, jnp.zeros(3)
    opt = jaxgd.chain(jaxgd.sgd(lr), jaxgd.reduce_on_plateau(factor=0.5, patience=2))
    state = opt.init(x)
    step = jax.jit(lambda g, s, x, value: opt.update(g, s, x, value=value))
    steps, scales = [], []
    for _ in range(7):
        value, grads = jax.value_and_grad(flat_loss)(x)
        updates, state = step(grads, state, x, value)
        x = jaxgd.apply_updates(x, updates)
        steps.append(float(-updates[0]))
        scales.append(float(state[1].scale))
    np.testing.assert_allclose(scales, expected_scales(0.5, 7))
    np.testing.assert_allclose(steps, lr * expected_scales(0.5, 7), rtol=1e-6)


def test_the_step_halves_on_a_flat_loss_inside_fit():
    lr, start = 0.1, {"a": jnp.zeros(2), "b": jnp.zeros(3)}
    opt = jaxgd.chain(jaxgd.sgd(lr), jaxgd.reduce_on_plateau(factor=0.5, patience=2))
    for flat_params in (False, True):
        res = jaxgd.fit(flat_loss, start, opt, max_steps=7, flat_params=flat_params)
        assert int(res.num_steps) == 7
        np.testing.assert_allclose(res.opt_state[1].scale, 0.5**3)
        for leaf in jax.tree.leaves(res.params):
            np.testing.assert_allclose(leaf, -lr * np.sum(expected_scales(0.5, 7)), rtol=1e-6)


def test_a_sweep_over_the_factor_reduces_each_lane_by_its_own():
    factors = [0.5, 0.25]
    start = {"a": jnp.zeros(2), "b": jnp.zeros(3)}

    def build(factor):
        return jaxgd.chain(jaxgd.sgd(0.1), jaxgd.reduce_on_plateau(factor=factor, patience=2))

    res = jaxgd.sweep(flat_loss, start, build, hyperparams={"factor": factors}, max_steps=7)
    for i, factor in enumerate(factors):
        np.testing.assert_allclose(res.fit.opt_state[1].scale[i], factor**3, rtol=1e-6)
        for leaf in jax.tree.leaves(res.fit.params):
            np.testing.assert_allclose(leaf[i], -0.1 * np.sum(expected_scales(factor, 7)),
                                       rtol=1e-6)


def test_an_update_without_the_loss_names_the_missing_argument():
    opt = jaxgd.chain(jaxgd.sgd(0.1), jaxgd.reduce_on_plateau())
    x = jnp.ones(2)
    with pytest.raises(ValueError, match="value=loss"):
        opt.update(x, opt.init(x), x)
    with pytest.raises(ValueError, match="scalar loss"):
        opt.update(x, opt.init(x), x, value=x)


@pytest.mark.parametrize("kwargs, name", [
    ({"factor": 1.0}, "factor"),
    ({"factor": 0.0}, "factor"),
    ({"rtol": -1e-4}, "rtol"),
    ({"rtol": 2.0}, "rtol"),
    ({"rtol": 0.0, "atol": 0.0}, "rtol and atol"),
    ({"accumulation_size": 0}, "accumulation_size"),
    ({"min_scale": -1.0}, "min_scale"),
])
def test_bad_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        jaxgd.reduce_on_plateau(**kwargs)
