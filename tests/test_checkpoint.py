"""Optimizer states through an orbax checkpoint: save, restore, go on, and get exactly
the run that was never interrupted; for every catalog optimizer (a representative few
by default, all of them with ``-m slow``), with and without a learning-rate schedule."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from catalog_tiers import catalog_params

import jaxgd
from jaxgd.core.base import accepts_extra_args
from jaxgd.optimizers.catalog import OPTIMIZERS

ocp = pytest.importorskip("orbax.checkpoint")

BEFORE, AFTER = 3, 3


def loss(p):
    return jnp.sum((p["w"] - 1.0) ** 2) + jnp.sum(jnp.cos(p["b"]))


def build(name, schedule):
    factory = OPTIMIZERS[name]
    if "learning_rate" not in jaxgd.hyperparam_names(factory):
        return factory()
    learning_rate = jaxgd.exponential_decay(0.05, 10, 0.5) if schedule else 0.05
    return factory(learning_rate=learning_rate)


def training_step(opt):
    extra = accepts_extra_args(opt.update)

    @jax.jit
    def step(params, state):
        value, grads = jax.value_and_grad(loss)(params)
        kwargs = {"value": value, "grad": grads, "value_fn": loss} if extra else {}
        updates, state = opt.update(grads, state, params, **kwargs)
        return jaxgd.apply_updates(params, updates), state

    def steps(params, state, n):
        for _ in range(n):
            params, state = step(params, state)
        return params, state

    return steps


@pytest.mark.parametrize("name", catalog_params(sorted(OPTIMIZERS)))
def test_a_restored_state_goes_on_exactly_as_the_uninterrupted_run(name, tmp_path):
    check_restored_run(build(name, schedule=False), tmp_path)


# rprop takes no schedule: its learning rate is the initial step size.
@pytest.mark.parametrize("name", catalog_params(
    sorted(set(OPTIMIZERS) - {"rprop"}), default={"sgd", "sign_sgd", "adam", "noisy_sgd"}))
def test_a_restored_state_with_a_schedule_goes_on_exactly(name, tmp_path):
    check_restored_run(build(name, schedule=True), tmp_path)


def check_restored_run(opt, tmp_path):
    steps = training_step(opt)
    params = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3), "b": jnp.full(3, 0.5)}
    params, state = steps(params, opt.init(params), BEFORE)
    whole = steps(params, state, AFTER)

    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(tmp_path / "ckpt", {"params": params, "opt_state": state})
        checkpointer.wait_until_finished()
        target = jax.tree.map(ocp.utils.to_shape_dtype_struct,
                              {"params": params, "opt_state": state})
        restored = checkpointer.restore(tmp_path / "ckpt", target)
    assert jax.tree.structure(restored["opt_state"]) == jax.tree.structure(state)
    resumed = steps(restored["params"], restored["opt_state"], AFTER)
    for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(whole), strict=True):
        np.testing.assert_array_equal(numbers(a), numbers(b))


def numbers(x):
    """The values of an array, a typed PRNG key's too."""
    return np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(
        x.dtype, jax.dtypes.prng_key) else x)
