"""State and trees that tools can walk: optax.tree.map_params over masked and partition
states, callable pytrees as masks, None leaves, equinox Modules, and a state that does not
fit the gradients named as such."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd

PARAMS = {"w": jnp.ones((2, 3)), "b": jnp.full(3, 0.5, jnp.float32)}
SPECS = {"w": "spec of w", "b": "spec of b"}


def masked_and_partitioned(lib):
    return {
        "masked": lib.masked(lib.adam(1e-3), {"w": True, "b": False}),
        "partition": lib.partition({"x": lib.adam(1e-3), "y": lib.sgd(0.1, momentum=0.9)},
                                   {"w": "x", "b": "y"}),
        "partition_by_function": lib.partition(
            {"x": lib.adam(1e-3), "y": lib.sgd(0.1, momentum=0.9)},
            lambda p: jax.tree.map(lambda x: "x" if x.ndim > 1 else "y", p)),
    }


def moments(state):
    """Every params-shaped tree of moments in ``state``, in order."""
    return [value for key in ("mu", "nu", "trace")
            for _, value in optax.tree_utils.tree_get_all_with_path(state, key)]


@pytest.mark.parametrize("name", sorted(masked_and_partitioned(jaxgd)))
def test_map_params_annotates_masked_and_partition_states_as_optax(name):
    def spec_or_masked(value, spec):
        return value if isinstance(value, optax.MaskedNode) else spec

    annotated = []
    for lib in (jaxgd, optax):
        opt = masked_and_partitioned(lib)[name]
        annotated.append(optax.tree.map_params(
            opt, spec_or_masked, opt.init(PARAMS), SPECS,
            transform_non_params=lambda _: None,
            is_leaf=lambda v: isinstance(v, optax.MaskedNode)))
    ours, theirs = map(moments, annotated)
    assert ours == theirs and ours
    assert {"w": "spec of w", "b": optax.MaskedNode()} in ours


@pytest.mark.parametrize("name", sorted(masked_and_partitioned(jaxgd)))
def test_a_state_mapped_by_map_params_still_steps(name):
    opt = masked_and_partitioned(jaxgd)[name]
    state = optax.tree.map_params(opt, jnp.zeros_like, opt.init(PARAMS))
    updates, _ = opt.update(PARAMS, state, PARAMS)
    assert jax.tree.structure(updates) == jax.tree.structure(PARAMS)


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class CallableTree:
    """A pytree that is also callable, like an equinox Module with a __call__."""

    w: object
    b: object

    def __call__(self, *args):
        raise AssertionError("a callable pytree given as a mask must not be called")


@pytest.mark.parametrize("lib", [jaxgd, optax], ids=["jaxgd", "optax"])
def test_a_callable_pytree_mask_is_a_mask_tree(lib):
    params = CallableTree(jnp.ones(3), jnp.ones(2))
    opt = lib.masked(lib.scale(-2.0), CallableTree(True, False))
    updates, _ = opt.update(params, opt.init(params), params)
    np.testing.assert_array_equal(updates.w, -2.0 * params.w)
    np.testing.assert_array_equal(updates.b, params.b)


def test_a_callable_pytree_of_labels_is_a_label_tree():
    params = CallableTree(jnp.ones(3), jnp.ones(2))
    opt = jaxgd.partition({"fast": jaxgd.sgd(1.0), "slow": jaxgd.sgd(0.1)},
                          CallableTree("fast", "slow"))
    updates, _ = opt.update(params, opt.init(params), params)
    np.testing.assert_allclose(updates.w, -params.w)
    np.testing.assert_allclose(updates.b, -0.1 * params.b)


def test_an_equinox_module_of_bools_is_a_mask_tree():
    eqx = pytest.importorskip("equinox")
    model = eqx.nn.Linear(3, 2, key=jax.random.PRNGKey(0))
    mask = jax.tree.map(lambda x: x.ndim > 1, model)
    results = []
    for lib in (jaxgd, optax):
        opt = lib.masked(lib.add_decayed_weights(0.5), mask)
        results.append(opt.update(model, opt.init(model), model)[0])
    jax.tree.map(np.testing.assert_array_equal, *results)
    np.testing.assert_array_equal(results[0].bias, model.bias)


FROZEN_PARAMS = {"w": jnp.ones(3), "frozen": None}


@pytest.mark.parametrize("updates", [
    {"w": jnp.full(3, 0.5, jnp.float32), "frozen": None},
    {"w": jnp.full(3, 0.5, jnp.float32), "frozen": jnp.ones(2)},
], ids=["none_update", "array_update"])
def test_apply_updates_passes_none_params_through_as_optax(updates):
    ours = jaxgd.apply_updates(FROZEN_PARAMS, updates)
    assert ours["frozen"] is None
    jax.tree.map(np.testing.assert_array_equal, ours, optax.apply_updates(FROZEN_PARAMS, updates))


@pytest.mark.parametrize("params", [
    {"w": jnp.ones(3), "frozen": jnp.ones(2)},
    {"w": jnp.ones(3), "frozen": None},
], ids=["array_param", "none_param"])
def test_add_decayed_weights_keeps_none_updates_as_optax(params):
    updates = {"w": jnp.full(3, 0.5, jnp.float32), "frozen": None}
    results = [lib.add_decayed_weights(0.1).update(updates, (), params)[0]
               for lib in (jaxgd, optax)]
    assert results[0]["frozen"] is None
    jax.tree.map(np.testing.assert_allclose, *results)


def test_apply_updates_takes_an_equinox_module_with_static_fields():
    eqx = pytest.importorskip("equinox")
    model = eqx.nn.Linear(3, 2, key=jax.random.PRNGKey(0))
    updates = jax.tree.map(lambda x: 0.1 * jnp.ones_like(x), model)
    ours = jaxgd.apply_updates(model, updates)
    assert isinstance(ours, eqx.nn.Linear) and ours.in_features == 3
    jax.tree.map(np.testing.assert_array_equal, ours, optax.apply_updates(model, updates))


def test_apply_updates_takes_a_whole_equinox_model_and_its_array_updates():
    eqx = pytest.importorskip("equinox")
    model = eqx.nn.MLP(3, 2, 4, 2, key=jax.random.PRNGKey(0))  # activations are fields
    grads = eqx.filter_grad(lambda m: jnp.sum(m(jnp.ones(3))))(model)
    opt = jaxgd.adam(1e-2)
    updates, _ = opt.update(grads, opt.init(eqx.filter(model, eqx.is_array)))
    ours = jaxgd.apply_updates(model, updates)
    assert ours.activation is model.activation
    jax.tree.map(np.testing.assert_array_equal, eqx.filter(ours, eqx.is_array),
                 eqx.filter(eqx.apply_updates(model, updates), eqx.is_array))


@pytest.mark.parametrize("make", [jaxgd.adam, jaxgd.rmsprop, jaxgd.lion],
                         ids=["adam", "rmsprop", "lion"])
def test_a_state_for_params_of_other_shapes_names_the_leaf_and_both_shapes(make):
    opt = make(1e-3)
    state = opt.init({"w": jnp.ones(3), "b": jnp.ones(2)})
    with pytest.raises(ValueError, match=r"\['w'\] has shape \(4,\).*\(3,\)"):
        opt.update({"w": jnp.ones(4), "b": jnp.ones(2)}, state)


def test_a_mask_function_wrapped_in_a_jax_partial_is_still_called():
    by_ndim = jax.tree_util.Partial(lambda p: jax.tree.map(lambda x: x.ndim > 1, p))
    opt = jaxgd.masked(jaxgd.scale(-2.0), by_ndim)
    updates, _ = opt.update(PARAMS, opt.init(PARAMS), PARAMS)
    np.testing.assert_array_equal(updates["w"], -2.0 * PARAMS["w"])
    np.testing.assert_array_equal(updates["b"], PARAMS["b"])
