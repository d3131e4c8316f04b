"""flax nnx: ``nnx.Optimizer`` holds a jaxgd state whose hyperparameters can be changed."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd

nnx = pytest.importorskip("flax.nnx")


def _model_and_optimizer(tx):
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    return model, nnx.Optimizer(model, tx, wrt=nnx.Param)


def _ones_grads(model):
    return jax.tree.map(jnp.ones_like, nnx.state(model, nnx.Param))


@nnx.jit
def _step(model, optimizer, grads):
    optimizer.update(model, grads)


def _kernel_change(model, optimizer, grads):
    before = np.asarray(model.kernel.get_value())
    _step(model, optimizer, grads)
    return np.asarray(model.kernel.get_value()) - before


def test_set_hyperparams_on_opt_state_changes_the_next_update():
    model, optimizer = _model_and_optimizer(jaxgd.sgd(1e-3))
    grads = _ones_grads(model)
    np.testing.assert_allclose(_kernel_change(model, optimizer, grads), -1e-3, rtol=1e-4)
    jaxgd.set_hyperparams(optimizer.opt_state, learning_rate=0.25)  # in place, as nnx does
    np.testing.assert_allclose(_kernel_change(model, optimizer, grads), -0.25, rtol=1e-6)
    assert float(jaxgd.get_hyperparams(optimizer.opt_state)["learning_rate"]) == 0.25


def test_get_hyperparams_finds_them_in_nnx_state():
    model, optimizer = _model_and_optimizer(jaxgd.adam(1e-3, b1=0.8))
    found = jaxgd.get_hyperparams(nnx.state(optimizer))
    assert set(found) == {"learning_rate", "b1", "b2", "eps", "eps_root"}
    assert float(found["b1"]) == pytest.approx(0.8)


def test_a_state_split_off_by_nnx_can_be_set_and_merged_back():
    model, optimizer = _model_and_optimizer(jaxgd.adam(1e-3))
    state = jaxgd.set_hyperparams(nnx.state(optimizer), learning_rate=0.5)
    nnx.update(optimizer, state)
    # Adam's first step is lr * sign(g)
    change = _kernel_change(model, optimizer, _ones_grads(model))
    np.testing.assert_allclose(change, -0.5, rtol=1e-5)


def test_assigning_the_variable_works_as_with_optax():
    model, optimizer = _model_and_optimizer(jaxgd.sgd(1e-3, momentum=0.9))
    optimizer.opt_state.hyperparams["learning_rate"][...] = 0.5
    grads = _ones_grads(model)
    np.testing.assert_allclose(_kernel_change(model, optimizer, grads), -0.5, rtol=1e-6)
    # the dtype survives a Python float assigned in place
    assert optimizer.opt_state.hyperparams["learning_rate"].get_value().dtype == jnp.float32


def test_partitioned_optimizers_are_addressed_by_path_under_nnx():
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    def labels(params):
        return jax.tree_util.tree_map_with_path(
            lambda path, _: "k" if "kernel" in jax.tree_util.keystr(path) else "b", params)

    tx = jaxgd.partition({"k": jaxgd.sgd(0.1), "b": jaxgd.sgd(0.2)}, labels)
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    jaxgd.set_hyperparams(optimizer.opt_state, {"k/learning_rate": 0.5})
    found = jaxgd.get_hyperparams(optimizer.opt_state)
    assert float(found["k"]["learning_rate"]) == 0.5
    assert float(found["b"]["learning_rate"]) == pytest.approx(0.2)
    np.testing.assert_allclose(_kernel_change(model, optimizer, _ones_grads(model)), -0.5,
                               rtol=1e-6)
