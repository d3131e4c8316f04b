"""Accumulators stored in a chosen dtype: ``mu_dtype`` and ``nu_dtype`` on the Adam family,
``accumulator_dtype`` on momentum SGD and ``trace``, with optax's semantics (the update is
computed before the accumulator is rounded) and the defaults unchanged."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from catalog_tiers import catalog_params
from conftest import nested_params, random_like, updates_side_by_side

import jaxgd

LR = 0.01
BF16 = jnp.bfloat16

# The aliases with a first and a second moment, and the fields each dtype governs.
ADAM_FAMILY = {
    "adam": jaxgd.adam,
    "adamw": jaxgd.adamw,
    "nadam": jaxgd.nadam,
    "nadamw": jaxgd.nadamw,
    "amsgrad": jaxgd.amsgrad,
    "lamb": jaxgd.lamb,
}
FIELDS = {"mu_dtype": ("mu",), "nu_dtype": ("nu", "nu_max")}


def moment_states(state):
    """Every state node with a first moment (``ScaleByAdamState``, ``ScaleByAmsgradState``)."""
    nodes = jax.tree.leaves(state, is_leaf=lambda x: hasattr(x, "_fields") and "mu" in x._fields)
    return [node for node in nodes if hasattr(node, "_fields")]


def dtypes(tree):
    return {x.dtype for x in jax.tree.leaves(tree)}


@pytest.mark.parametrize("argument", sorted(FIELDS))
@pytest.mark.parametrize("name", sorted(ADAM_FAMILY))
def test_moment_is_stored_in_the_asked_dtype_and_the_rest_is_not(name, argument):
    params = nested_params()
    opt = ADAM_FAMILY[name](LR, **{argument: BF16})
    state = opt.init(params)
    for _ in range(2):  # and stays so after updates
        updates, state = opt.update(random_like(params, jax.random.PRNGKey(0)), state, params)
    (node,) = moment_states(state)
    for field in node._fields:
        if field == "count":
            continue
        expected = BF16 if field in FIELDS[argument] else jnp.float32
        assert dtypes(getattr(node, field)) == {jnp.dtype(expected)}, field
    assert dtypes(updates) == {jnp.dtype(jnp.float32)}
    # A dtype is fixed when the optimizer is built: not a hyperparameter in the state.
    assert argument not in jaxgd.get_hyperparams(state)


@pytest.mark.parametrize("make", [
    lambda **kw: jaxgd.sgd(LR, 0.9, **kw),
    lambda **kw: jaxgd.momentum(LR, **kw),
    lambda **kw: jaxgd.nesterov(LR, **kw),
    lambda **kw: jaxgd.trace(0.9, **kw),
], ids=["sgd", "momentum", "nesterov", "trace"])
def test_momentum_accumulator_is_stored_in_the_asked_dtype(make):
    params = nested_params()
    state = make(accumulator_dtype=BF16).init(params)
    assert dtypes(state.inner_state if hasattr(state, "inner_state") else state) == {
        jnp.dtype(BF16)}
    assert dtypes(make().init(params)) == {jnp.dtype(jnp.float32)}


@pytest.mark.parametrize("name", sorted(ADAM_FAMILY))
def test_defaults_keep_each_params_dtype(name):
    params = {"f32": jnp.ones(3), "bf16": jnp.ones(2, BF16)}
    opt = ADAM_FAMILY[name](LR)
    (node,) = moment_states(opt.init(params))
    for field in ("mu", "nu"):
        tree = getattr(node, field)
        assert tree["f32"].dtype == jnp.float32 and tree["bf16"].dtype == BF16


def test_wider_state_than_params_gives_updates_of_the_wider_dtype_as_optax():
    params = {"w": jnp.ones(4, BF16)}
    grads = {"w": jnp.full(4, 0.5, BF16)}
    opt = jaxgd.adam(LR, mu_dtype=jnp.float32, nu_dtype=jnp.float32)
    updates, state = opt.update(grads, opt.init(params), params)
    (node,) = moment_states(state)
    assert node.mu["w"].dtype == node.nu["w"].dtype == jnp.float32
    reference = optax.adam(LR, mu_dtype=jnp.float32)
    expected, _ = reference.update(grads, reference.init(params), params)
    assert updates["w"].dtype == expected["w"].dtype == jnp.float32
    assert jaxgd.apply_updates(params, updates)["w"].dtype == BF16


@pytest.mark.parametrize("argument", sorted(FIELDS))
def test_the_step_is_computed_before_the_moment_is_rounded(argument):
    """Adam's first step is -lr g / (|g| + eps) whatever the moments are stored in; the
    stored moment is the float32 one rounded."""
    params = nested_params()
    grads = random_like(params, jax.random.PRNGKey(3))
    full, low = jaxgd.adam(LR), jaxgd.adam(LR, **{argument: BF16})
    u_full, s_full = full.update(grads, full.init(params), params)
    u_low, s_low = low.update(grads, low.init(params), params)
    for a, b in zip(jax.tree.leaves(u_full), jax.tree.leaves(u_low), strict=True):
        np.testing.assert_array_equal(a, b)
    field = FIELDS[argument][0]
    rounded = jax.tree.map(lambda x: x.astype(BF16), getattr(moment_states(s_full)[0], field))
    for a, b in zip(jax.tree.leaves(rounded),
                    jax.tree.leaves(getattr(moment_states(s_low)[0], field)), strict=True):
        np.testing.assert_array_equal(a, b)


def injected(factory, static):
    """optax's alias with its hyperparameters as float32 arrays, as jaxgd holds them.

    A plain ``optax.adam(mu_dtype=jnp.bfloat16)`` multiplies the bfloat16 moment by the
    Python float ``b1``, which JAX rounds to bfloat16 first (0.9 becomes 0.8984); here both
    multiply by float32(0.9). ``static_args``: optax would take the dtype for a schedule.
    """
    return optax.inject_hyperparams(factory, static_args=static)


# name -> (jaxgd's, optax's), with the optax positional order where optax has one.
PARITY = {
    "adam": (lambda: jaxgd.adam(LR, 0.9, 0.999, 1e-8, 0.0, BF16),
             lambda: injected(optax.adam, "mu_dtype")(LR, 0.9, 0.999, 1e-8, 0.0, BF16)),
    "adam_nesterov": (lambda: jaxgd.adam(LR, mu_dtype=BF16, nesterov=True),
                      lambda: injected(optax.adam, "mu_dtype")(LR, mu_dtype=BF16,
                                                               nesterov=True)),
    "adamw": (lambda: jaxgd.adamw(LR, 0.9, 0.999, 1e-8, 0.0, BF16, 0.1),
              lambda: injected(optax.adamw, "mu_dtype")(LR, 0.9, 0.999, 1e-8, 0.0, BF16, 0.1)),
    "nadam": (lambda: jaxgd.nadam(LR, mu_dtype=BF16),
              lambda: injected(optax.nadam, "mu_dtype")(LR, mu_dtype=BF16)),
    "nadamw": (lambda: jaxgd.nadamw(LR, mu_dtype=BF16, weight_decay=0.1),
               lambda: injected(optax.nadamw, "mu_dtype")(LR, mu_dtype=BF16, weight_decay=0.1)),
    "amsgrad": (lambda: jaxgd.amsgrad(LR, 0.9, 0.999, 1e-8, 0.0, BF16),
                lambda: injected(optax.amsgrad, "mu_dtype")(LR, 0.9, 0.999, 1e-8, 0.0, BF16)),
    "sgd_momentum": (lambda: jaxgd.sgd(LR, 0.9, False, BF16),
                     lambda: injected(optax.sgd, "accumulator_dtype")(LR, 0.9, False, BF16)),
    "sgd_nesterov": (lambda: jaxgd.sgd(LR, 0.9, True, accumulator_dtype=BF16),
                     lambda: injected(optax.sgd, "accumulator_dtype")(
                         LR, 0.9, True, accumulator_dtype=BF16)),
    "trace": (lambda: jaxgd.trace(0.5, accumulator_dtype=BF16),
              lambda: optax.trace(0.5, accumulator_dtype=BF16)),
}


# By default, one of each argument order; the variants with ``-m slow``.
FAST = {"adam", "adamw", "amsgrad", "sgd_momentum"}


@pytest.mark.parametrize("name", catalog_params(sorted(PARITY), default=FAST))
def test_low_precision_state_matches_optax(name, params):
    make_ours, make_theirs = PARITY[name]
    ours, theirs = make_ours(), make_theirs()
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    assert [x.dtype for x in jax.tree.leaves(s_ours.inner_state if name != "trace" else s_ours)
            if x.ndim] == [x.dtype for x in jax.tree.leaves(
                s_theirs.inner_state if name != "trace" else s_theirs) if x.ndim]
    u_ours, u_theirs = updates_side_by_side(ours, theirs, params, num_steps=50)
    for a, b in zip(u_ours, u_theirs, strict=True):
        assert a.dtype == b.dtype == jnp.float32
        # A float32 rounding apart can round a moment to the neighbouring bfloat16
        # (2**-8 relative) in one run and not the other.
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=1e-6)


@pytest.mark.parametrize("argument", ["mu_dtype", "nu_dtype"])
def test_a_non_float_dtype_is_an_error_naming_the_argument(argument):
    with pytest.raises(ValueError, match=argument):
        jaxgd.adam(LR, **{argument: jnp.int32})
    with pytest.raises(ValueError, match="accumulator_dtype"):
        jaxgd.sgd(LR, 0.9, accumulator_dtype="int8")


def test_trace_with_decay_one_is_the_plain_sum():
    opt = jaxgd.trace(decay=1.0)
    state = opt.init(jnp.zeros(2))
    for g in ([1.0, 2.0], [3.0, -1.0], [0.5, 0.5]):
        updates, state = opt.update(jnp.array(g), state)
    np.testing.assert_array_equal(updates, [4.5, 1.5])
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\]"):
        jaxgd.trace(decay=1.5)


def test_lion_momentum_in_bfloat16_as_optax_injected():
    params = nested_params()
    ours = jaxgd.lion(LR, 0.9, 0.99, BF16)
    theirs = optax.inject_hyperparams(optax.lion, static_args="mu_dtype")(
        learning_rate=LR, b1=0.9, b2=0.99, mu_dtype=BF16)
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    assert dtypes(s_ours.inner_state[0].mu) == {jnp.dtype(BF16)}
    for i in range(3):
        grads = random_like(params, jax.random.PRNGKey(i))
        u_ours, s_ours = ours.update(grads, s_ours, params)
        u_theirs, s_theirs = theirs.update(grads, s_theirs, params)
        for a, b in zip(jax.tree.leaves(u_ours), jax.tree.leaves(u_theirs), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
