"""Averaged params (EMA and SWA) against float64 closed forms, and fit's ema_decay."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import hand_loop, nested_params

import jaxgd


def closed_form_ema(trajectory, decay, debias):
    """In float64: sum_k (1-b) b^(t-k) p_k over p_1..p_t, over (1 - b^t) when debiased,
    plus b^t p_0 when not."""
    ps = [np.asarray(p, np.float64) for p in trajectory]
    t = len(ps) - 1
    total = sum((1 - decay) * decay ** (t - k) * ps[k] for k in range(1, t + 1))
    return total / (1 - decay**t) if debias else total + decay**t * ps[0]


@pytest.mark.parametrize("debias", [True, False])
def test_ema_matches_the_float64_closed_form(debias):
    decay, steps = 0.8, 12
    points = [jnp.sin(jnp.arange(4.0) + t) * (1 + t) for t in range(steps + 1)]
    state = jaxgd.params_average_init(points[0])
    update = jax.jit(lambda s, p: jaxgd.params_ema_update(s, p, decay, debias))
    for p in points[1:]:
        state = update(state, p)
    assert int(state.count) == steps
    np.testing.assert_allclose(state.average, closed_form_ema(points, decay, debias),
                               rtol=2e-6)


def test_swa_is_the_mean_of_the_params_given():
    points = [jnp.cos(jnp.arange(3.0) * t) for t in range(9)]
    state = jaxgd.params_average_init({"a": points[0]})
    for p in points[1:]:
        state = jaxgd.params_swa_update(state, {"a": p})
    np.testing.assert_allclose(state.average["a"],
                               np.mean(np.asarray(points[1:], np.float64), 0), rtol=1e-6)


def test_average_keeps_its_dtype_and_starts_as_a_copy():
    params = {"w": jnp.ones(3, jnp.bfloat16)}
    state = jaxgd.params_average_init(params, dtype=jnp.float32)
    assert state.average["w"].dtype == jnp.float32 and int(state.count) == 0
    state = jaxgd.params_ema_update(state, {"w": jnp.full(3, 2.0, jnp.bfloat16)}, 0.999)
    assert state.average["w"].dtype == jnp.float32
    np.testing.assert_array_equal(state.average["w"], 2.0)  # debiased: w_1 = 1
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\)"):
        jaxgd.params_ema_update(state, params, 1.0)
    with pytest.raises(ValueError, match="params and average must have the same tree"):
        jaxgd.params_swa_update(state, {"v": jnp.ones(3)})


def loss_fn(params):
    return sum(jnp.sum(jnp.cos(leaf) + 0.5 * leaf**2) for leaf in jax.tree.leaves(params))


@pytest.mark.parametrize("flat_params", [False, None], ids=["per leaf", "flat"])
def test_fit_ema_matches_a_float64_ema_of_the_trajectory(flat_params):
    decay, steps = 0.9, 15
    start, opt = nested_params(), jaxgd.adam(0.1)
    res = jaxgd.fit(loss_fn, start, opt, max_steps=steps, ema_decay=decay,
                    flat_params=flat_params)
    trajectory, _, _ = hand_loop(loss_fn, start, opt, None, steps)
    path = [params for params, _ in trajectory]
    want = jax.tree.map(lambda *ps: closed_form_ema(ps, decay, True), *path)
    for a, b in zip(jax.tree.leaves(res.ema_params), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert jax.tree.structure(res.ema_params) == jax.tree.structure(start)


def test_fit_ema_follows_the_params_back_after_a_nonfinite_stop():
    def blows_up(p):  # finite until p passes 3, then NaN
        return jnp.where(p[0] < 3.0, -p[0], jnp.nan) + 0.0 * jnp.sum(p)

    res = jaxgd.fit(blows_up, jnp.zeros(2), jaxgd.sgd(1.0), max_steps=10, ema_decay=0.5)
    # the last finite point is p_2 = (2, 0): its loss is finite, p_3's is not
    assert res.stop_reason == "nonfinite" and int(res.num_steps) == 2
    path = [np.array([float(k), 0.0]) for k in range(3)]  # p_k = (k, 0)
    np.testing.assert_allclose(res.ema_params, closed_form_ema(path, 0.5, True), rtol=1e-6)


def test_vmap_over_ema_decay_equals_separate_fits():
    decays = jnp.array([0.0, 0.5, 0.9])
    run = jax.vmap(lambda d: jaxgd.fit(loss_fn, jnp.ones(3), jaxgd.sgd(0.1), max_steps=8,
                                       ema_decay=d).ema_params)
    together = run(decays)
    for i, d in enumerate([0.0, 0.5, 0.9]):
        alone = jaxgd.fit(loss_fn, jnp.ones(3), jaxgd.sgd(0.1), max_steps=8, ema_decay=d)
        np.testing.assert_allclose(together[i], alone.ema_params, rtol=1e-6)
    # decay 0: the average is the last params
    np.testing.assert_allclose(together[0], jaxgd.fit(loss_fn, jnp.ones(3), jaxgd.sgd(0.1),
                                                      max_steps=8).params, rtol=1e-6)


def test_sweep_carries_the_ema_params():
    lrs = [0.05, 0.2]
    res = jaxgd.sweep(loss_fn, jnp.ones(3), jaxgd.sgd, hyperparams={"learning_rate": lrs},
                      max_steps=8, ema_decay=0.7)
    for i, lr in enumerate(lrs):
        alone = jaxgd.fit(loss_fn, jnp.ones(3), jaxgd.sgd(lr), max_steps=8, ema_decay=0.7)
        np.testing.assert_allclose(res.fit.ema_params[i], alone.ema_params, rtol=1e-6)


@pytest.mark.parametrize("value, error, match", [
    (1.0, ValueError, r"ema_decay must be in \[0, 1\)"),
    ("0.9", TypeError, "ema_decay must be a number"),
    (jnp.array([0.9, 0.99]), ValueError, "ema_decay must be a scalar"),
])
def test_bad_ema_decay_is_named(value, error, match):
    with pytest.raises(error, match=match):
        jaxgd.fit(loss_fn, jnp.ones(3), jaxgd.sgd(0.1), max_steps=2, ema_decay=value)
