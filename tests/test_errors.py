"""Bad input gets a clear error naming the problem, raised before any deep JAX trace."""

import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd

PARAMS = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}


def test_updates_and_state_with_different_structures():
    opt = jaxgd.adam(1e-3)
    state = opt.init(PARAMS)
    with pytest.raises(ValueError, match=r"updates and mu must have the same tree structure"):
        opt.update({"w": jnp.ones((2, 3))}, state, PARAMS)


def test_params_and_updates_with_different_structures():
    with pytest.raises(ValueError, match=r"params and updates must have the same tree structure"):
        jaxgd.apply_updates(PARAMS, [jnp.ones((2, 3)), jnp.zeros(3)])


def test_updates_and_params_with_different_structures_in_weight_decay():
    opt = jaxgd.add_decayed_weights(1e-2)
    with pytest.raises(ValueError, match=r"updates and params must have the same tree"):
        opt.update(PARAMS, opt.init(PARAMS), {"w": PARAMS["w"]})


def test_chain_state_from_another_optimizer():
    opt = jaxgd.chain(jaxgd.clip(1.0), jaxgd.scale(0.5))
    with pytest.raises(ValueError, match="chain of 2 transformations got a state"):
        opt.update(PARAMS, (), PARAMS)


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.bool_])
def test_integer_or_boolean_params(dtype):
    params = {"w": jnp.ones(3), "steps": jnp.zeros(2, dtype)}
    with pytest.raises(TypeError, match=r"leaf at \['steps'\] has dtype"):
        jaxgd.adam(1e-3).init(params)
    with pytest.raises(TypeError, match="parameters must be floating point"):
        jaxgd.apply_updates(params, params)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("alias", [jaxgd.sgd, jaxgd.momentum, jaxgd.adagrad, jaxgd.adam])
def test_bad_constant_learning_rate(alias, bad):
    with pytest.raises(ValueError, match="learning_rate must be a finite number >= 0"):
        alias(bad)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan")])
@pytest.mark.parametrize(
    "make, name",
    [
        (lambda v: jaxgd.adam(1e-3, b1=v), "b1"),
        (lambda v: jaxgd.adam(1e-3, b2=v), "b2"),
        (lambda v: jaxgd.rmsprop(1e-3, decay=v), "decay"),
        (lambda v: jaxgd.sgd(1e-3, momentum=v), "momentum"),
        (lambda v: jaxgd.momentum(1e-3, momentum=v), "momentum"),
        (lambda v: jaxgd.rmsprop(1e-3, momentum=v), "momentum"),
        # trace's decay may be 1 (a plain sum): tests/test_state_dtypes.py
    ],
)
def test_decay_rates_outside_zero_one(make, name, bad):
    with pytest.raises(ValueError, match=rf"{name} must be in \[0, 1\)"):
        make(bad)


@pytest.mark.parametrize("bad", [0.0, -1e-8])
@pytest.mark.parametrize(
    "make",
    [
        lambda e: jaxgd.adam(1e-3, eps=e),
        lambda e: jaxgd.adagrad(1e-3, eps=e),
        lambda e: jaxgd.rmsprop(1e-3, eps=e),
        lambda e: jaxgd.rmsprop(1e-3, eps=e, centered=True),
    ],
)
def test_eps_that_would_divide_by_zero(make, bad):
    with pytest.raises(ValueError, match=r"eps must be a finite number >=? 0"):
        make(bad)


def test_adam_eps_zero_is_allowed_when_eps_root_keeps_the_denominator_positive():
    opt = jaxgd.adam(1e-3, eps=0.0, eps_root=1e-8)
    updates, _ = opt.update(jnp.zeros(3), opt.init(jnp.zeros(3)))
    assert np.all(np.isfinite(np.asarray(updates)))


def test_chain_of_something_that_is_not_a_transformation():
    with pytest.raises(TypeError, match="chain\\(\\) argument 1 is function"):
        jaxgd.chain(jaxgd.identity(), lambda g: g)


def test_traced_values_are_not_checked_at_trace_time():
    import jax

    # Documented: a traced learning rate has no value yet; it passes through unchecked.
    out = jax.jit(lambda lr: jaxgd.sgd(lr).update(jnp.ones(2), jaxgd.sgd(lr).init(
        jnp.ones(2)))[0])(-1.0)
    np.testing.assert_allclose(out, [1.0, 1.0])
