"""Prodigy, D-Adapt AdamW, COCOB, DoG, DoWG and Mechanic: optax.contrib's updates, and
their learning rates swept by vmap and by jaxgd.sweep like any other hyperparameter."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from catalog_tiers import catalog_params
from conftest import nested_params, updates_side_by_side
from optax import contrib
from optax.contrib._dog import scale_by_dog, scale_by_dowg  # not exported by optax

import jaxgd
from jaxgd.core.base import is_flatten_invariant

DECAYED = {"dense": {"w": True, "b": False}, "pair": (False, True), "stack": [True, False]}

# name -> (jaxgd's, optax.contrib's)
TWINS = {
    "prodigy": (jaxgd.prodigy, contrib.prodigy),
    "prodigy_options": (
        lambda: jaxgd.prodigy(0.5, (0.8, 0.99), beta3=0.9, eps=1e-6, estim_lr0=1e-4,
                              estim_lr_coef=2.0, weight_decay=0.1, safeguard_warmup=True),
        lambda: contrib.prodigy(0.5, (0.8, 0.99), beta3=0.9, eps=1e-6, estim_lr0=1e-4,
                                estim_lr_coef=2.0, weight_decay=0.1, safeguard_warmup=True)),
    "prodigy_schedule": (lambda: jaxgd.prodigy(optax.linear_schedule(1.0, 0.0, 100)),
                         lambda: contrib.prodigy(optax.linear_schedule(1.0, 0.0, 100))),
    "dadapt_adamw": (jaxgd.dadapt_adamw, contrib.dadapt_adamw),
    "dadapt_adamw_options": (
        lambda: jaxgd.dadapt_adamw(0.5, (0.8, 0.99), 1e-6, 1e-4, weight_decay=0.1),
        lambda: contrib.dadapt_adamw(0.5, (0.8, 0.99), 1e-6, 1e-4, weight_decay=0.1)),
    "cocob": (jaxgd.cocob, contrib.cocob),
    "cocob_options": (lambda: jaxgd.cocob(0.5, 10.0, 1e-6, 1e-3, mask=DECAYED),
                      lambda: contrib.cocob(0.5, 10.0, 1e-6, 1e-3, mask=DECAYED)),
    "dog": (jaxgd.dog, contrib.dog),
    "dog_distance_decay": (
        lambda: jaxgd.dog(0.5, ("distance", 0.1), 1e-6, weight_decay=1e-2),
        lambda: contrib.dog(0.5, ("distance", 0.1), 1e-6, weight_decay=1e-2)),
    "dog_first_step": (lambda: jaxgd.dog(init_step=("learning_rate", 0.1)),
                       lambda: contrib.dog(init_step=("learning_rate", 0.1))),
    "dowg": (jaxgd.dowg, contrib.dowg),
    "dowg_options": (lambda: jaxgd.dowg(0.5, 0.1, 1e-6, weight_decay=1e-2),
                     lambda: contrib.dowg(0.5, 0.1, 1e-6, weight_decay=1e-2)),
    "mechanize_adam": (lambda: jaxgd.mechanize(jaxgd.adam(1.0)),
                       lambda: contrib.mechanize(optax.adam(1.0))),
    "mechanize_sgd_options": (
        lambda: jaxgd.mechanize(jaxgd.sgd(0.1, momentum=0.9), 0.1, 1e-6, 1e-4, num_betas=3),
        lambda: contrib.mechanize(optax.sgd(0.1, momentum=0.9), 0.1, 1e-6, 1e-4, num_betas=3)),
    "mechanize_optax_base": (lambda: jaxgd.mechanize(optax.lion(0.1)),
                             lambda: contrib.mechanize(optax.lion(0.1))),
    "scale_by_cocob": (jaxgd.scale_by_cocob, contrib.scale_by_cocob),
    "scale_by_dog": (lambda: jaxgd.scale_by_dog(("distance", 0.1)),
                     lambda: scale_by_dog(("distance", 0.1))),
    "scale_by_dowg": (jaxgd.scale_by_dowg, scale_by_dowg),
}


# COCOB and Mechanic compute the new params and return their difference with the old:
# their updates carry the rounding of the params (a float32 ulp of |x|, up to ~5e-7 here),
# however small the step, so they are compared to a few ulps of the params' magnitude.
DIFFERENCE_OF_PARAMS = ("cocob", "mechanize")


# The defaults of each optimizer run by default (a few seconds each: compiling 100 steps
# of both); the other settings and the blocks with ``-m slow``.
FAST = {"prodigy", "dadapt_adamw", "cocob", "dog", "dowg", "mechanize_adam"}


@pytest.mark.parametrize("name", catalog_params(sorted(TWINS), default=FAST))
def test_updates_match_optax_contrib_over_100_steps(name):
    make_ours, make_theirs = TWINS[name]
    params = nested_params()
    ours, theirs = updates_side_by_side(make_ours(), make_theirs(), params)
    ulp = np.finfo(np.float32).eps * max(float(jnp.max(jnp.abs(x)))
                                         for x in jax.tree.leaves(params))
    for a, b in zip(ours, theirs, strict=True):
        assert np.all(np.isfinite(b)) and np.any(b != 0)
        atol = 4 * ulp if any(k in name for k in DIFFERENCE_OF_PARAMS) else 0.0
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=atol + 1e-7 * np.max(np.abs(b)))


# A separable quadratic on a small nested tree with a 2-D leaf; minimum at TARGET.
TARGET = {"w": jnp.array([[1.0, -2.0, 0.5], [0.3, 2.0, -1.0]]), "b": jnp.array([0.5, -0.25])}
START = {"w": jnp.zeros((2, 3)), "b": jnp.ones(2)}


def loss(params):
    return sum(jnp.sum((1.0 + i) * (p - t) ** 2) for i, (p, t) in enumerate(
        zip(jax.tree.leaves(params), jax.tree.leaves(TARGET), strict=True)))


def train(optimizer, params, num_steps=40):
    def body(_, carry):
        p, state = carry
        updates, state = optimizer.update(jax.grad(loss)(p), state, p)
        return jaxgd.apply_updates(p, updates), state

    return jax.lax.fori_loop(0, num_steps, body, (params, optimizer.init(params)))[0]


# name -> (factory of the swept value, its values)
SWEPT = {
    "prodigy": (lambda lr: jaxgd.prodigy(lr), [0.25, 1.0, 2.0]),
    "dadapt_adamw": (lambda lr: jaxgd.dadapt_adamw(lr), [0.25, 1.0, 2.0]),
    # COCOB is invariant to the scale of its gradients (only its eps is not), so lanes
    # of different learning rates are equal: alpha shows that the lanes are kept apart.
    "cocob": (lambda lr: jaxgd.cocob(lr), [0.25, 1.0, 2.0]),
    "cocob_alpha": (lambda a: jaxgd.cocob(alpha=a), [2.0, 10.0, 500.0]),
    "dog": (lambda lr: jaxgd.dog(lr, ("distance", 0.1)), [0.25, 1.0, 2.0]),
    "dowg": (lambda lr: jaxgd.dowg(lr), [0.25, 1.0, 2.0]),
    "mechanize": (lambda lr: jaxgd.mechanize(jaxgd.sgd(lr)), [0.01, 0.1, 0.3]),
}


def _float64(tree):
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), tree)


@pytest.mark.parametrize("name", catalog_params(sorted(SWEPT), default={"prodigy", "dowg"}))
def test_vmap_over_a_hyperparameter_equals_separate_runs(name):
    """In float64: on CPUs with FMA, XLA rounds a*b+c differently in vectorised and scalar
    loops, ~1e-7 per step in float32 (see tests/test_hyperparams.py); float64 keeps that
    at ~1e-16 so that rel 1e-6 tests the lanes themselves."""
    make, values = SWEPT[name]
    with jax.enable_x64(True):
        start = _float64(START)
        values = jnp.asarray(values, jnp.float64)
        swept = jax.jit(jax.vmap(lambda v: train(make(v), start)))(values)
        single = jax.jit(lambda v: train(make(v), start))
        for i, value in enumerate(values):
            lane = jax.tree.map(lambda x, i=i: x[i], swept)
            for a, b in zip(jax.tree.leaves(lane), jax.tree.leaves(single(value)), strict=True):
                assert a.dtype == jnp.float64
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12)
        # built from a Python float, as a user would: the same run
        last = float(values[-1])
        for a, b in zip(jax.tree.leaves(lane), jax.tree.leaves(
                jax.jit(lambda: train(make(last), start))()), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12)
        if name != "cocob":
            assert not np.allclose(swept["w"][0], swept["w"][-1])
        assert float(loss(lane)) < float(loss(start))


SWEEP_FACTORIES = {
    "prodigy": jaxgd.prodigy,
    "dadapt_adamw": jaxgd.dadapt_adamw,
    "cocob": jaxgd.cocob,
    "dog": lambda learning_rate: jaxgd.dog(learning_rate, ("distance", 0.1)),
    "dowg": jaxgd.dowg,
    "mechanize": lambda learning_rate: jaxgd.mechanize(jaxgd.sgd(learning_rate)),
}


@pytest.mark.parametrize("name", catalog_params(sorted(SWEEP_FACTORIES), default={"dog"}))
def test_sweep_over_learning_rate_equals_separate_fits(name):
    factory = SWEEP_FACTORIES[name]
    learning_rates = [0.1, 0.5] if name == "mechanize" else [0.5, 1.0]
    with jax.enable_x64(True):
        start = _float64(START)
        res = jaxgd.sweep(loss, start, factory, hyperparams={"learning_rate": learning_rates},
                          max_steps=15)
        for i, lr in enumerate(learning_rates):
            alone = jaxgd.fit(loss, start, factory(learning_rate=lr), max_steps=15)
            np.testing.assert_allclose(res.losses[i], alone.losses, rtol=1e-6)
            for a, b in zip(jax.tree.leaves(jax.tree.map(lambda x, i=i: x[i], res.fit.params)),
                            jax.tree.leaves(alone.params), strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12)
    assert np.all(res.num_steps == 15)


def test_numeric_hyperparameters_live_in_the_state():
    params = {"w": jnp.ones(3)}
    expected = {
        "prodigy": {"learning_rate", "eps", "estim_lr0", "estim_lr_coef"},
        "dadapt_adamw": {"learning_rate", "eps", "estim_lr0"},
        "cocob": {"learning_rate", "alpha", "eps"},
        "dog": {"learning_rate", "eps"},
        "dowg": {"learning_rate", "eps"},
    }
    for name, names in expected.items():
        assert set(getattr(jaxgd, name)().init(params).hyperparams) == names, name
    state = jaxgd.prodigy(beta3=0.9, weight_decay=0.1).init(params)
    assert {"beta3", "weight_decay"} <= set(state.hyperparams)


@pytest.mark.parametrize("name", ["prodigy", "dadapt_adamw", "cocob", "dog", "dowg"])
def test_catalog_entries_are_flatten_invariant_global_rules(name):
    assert jaxgd.OPTIMIZERS[name] is getattr(jaxgd, name)
    assert is_flatten_invariant(jaxgd.OPTIMIZERS[name]())
    assert not is_flatten_invariant(jaxgd.mechanize(jaxgd.lamb(1.0)))
    assert is_flatten_invariant(jaxgd.mechanize(jaxgd.adam(1.0)))


@pytest.mark.parametrize("make", [jaxgd.prodigy, jaxgd.dadapt_adamw],
                         ids=["prodigy", "dadapt_adamw"])
def test_zero_gradients_leave_the_estimate_finite(make):
    # optax divides 0 by 0 here, and its estimate stays NaN for good.
    params = {"w": jnp.ones((2, 2)), "b": jnp.zeros(2)}
    opt = make()
    state = opt.init(params)
    zeros = jax.tree.map(jnp.zeros_like, params)
    update = jax.jit(opt.update)
    for _ in range(2):
        updates, state = update(zeros, state, params)
        assert all(np.all(u == 0) for u in jax.tree.leaves(updates))
    assert float(state.inner_state.estim_lr) == pytest.approx(1e-6)
    grads = {"w": jnp.ones((2, 2)), "b": jnp.full(2, -1.0)}
    updates, state = update(grads, state, params)
    assert all(np.all(np.isfinite(u)) & np.all(u != 0) for u in jax.tree.leaves(updates))


@pytest.mark.parametrize("make", [
    jaxgd.prodigy, jaxgd.dadapt_adamw, jaxgd.cocob, jaxgd.dog, jaxgd.dowg,
    lambda: jaxgd.mechanize(jaxgd.adam(1.0))],
    ids=["prodigy", "dadapt_adamw", "cocob", "dog", "dowg", "mechanize"])
def test_low_precision_leaves_keep_their_dtype_and_the_scalars_stay_wide(make):
    params = {"a": jnp.ones(3), "b": jnp.full((2, 2), 0.5, jnp.bfloat16)}
    opt = make()
    steps = jax.jit(lambda p: train_tree(opt, p))
    final, state = steps(params)
    assert jax.tree.map(lambda x: x.dtype, final) == jax.tree.map(lambda x: x.dtype, params)
    scalars = [x for x in jax.tree.leaves(state) if x.ndim <= 1 and x.size < 7
               and jnp.issubdtype(x.dtype, jnp.floating)]
    assert scalars and all(x.dtype != jnp.bfloat16 for x in scalars)


def train_tree(opt, params, num_steps=3):
    def body(_, carry):
        p, state = carry
        grads = jax.tree.map(lambda x: (x - 2.0).astype(x.dtype), p)
        updates, state = opt.update(grads, state, p)
        return jaxgd.apply_updates(p, updates), state

    return jax.lax.fori_loop(0, num_steps, body, (params, opt.init(params)))


def test_mechanize_starts_from_the_params_of_its_first_update_and_passes_extra_args():
    seen = []

    def base_update(updates, state, params=None, **extra_args):
        seen.append(sorted(extra_args))
        return jax.tree.map(lambda g: -0.1 * g, updates), state

    base = jaxgd.GradientTransformation(lambda p: jaxgd.EmptyState(), base_update)
    opt = jaxgd.mechanize(base)
    state = opt.init(jnp.zeros(3))
    loaded = jnp.array([1.0, 2.0, 3.0])  # e.g. pre-trained weights put in after init
    _, state = opt.update(jnp.ones(3), state, loaded, value=1.0)
    np.testing.assert_array_equal(state.x0, loaded)
    assert seen == [["value"]]


def test_bad_arguments_are_named_before_anything_runs():
    cases = [
        (lambda: jaxgd.prodigy(betas=(0.9, 1.0)), ValueError, "betas\\[1\\]"),
        (lambda: jaxgd.prodigy(betas=0.9), ValueError, "betas must be a pair"),
        (lambda: jaxgd.prodigy(estim_lr0=0.0), ValueError, "estim_lr0"),
        (lambda: jaxgd.prodigy(beta3=1.5), ValueError, "beta3"),
        (lambda: jaxgd.dadapt_adamw(eps=0.0), ValueError, "eps"),
        (lambda: jaxgd.cocob(alpha=-1.0), ValueError, "alpha"),
        (lambda: jaxgd.dog(init_step=("distanse", 1e-6)), ValueError, "init_step"),
        (lambda: jaxgd.dog(init_step=("distance", 0.0)), ValueError, "init_step value"),
        (lambda: jaxgd.dowg(init_estim_sq_dist=-1.0), ValueError, "init_estim_sq_dist"),
        (lambda: jaxgd.dowg(learning_rate="1"), TypeError, "learning_rate"),
        (lambda: jaxgd.mechanize(jaxgd.adam), TypeError, "base_optimizer"),
        (lambda: jaxgd.mechanize(jaxgd.adam(1.0), num_betas=0), ValueError, "num_betas"),
        (lambda: jaxgd.mechanize(jaxgd.adam(1.0), s_init=0.0), ValueError, "s_init"),
    ]
    for make, error, match in cases:
        with pytest.raises(error, match=match):
            make()
    for opt in (jaxgd.prodigy(), jaxgd.dog(), jaxgd.dowg(), jaxgd.cocob(),
                jaxgd.mechanize(jaxgd.sgd(1.0))):
        params = {"w": jnp.ones(2)}
        with pytest.raises(ValueError, match="needs params"):
            opt.update(params, opt.init(params))
