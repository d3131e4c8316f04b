"""The many-leaf fast path: fit holds the params flat, with the per-leaf path's numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from catalog_tiers import REPRESENTATIVE
from conftest import nested_params

import jaxgd
from jaxgd.core.base import is_flatten_invariant
from jaxgd.train import flat, flat_layout


def flattens(params, optimizer, flat_params=None) -> bool:
    """Whether fit's loop would run on one vector (jaxgd.train.flat.plan)."""
    path = flat.plan(lambda p: 0.0, params, optimizer, flat_params, None, False)
    return isinstance(path, flat.FlatPath)

TARGET = nested_params(key=1)
CURVATURE = jax.tree.map(lambda t: 0.5 + 1.5 * jnp.abs(jnp.cos(10 * t)), TARGET)


def loss_fn(params):
    """A separable, well-conditioned quadratic on a nested tree, minimum 0 at TARGET."""
    terms = jax.tree.map(lambda p, t, d: 0.5 * jnp.sum(d * (p - t) ** 2), params, TARGET,
                         CURVATURE)
    return sum(jax.tree.leaves(terms))


SETTINGS = {"lbfgs": (None,), "adadelta": (None,), "adafactor": (None,), "newton": (1.0,),
            "polyak_sgd": (1.0,), "sign_sgd": (0.01,), "sm3": (0.5,), "lars": (0.5,),
            "prodigy": (1.0,), "dadapt_adamw": (1.0,), "cocob": (1.0,), "dog": (1.0,),
            "dowg": (1.0,)}


def _numeric(x):
    return jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x


def build(name):
    return jaxgd.OPTIMIZERS[name](*SETTINGS.get(name, (0.05,)))


def big_loss_fn(params):
    """``loss_fn`` on each of several copies of the nested tree."""
    return sum(loss_fn(p) for p in params)


#: The big tree's conversion outside the program does not depend on the rule: the
#: representative optimizers run on the small tree, a few kinds of rule (elementwise,
#: global norm, extra arguments) on the big one by default, all with ``-m slow``.
BIG_TREE_BY_DEFAULT = ("adam", "lbfgs", "newton", "prodigy", "sgd")
CASES = [
    pytest.param(name, copies, id=f"{name}-{label}",
                 marks=() if name in (REPRESENTATIVE if copies == 1 else BIG_TREE_BY_DEFAULT)
                 else pytest.mark.slow)
    for name in sorted(jaxgd.OPTIMIZERS)
    for copies, label in ((1, "small tree"), (2, "big tree"))
]


