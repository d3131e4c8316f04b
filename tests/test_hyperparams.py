"""Hyperparameters live in the state: vmap over them, and change them without retracing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd

# A separable quadratic f(x) = ½ Σ d_i x_i².
CURVATURE = np.array([0.5, 1.0, 2.0, 4.0])
X0 = jnp.array([1.0, -1.0, 0.5, 2.0])


def loss(x):
    return 0.5 * jnp.sum(jnp.asarray(CURVATURE, x.dtype) * x**2)


def train(optimizer, num_steps=50, x0=X0):
    def body(_, carry):
        x, state = carry
        updates, state = optimizer.update(jax.grad(loss)(x), state, x)
        return jaxgd.apply_updates(x, updates), state

    return jax.lax.fori_loop(0, num_steps, body, (x0, optimizer.init(x0)))[0]


SWEEPABLE = {
    "sgd": lambda lr: jaxgd.sgd(lr),
    "momentum": lambda lr: jaxgd.momentum(lr, 0.9),
    "rmsprop": lambda lr: jaxgd.rmsprop(lr),
    "adam": lambda lr: jaxgd.adam(lr),
}


@pytest.mark.parametrize("name", sorted(SWEEPABLE))
def test_vmap_over_16_learning_rates_equals_16_separate_runs(name):
    """Each lane of the vmapped loop is its own run.

    Run in float64: on CPUs with FMA, XLA contracts a*b+c differently in vectorised and
    scalar loops, so float32 lanes drift from single runs by ~1e-7 per step even in plain
    JAX code (bit-identical with ``--xla_cpu_max_isa=AVX``); float64 keeps that noise at
    ~1e-16 and makes rel 1e-6 a sharp test of the sweep itself.
    """
    make = SWEEPABLE[name]
    with jax.enable_x64(True):
        x0 = jnp.asarray(X0, jnp.float64)
        lrs = jnp.logspace(-3, -0.5, 16, dtype=jnp.float64)
        swept = jax.jit(jax.vmap(lambda lr: train(make(lr), x0=x0)))(lrs)
        single = jax.jit(lambda lr: train(make(lr), x0=x0))
        assert swept.dtype == jnp.float64
        for i, lr in enumerate(lrs):
            np.testing.assert_allclose(swept[i], single(lr), rtol=1e-6, atol=1e-30)
            np.testing.assert_allclose(swept[i], train(make(float(lr)), x0=x0), rtol=1e-6)
    assert not np.allclose(swept[0], swept[-1])


def test_vmap_over_b1_and_momentum_works():
    b1s = jnp.array([0.0, 0.5, 0.9, 0.99])
    out = jax.vmap(lambda b1: train(jaxgd.adam(0.1, b1=b1)))(b1s)
    for i, b1 in enumerate(b1s):
        np.testing.assert_allclose(out[i], train(jaxgd.adam(0.1, b1=float(b1))), rtol=1e-4)
    momenta = jax.vmap(lambda m: train(jaxgd.sgd(0.1, momentum=m)))(b1s[:3])
    assert len({float(jnp.sum(m)) for m in momenta}) == 3


def test_changing_learning_rate_between_jitted_calls_does_not_retrace():
    traces = []
    opt = jaxgd.adam(0.1)

    @jax.jit
    def step(x, state):
        traces.append(1)
        updates, state = opt.update(jax.grad(loss)(x), state, x)
        return jaxgd.apply_updates(x, updates), state

    x, state = step(X0, opt.init(X0))
    for lr in (0.05, 0.01, 1e-4):
        state = jaxgd.set_hyperparams(state, learning_rate=lr)
        before = x
        x, state = step(x, state)
        # Adam's step is bounded by the learning rate: the new value really is in use.
        assert float(jnp.max(jnp.abs(x - before))) <= lr * 1.001
    state = jaxgd.set_hyperparams(state, b1=0.5, b2=0.99)
    step(x, state)
    assert len(traces) == 1
    assert float(jaxgd.get_hyperparams(state)["b1"]) == 0.5


def test_set_learning_rate_gives_the_new_plain_gd_step_exactly():
    opt = jaxgd.sgd(0.1)
    state = jaxgd.set_hyperparams(opt.init(X0), learning_rate=0.25)
    updates, _ = jax.jit(opt.update)(X0, state)
    np.testing.assert_allclose(updates, -0.25 * X0, rtol=1e-7)


def test_set_hyperparams_reaches_into_nested_states():
    opt = jaxgd.chain(jaxgd.clip_by_global_norm(1.0), jaxgd.sgd(0.1, momentum=0.9))
    state = jaxgd.set_hyperparams(opt.init(X0), momentum=0.5)
    assert float(jaxgd.get_hyperparams(state)["momentum"]) == 0.5


def test_set_hyperparams_rejects_unknown_names_and_bad_values():
    state = jaxgd.adam(1e-3).init(X0)
    with pytest.raises(ValueError, match=r"unknown hyperparameter.*'lr'.*learning_rate"):
        jaxgd.set_hyperparams(state, lr=0.1)
    with pytest.raises(ValueError, match="learning_rate must be a finite number >= 0"):
        jaxgd.set_hyperparams(state, learning_rate=-1.0)
    with pytest.raises(ValueError, match=r"b2 must be in \[0, 1\)"):
        jaxgd.set_hyperparams(state, b2=1.0)


def test_schedule_learning_rate_is_not_a_settable_hyperparameter():
    state = jaxgd.sgd(lambda step: 0.1 / (1 + step)).init(X0)
    assert "learning_rate" not in jaxgd.get_hyperparams(state)
    with pytest.raises(ValueError, match="Schedules and flags are fixed"):
        jaxgd.set_hyperparams(state, learning_rate=0.1)


def test_low_precision_leaves_keep_their_dtype():
    params = {"w": jnp.ones(3, jnp.bfloat16), "b": jnp.ones(2, jnp.float16)}
    opt = jaxgd.adam(1e-2)
    state = opt.init(params)
    updates, new_state = opt.update(params, state, params)
    assert jax.tree.map(lambda u: u.dtype, updates) == jax.tree.map(lambda p: p.dtype, params)
    inner = new_state.inner_state[0]
    assert inner.mu["w"].dtype == jnp.bfloat16 and inner.nu["b"].dtype == jnp.float16


@pytest.mark.parametrize("alias", [jaxgd.adadelta, jaxgd.lars, jaxgd.lamb, jaxgd.adamw])
def test_a_zero_weight_decay_is_no_block_and_a_nonzero_one_is_settable(alias):
    params = {"w": jnp.ones(3), "b": jnp.zeros(2)}
    off = alias(0.1, weight_decay=0.0)
    assert "weight_decay" not in jaxgd.get_hyperparams(off.init(params))
    on = alias(0.1, weight_decay=1e-2)
    state = jaxgd.set_hyperparams(on.init(params), weight_decay=0.5)
    assert float(jaxgd.get_hyperparams(state)["weight_decay"]) == 0.5


@pytest.mark.parametrize("alias", [jaxgd.adadelta, jaxgd.adamw])
def test_a_zero_weight_decay_reads_no_params(alias):
    # (lamb and lars read the params anyway, for their trust ratio)
    params = {"w": jnp.ones(3), "b": jnp.zeros(2)}
    off = alias(0.1, weight_decay=0.0)
    state = off.init(params)
    grads = {"w": jnp.full(3, 0.5), "b": jnp.full(2, 0.5)}
    u1, _ = off.update(grads, state, params)
    u2, _ = off.update(grads, state, jax.tree.map(lambda p: p + 3.0, params))
    for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", sorted(jaxgd.OPTIMIZERS))
def test_state_can_be_donated_to_a_jitted_step(name):
    """No two state fields may share a buffer, or donating the state fails."""
    factory = jaxgd.OPTIMIZERS[name]
    if name in ("lbfgs", "newton", "polyak_sgd"):
        pytest.skip("needs value / value_fn extra arguments; covered in their own tests")
    opt = factory() if name in ("adadelta", "adafactor") else factory(0.01)
    params = {"w": jnp.ones(3), "b": jnp.ones(2)}
    state = opt.init(params)
    step = jax.jit(lambda p, s: opt.update(p, s, p), donate_argnums=1)
    step(params, state)
