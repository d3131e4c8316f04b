"""Wrappers (masked, partition, apply_if_finite, accumulate_gradients): optax semantics,
bit-identical skipping, sweep-ready hyperparameters, and clear errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import nested_params, random_like, updates_side_by_side

import jaxgd
from jaxgd.transforms.masking import MaskedNode, masked, partition
from jaxgd.transforms.wrappers import accumulate_gradients, apply_if_finite

# A prefix mask and a full label tree for conftest's nested_params().
PREFIX_MASK = {"dense": True, "pair": (False, True), "stack": False}
LABELS = {"dense": {"w": "adam", "b": "sgd"}, "pair": "rms", "stack": ["adam", "sgd"]}


def by_ndim(params):
    return jax.tree.map(lambda x: x.ndim > 1, params)


def label_by_ndim(params):
    return jax.tree.map(lambda x: "adam" if x.ndim > 1 else "sgd", params)


def transforms_of(lib):
    return {"adam": lib.adam(0.1), "sgd": lib.sgd(0.05, momentum=0.9), "rms": lib.rmsprop(0.01)}


def assert_trees_close(a, b, rtol=1e-5, atol=1e-7):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def assert_trees_equal(a, b):
    jax.tree.map(np.testing.assert_array_equal, a, b)


@pytest.mark.parametrize("mask", [PREFIX_MASK, by_ndim], ids=["prefix_tree", "callable"])
def test_masked_matches_optax(params, mask):
    ours = masked(jaxgd.adam(0.1), mask)
    theirs = optax.masked(optax.adam(0.1), mask)
    assert_trees_close(*updates_side_by_side(ours, theirs, params))


def test_masked_passes_masked_out_updates_through_and_keeps_no_state_for_them(params):
    opt = masked(jaxgd.adam(0.1), PREFIX_MASK)
    state = opt.init(params)
    grads = random_like(params, jax.random.PRNGKey(3))
    updates, state = opt.update(grads, state, params)
    assert_trees_equal(updates["stack"], grads["stack"])
    np.testing.assert_array_equal(updates["pair"][0], grads["pair"][0])
    assert not np.allclose(updates["dense"]["w"], grads["dense"]["w"])
    mu = state.inner_state.inner_state[0].mu
    assert isinstance(mu["stack"], MaskedNode) and isinstance(mu["pair"][0], MaskedNode)
    assert len(jax.tree.leaves(mu)) == 3  # dense.w, dense.b, pair[1]


@pytest.mark.parametrize("labels", [LABELS, label_by_ndim], ids=["label_tree", "callable"])
def test_partition_matches_optax(params, labels):
    ours = partition(transforms_of(jaxgd), labels)
    theirs = optax.partition(transforms_of(optax), labels)
    assert_trees_close(*updates_side_by_side(ours, theirs, params))


def test_partition_with_a_prefix_label_tree_matches_multi_transform(params):
    labels = {"dense": "adam", "pair": "sgd", "stack": "rms"}
    ours = partition(transforms_of(jaxgd), labels)
    theirs = optax.multi_transform(transforms_of(optax), labels)
    assert_trees_close(*updates_side_by_side(ours, theirs, params))


def run_steps(opt, params, grads_list, **extra):
    """Apply ``opt`` to a list of gradients; returns the params, states and updates of each step."""
    state = opt.init(params)
    update = jax.jit(opt.update)
    history = []
    for grads in grads_list:
        updates, state = update(grads, state, params, **extra)
        params = jaxgd.apply_updates(params, updates)
        history.append((params, state, updates))
    return history


def poisoned(grads, value):
    return jax.tree.map(lambda g: g.at[..., 0].set(value) if g.ndim else g * value, grads)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_apply_if_finite_skips_a_bad_step_bit_identically(params, bad):
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    grads = [random_like(params, k) for k in keys]
    grads[2] = poisoned(grads[2], bad)
    history = run_steps(apply_if_finite(jaxgd.adam(0.1), 3), params, grads)
    (p1, s1, _), (p2, s2, u2), (p3, s3, _) = history[1:]
    assert_trees_equal(p2, p1)
    assert_trees_equal(s2.inner_state, s1.inner_state)
    assert_trees_equal(u2, jax.tree.map(jnp.zeros_like, u2))
    assert (int(s2.notfinite_count), bool(s2.last_finite), int(s2.total_notfinite)) == (1, False, 1)
    assert (int(s3.notfinite_count), bool(s3.last_finite), int(s3.total_notfinite)) == (0, True, 1)
    assert not np.array_equal(jax.tree.leaves(p3)[0], jax.tree.leaves(p2)[0])


def test_apply_if_finite_matches_optax_and_gives_up_after_max_consecutive_errors(params):
    """Bad steps 2-5 in a row with max 2: steps 2 and 3 are skipped, 4 and 5 go through."""
    keys = jax.random.split(jax.random.PRNGKey(1), 8)
    grads = [random_like(params, k) for k in keys]
    for i in (2, 3, 4, 5):
        grads[i] = poisoned(grads[i], np.nan)
    ours = run_steps(apply_if_finite(jaxgd.sgd(0.1, momentum=0.9), 2), params, grads)
    theirs = run_steps(optax.apply_if_finite(optax.sgd(0.1, momentum=0.9), 2), params, grads)
    for (_, s_ours, u_ours), (_, s_theirs, u_theirs) in zip(ours, theirs, strict=True):
        for a, b in zip(jax.tree.leaves(u_ours), jax.tree.leaves(u_theirs), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=0, equal_nan=True)
        for name in ("notfinite_count", "last_finite", "total_notfinite"):
            assert int(getattr(s_ours, name)) == int(getattr(s_theirs, name))
    assert np.isnan(jax.tree.leaves(ours[4][2])[0]).any()
    assert not np.isnan(jax.tree.leaves(ours[3][2])[0]).any()


INNER = {"adam": lambda: jaxgd.adam(0.1), "momentum": lambda: jaxgd.sgd(0.1, momentum=0.9)}


@pytest.mark.parametrize("inner", sorted(INNER))
@pytest.mark.parametrize("k", [1, 3])
def test_accumulate_gradients_equals_one_step_on_the_mean(params, k, inner):
    num_updates = 3
    keys = jax.random.split(jax.random.PRNGKey(2), num_updates * k)
    grads = [random_like(params, key) for key in keys]
    accumulated = run_steps(accumulate_gradients(INNER[inner](), k), params, grads)
    means = [
        jax.tree.map(lambda *g: sum(g) / k, *grads[i * k:(i + 1) * k])
        for i in range(num_updates)
    ]
    direct = run_steps(INNER[inner](), params, means)
    for i in range(num_updates):
        p_acc, state, _ = accumulated[(i + 1) * k - 1]
        assert_trees_close(p_acc, direct[i][0], rtol=1e-6, atol=1e-7)
        assert int(state.gradient_step) == i + 1 and int(state.mini_step) == 0
        for j in range(i * k, (i + 1) * k - 1):  # between updates: nothing moves
            _, s_between, u_between = accumulated[j]
            assert_trees_equal(u_between, jax.tree.map(jnp.zeros_like, u_between))
            previous = accumulated[j - 1][1].inner_state if j else INNER[inner]().init(params)
            assert_trees_equal(s_between.inner_state, previous)


def test_accumulate_gradients_matches_optax_multisteps(params):
    ours = accumulate_gradients(jaxgd.adam(0.1), 4)
    theirs = optax.MultiSteps(optax.adam(0.1), 4).gradient_transformation()
    assert_trees_close(*updates_side_by_side(ours, theirs, params, num_steps=40))


def test_accumulate_gradients_with_a_schedule_of_k(params):
    """k = 1, 2, 3, ... micro-batches for update 0, 1, 2, ...: updates at steps 0, 2, 5."""
    opt = accumulate_gradients(jaxgd.sgd(0.1), lambda step: step + 1)
    grads = [random_like(params, jax.random.PRNGKey(i)) for i in range(6)]
    history = run_steps(opt, params, grads)
    moved = [bool(np.any(jax.tree.leaves(u)[0] != 0)) for _, _, u in history]
    assert moved == [True, False, True, False, False, True]


WRAPPERS = {
    "masked": lambda inner: masked(inner, PREFIX_MASK),
    "partition": lambda inner: partition({"a": inner, "b": jaxgd.identity()}, {
        "dense": "a", "pair": "b", "stack": "a"}),
    "apply_if_finite": lambda inner: apply_if_finite(inner, 3),
    "accumulate_gradients": lambda inner: accumulate_gradients(inner, 1),
}


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_inner_hyperparams_stay_settable_through_the_wrapper(params, name):
    wrap = WRAPPERS[name]
    opt = wrap(jaxgd.adam(0.1))
    state = opt.init(params)
    assert float(jaxgd.get_hyperparams(state)["learning_rate"]) == pytest.approx(0.1)
    state = jaxgd.set_hyperparams(state, learning_rate=0.01)
    grads = random_like(params, jax.random.PRNGKey(5))
    got, _ = opt.update(grads, state, params)
    want, _ = wrap(jaxgd.adam(0.01)).update(grads, wrap(jaxgd.adam(0.01)).init(params), params)
    assert_trees_close(got, want, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_inner_hyperparams_may_be_traced(params, name):
    """A vmap over learning rates builds the wrapped optimizer with traced values."""
    grads = random_like(params, jax.random.PRNGKey(6))

    def first_update(lr):
        opt = WRAPPERS[name](jaxgd.sgd(lr))
        return opt.update(grads, opt.init(params), params)[0]

    lrs = jnp.array([0.1, 0.2])
    swept = jax.jit(jax.vmap(first_update))(lrs)
    for i, lr in enumerate(lrs):
        assert_trees_close(jax.tree.map(lambda x, i=i: x[i], swept), first_update(float(lr)))


def test_mask_with_the_wrong_structure_names_both_structures(params):
    opt = masked(jaxgd.adam(0.1), {"dense": True, "pair": False})
    with pytest.raises(ValueError, match=r"(?s)mask must have the tree structure of params.*"
                                         r"mask: .*params: "):
        opt.init(params)


def test_mask_with_non_bool_leaves_raises(params):
    with pytest.raises(TypeError, match="mask leaves must be scalar bools"):
        masked(jaxgd.adam(0.1), {"dense": 1, "pair": True, "stack": False}).init(params)


def test_partition_with_an_unknown_label_raises(params):
    labels = {"dense": "adam", "pair": "lion", "stack": "sgd"}
    with pytest.raises(ValueError, match=r"labels \[\"'lion'\"\] have no transformation"):
        partition(transforms_of(jaxgd), labels).init(params)


def test_partition_with_labels_of_the_wrong_structure_raises(params):
    with pytest.raises(ValueError, match="param_labels must have the tree structure"):
        partition(transforms_of(jaxgd), {"dense": "adam"}).init(params)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: partition({}, {}), "transforms must be a non-empty dict"),
        (lambda: apply_if_finite(jaxgd.sgd(0.1), 0), "max_consecutive_errors must be an int"),
        (lambda: apply_if_finite(jaxgd.sgd(0.1), 2.5), "max_consecutive_errors must be an int"),
        (lambda: accumulate_gradients(jaxgd.sgd(0.1), 0), "every_k must be an int >= 1"),
        (lambda: accumulate_gradients(jaxgd.sgd(0.1), -2), "every_k must be an int >= 1"),
        (lambda: accumulate_gradients(jaxgd.sgd(0.1), 2.0), "every_k must be an int >= 1"),
        (lambda: accumulate_gradients(jaxgd.sgd(0.1), True), "every_k must be an int >= 1"),
    ],
)
def test_bad_wrapper_arguments_raise(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_accumulate_gradients_with_updates_of_another_structure_raises():
    params = nested_params()
    opt = accumulate_gradients(jaxgd.sgd(0.1), 2)
    with pytest.raises(ValueError, match="updates and acc_grads must have the same tree"):
        opt.update({"dense": params["dense"]}, opt.init(params), params)