@pytest.mark.parametrize("name, copies", CASES)
def test_fit_with_flat_params_equals_the_per_leaf_fit(name, copies):
    """In float64: with FMA, XLA rounds a*b+c differently for different vector widths
    (a 1000-element leaf vs one long vector), a float32 ulp per step; float64 keeps that
    at 1e-16 so rel 1e-6 tests the fast path itself, elementwise. The small tree (6
    leaves) is converted inside the loop's program, the big one (12) outside it."""
    with jax.enable_x64(True):
        optimizer = build(name)
        start = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64),
                             [nested_params(key=k) for k in range(copies)])
        assert (len(jax.tree.leaves(start)) > flat_layout.IN_PROGRAM_LEAVES) == (copies > 1)
        per_leaf = jaxgd.fit(big_loss_fn, start, optimizer, max_steps=20, flat_params=False)
        auto = jaxgd.fit(big_loss_fn, start, optimizer, max_steps=20)
    assert auto.losses.dtype == jnp.float64
    assert flattens(start, optimizer) == is_flatten_invariant(optimizer)
    assert jax.tree.structure(auto.params) == jax.tree.structure(start)
    assert jax.tree.structure(auto.opt_state) == jax.tree.structure(per_leaf.opt_state)
    for a, b in zip(jax.tree.leaves((auto.params, auto.opt_state)),
                    jax.tree.leaves((per_leaf.params, per_leaf.opt_state)), strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(_numeric(a), _numeric(b), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(auto.losses, per_leaf.losses, rtol=1e-6)
    assert int(auto.num_steps) == int(per_leaf.num_steps) > 0


def test_flat_params_true_refuses_optimizers_that_flattening_would_change():
    with pytest.raises(ValueError, match="flat_params=True needs a flatten-invariant optimizer"):
        jaxgd.fit(loss_fn, nested_params(), jaxgd.lamb(1e-3), max_steps=2, flat_params=True)
    assert not is_flatten_invariant(jaxgd.chain(jaxgd.adam(1e-3), jaxgd.scale_by_trust_ratio()))
    assert not is_flatten_invariant(jaxgd.add_decayed_weights(1e-4, mask=lambda p: p))


def test_mixed_dtypes_stay_per_leaf_and_are_refused_when_forced():
    params = {"a": jnp.ones(3), "b": jnp.ones(2, jnp.bfloat16)}
    assert not flattens(params, jaxgd.adam(1e-3))
    with pytest.raises(ValueError, match="share one dtype"):
        jaxgd.fit(lambda p: jnp.sum(p["a"] ** 2) + jnp.sum(p["b"] ** 2).astype(jnp.float32),
                  params, jaxgd.adam(1e-3), max_steps=2, flat_params=True)


def test_single_leaf_params_are_left_alone():
    assert not flattens(jnp.ones(5), jaxgd.adam(1e-3))


def test_resuming_a_flat_run_from_its_state_continues_the_same_run():
    optimizer = jaxgd.adam(0.05)
    start = nested_params(key=0)
    whole = jaxgd.fit(loss_fn, start, optimizer, max_steps=20)
    half = jaxgd.fit(loss_fn, start, optimizer, max_steps=10)
    rest = jaxgd.fit(loss_fn, half.params, optimizer, max_steps=10, opt_state=half.opt_state)
    for a, b in zip(jax.tree.leaves(rest.params), jax.tree.leaves(whole.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(rest.losses, whole.losses[10:], rtol=1e-6)


def test_loss_sees_the_callers_tree_and_data_batches():
    seen = []

    def loss(params, batch):
        seen.append(jax.tree.structure(params))
        return jnp.mean((batch[0] @ params["w"] + params["b"] - batch[1]) ** 2)

    problem = jaxgd.problems.linear_regression(num_examples=64, num_features=3)
    res = jaxgd.fit(loss, problem.init_params, jaxgd.sgd(0.1), problem.data, batch_size=16,
                    max_steps=5)
    assert all(s == jax.tree.structure(problem.init_params) for s in seen)
    assert set(res.params) == {"w", "b"}


def test_flat_layout_round_trips_states_of_nested_optimizers():
    params = nested_params()
    optimizer = jaxgd.chain(jaxgd.clip_by_global_norm(1.0), jaxgd.adam(1e-3))
    layout = flat_layout.FlatLayout.of(params)
    mask = flat_layout.state_mask(optimizer, layout)
    # adam's mu and nu are params-shaped; the rest (its count, hyperparameters) is not.
    assert mask.is_params.count(True) == 2
    state = optimizer.update(jax.tree.map(jnp.ones_like, params), optimizer.init(params),
                             params)[1]
    flat_state = layout.ravel_state(state, mask)
    assert jax.tree.structure(flat_state) == mask.structure
    for is_params, leaf in zip(mask.is_params, jax.tree.leaves(flat_state), strict=True):
        assert (leaf.shape == (layout.size,)) == is_params
    for unravel in (layout.unravel, layout.unraveler()):
        back = layout.unravel_state(flat_state, mask, unravel)
        assert jax.tree.structure(back) == jax.tree.structure(state)
        for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(state), strict=True):
            np.testing.assert_array_equal(a, b)


def test_state_mask_of_a_one_leaf_tree_keeps_the_count_apart():
    # With one leaf, the per-leaf treedef is a bare leaf: the count, a bare leaf too, must
    # not be taken for a params tree.
    params = {"w": jnp.arange(3.0)}
    optimizer = jaxgd.adam(0.1)
    mask = flat_layout.state_mask(optimizer, flat_layout.FlatLayout.of(params))
    assert sum(mask.is_params) == 2
    half = jaxgd.fit(lambda p: jnp.sum(p["w"] ** 2), params, optimizer, max_steps=3,
                     flat_params=True)
    rest = jaxgd.fit(lambda p: jnp.sum(p["w"] ** 2), half.params, optimizer, max_steps=3,
                     flat_params=True, opt_state=half.opt_state)
    whole = jaxgd.fit(lambda p: jnp.sum(p["w"] ** 2), params, optimizer, max_steps=6,
                      flat_params=False)
    np.testing.assert_allclose(rest.params["w"], whole.params["w"], rtol=1e-6)


def test_conversions_outside_a_program_equal_the_traced_ones():
    # More leaves of one shape than one chunk takes (the last chunk overlaps the one
    # before), interleaved with others (scalars included), and a shape with fewer.
    count = flat_layout.CHUNK + 7
    keys = jax.random.split(jax.random.key(0), 3 * count)
    params = [{"v": jax.random.normal(keys[3 * i], (3,)),
               "m": jax.random.normal(keys[3 * i + 1], (2, 2)),
               "s": jax.random.normal(keys[3 * i + 2], ())} for i in range(count)]
    params.append({"fewer than a chunk": jnp.arange(12.0).reshape(3, 4)})
    layout = flat_layout.FlatLayout.of(params)
    vector = layout.ravel(params)
    raveled = layout.raveler()(params)
    assert raveled.shape == vector.shape and raveled.dtype == vector.dtype
    np.testing.assert_array_equal(raveled, vector)
    unraveled = layout.unraveler()(vector)
    assert jax.tree.structure(unraveled) == jax.tree.structure(params)
    for a, b in zip(jax.tree.leaves(unraveled), jax.tree.leaves(params), strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    # Under a trace they are the traceable ravel and unravel.
    np.testing.assert_array_equal(jax.jit(layout.raveler())(params), vector)
    traced = jax.jit(layout.unraveler())(vector)
    for a, b in zip(jax.tree.leaves(traced), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(a, b)


def test_user_chain_initialised_outside_the_loop_equals_the_per_leaf_fit():
    # A chain's init has no split_hyperparams hook like the aliases' (jaxgd.core.hyperparams),
    # so fit builds its state eagerly, on the raveled params.
    optimizer = jaxgd.chain(jaxgd.clip_by_global_norm(1.0), jaxgd.adam(0.05))
    start = jax.tree.map(jnp.zeros_like, TARGET)
    flat_run = jaxgd.fit(loss_fn, start, optimizer, max_steps=30)
    per_leaf = jaxgd.fit(loss_fn, start, optimizer, max_steps=30, flat_params=False)
    assert jax.tree.structure(flat_run.opt_state) == jax.tree.structure(per_leaf.opt_state)
    for a, b in zip(jax.tree.leaves((flat_run.params, flat_run.opt_state)),
                    jax.tree.leaves((per_leaf.params, per_leaf.opt_state)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_unravel_at_offsets_equals_unravel_with_the_same_derivatives():
    params = [nested_params(key=k) for k in range(3)]
    layout = flat_layout.FlatLayout.of(params)
    vector = layout.ravel(params)
    offsets = layout.offset_inputs()
    assert layout.offset_inputs() is offsets  # one set per layout

    def weighted(unravel):
        return lambda v: sum(jnp.sum(jnp.sin(x) * (i + 1.0))
                             for i, x in enumerate(jax.tree.leaves(unravel(v))))

    by_split = weighted(layout.unravel)
    at_offsets = weighted(lambda v: layout.unravel_at(v, offsets))
    cut = jax.jit(layout.unravel_at)(vector, offsets)
    for a, b in zip(jax.tree.leaves(cut), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(jax.jit(jax.grad(at_offsets))(vector),
                               jax.grad(by_split)(vector), rtol=1e-6)
    tangent = jnp.cos(jnp.arange(layout.size, dtype=vector.dtype))
    np.testing.assert_allclose(jax.jvp(at_offsets, (vector,), (tangent,))[1],
                               jax.jvp(by_split, (vector,), (tangent,))[1], rtol=1e-6)
    batch = jnp.stack([vector, 2 * vector])
    np.testing.assert_allclose(jax.vmap(at_offsets)(batch), jax.vmap(by_split)(batch),
                               rtol=1e-6)


def test_the_loop_of_a_big_tree_takes_the_leaf_offsets_as_inputs():
    # As inputs, not constants: XLA:CPU compiles a slice at a constant offset as a
    # kernel of its own per leaf (seconds on hundreds of leaves).
    params = [jnp.full((3,), float(i)) for i in range(flat_layout.IN_PROGRAM_LEAVES + 4)]
    lowered = jaxgd.lower_fit(lambda p: sum(jnp.sum(x ** 2) for x in p), params,
                              jaxgd.adam(0.1), max_steps=3)
    offsets = _loss_arguments(lowered)
    assert len(offsets) == len(params)
    assert all(info.shape == () for info in offsets)
    small = jaxgd.lower_fit(lambda p: sum(jnp.sum(x ** 2) for x in p), params[:2],
                            jaxgd.adam(0.1), max_steps=3)
    assert _loss_arguments(small) is None


def _loss_arguments(lowered):
    """The offsets the lowered loop's loss cuts its leaves at (its argument)."""
    (inputs,), _ = lowered.args_info
    return inputs.loss_args[0] if inputs.loss_args else None


def test_fit_inside_a_callers_jit_keeps_the_big_trees_offsets_out_of_sight():
    # Under the caller's jit the offsets are constants of the caller's program: XLA
    # would fold the loss's cuts and the result's unflattening into constant slices, one
    # kernel per leaf again, unless they reach it through an optimization barrier.
    leaves = flat_layout.IN_PROGRAM_LEAVES + 4
    params = {f"x{i:02d}": jnp.full((3,), float(i)) for i in range(leaves)}

    def loss(p):
        return sum(jnp.sum(jnp.sin(x) ** 2) for x in p.values())

    def train(p):
        return jaxgd.fit(loss, p, jaxgd.adam(0.1), max_steps=3).params

    text = jax.jit(train).lower(params).compile().as_text()
    assert text.count("dynamic-slice") >= 2 * leaves  # the loss's cuts and the result's
    assert text.count(" slice(") < leaves
    for a, b in zip(jax.tree.leaves(jax.jit(train)(params)), jax.tree.leaves(train(params)),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_a_loss_that_ravels_the_whole_tree_gets_slices_at_constant_offsets():
    # XLA cancels those against the loss's own concatenation.
    from jax.flatten_util import ravel_pytree
    params = [jnp.full((3,), float(i)) for i in range(flat_layout.IN_PROGRAM_LEAVES + 4)]
    layout = flat_layout.FlatLayout.of(params)
    weights = jnp.arange(layout.size, dtype=jnp.float32)

    def ravels(p, w):
        return jnp.vdot(ravel_pytree(p)[0], w)

    def concatenates(p, w):
        return jnp.vdot(jnp.concatenate([x.ravel() for x in p]), w)

    def per_leaf(p, w):
        return sum(jnp.vdot(x, w[:3]) for x in p)

    def out_of_order(p, w):
        return jnp.vdot(jnp.concatenate([x.ravel() for x in p[::-1]]), w)

    found = {f.__name__: flat.loss_reflattens(f, layout, weights, True)
             for f in (ravels, concatenates, per_leaf, out_of_order)}
    assert found == {"ravels": True, "concatenates": True, "per_leaf": False,
                     "out_of_order": False}
    lowered = jaxgd.lower_fit(ravels, params, jaxgd.sgd(0.1), weights, max_steps=2)
    assert _loss_arguments(lowered) is None
    res = jaxgd.fit(ravels, params, jaxgd.sgd(0.1), weights, max_steps=2)
    expected = [x - 0.2 * weights[3 * i: 3 * i + 3] for i, x in enumerate(params)]
    for a, b in zip(res.params, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
