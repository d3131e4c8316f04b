"""Muon: optax's updates (rtol 1e-5, 100 steps, nested trees), the Newton–Schulz iteration
against an SVD, hyperparameters sweepable with vmap and jaxgd.sweep, leaf selection and
its warning, and clear errors."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from catalog_tiers import catalog_params
from conftest import nested_params, random_like, updates_side_by_side

import jaxgd
from jaxgd.core.base import is_flatten_invariant
from jaxgd.transforms.muon import MuonDimensionNumbers, orthogonalize_via_newton_schulz

OptaxDims = optax.contrib.MuonDimensionNumbers


def mixed_params():
    """Matrices (wide, tall, 1x1), vectors, a scalar and a 3-D leaf, nested."""
    return {**nested_params(), "tall": jax.random.normal(jax.random.PRNGKey(5), (6, 2))}


def both(**kwargs):
    """jaxgd's and optax's muon with the same arguments."""
    return lambda: jaxgd.muon(**kwargs), lambda: optax.contrib.muon(**kwargs)


def no_decay_on_1x1(params):
    return jax.tree.map(lambda x: x.shape != (1, 1), params)


SELECTION = {"dense": {"w": OptaxDims(), "b": None}, "pair": (None, OptaxDims(0, (1, 2))),
             "stack": None, "tall": OptaxDims(1, 0)}

CASES = {
    "default": both(learning_rate=0.01),
    "plain_momentum_3_steps_weight_decay": both(
        learning_rate=0.02, ns_steps=3, beta=0.9, nesterov=False, weight_decay=0.1,
        weight_decay_mask=no_decay_on_1x1, adam_weight_decay=0.01, adam_learning_rate=0.003),
    # optax's own dimension numbers are taken as they are: one tree serves both
    "custom_selection_with_a_batch_axis": both(learning_rate=0.01,
                                               muon_weight_dimension_numbers=SELECTION),
    "adaptive_aol_consistent_rms": both(learning_rate=0.01, adaptive=True,
                                        preconditioning="aol", consistent_rms=0.2),
    "dion_schatten_adam_settings": both(
        learning_rate=0.01, ns_coeffs="dion", preconditioning="schatten", adam_b1=0.8,
        adam_b2=0.99, adam_eps_root=1e-8),
    "spectral_schedule": both(learning_rate=optax.cosine_decay_schedule(0.01, 50),
                              preconditioning="spectral", eps=1e-6),
}
FAST = {"default", "plain_momentum_3_steps_weight_decay", "custom_selection_with_a_batch_axis"}


def assert_same_updates(ours, theirs):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert np.all(np.isfinite(a))
        # Newton-Schulz in float32 magnifies a rounding that the compiler orders
        # differently in the two programs to up to ~6e-5 of a leaf's largest update.
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4 * np.abs(b).max())


@pytest.mark.parametrize("name", catalog_params(CASES, default=FAST))
def test_muon_matches_optax_over_100_steps(name):
    make_ours, make_theirs = CASES[name]
    assert_same_updates(*updates_side_by_side(make_ours(), make_theirs(), mixed_params()))


def test_scale_by_muon_matches_optax_on_every_matrix():
    """Given no dimension numbers, every leaf is a matrix (optax needs them spelled out
    for a tree)."""
    params = {"a": jax.random.normal(jax.random.PRNGKey(0), (3, 4)),
              "b": [jax.random.normal(jax.random.PRNGKey(1), (5, 2)), jnp.eye(4)]}
    dims = jax.tree.map(lambda _: OptaxDims(), params)
    for kwargs in ({}, {"nesterov": False, "ns_steps": 2, "beta": 0.8}):
        ours = jaxgd.scale_by_muon(**kwargs)
        theirs = optax.contrib.scale_by_muon(**kwargs, weight_dimension_numbers=dims)
        assert_same_updates(*updates_side_by_side(ours, theirs, params, num_steps=30))


@pytest.mark.parametrize("shape, dims", [((5, 3), None), ((3, 5), None),
                                         ((2, 4, 3), MuonDimensionNumbers(1, 2))])
def test_newton_schulz_converges_to_the_polar_factor_of_an_svd(shape, dims):
    """With the cubic (1.5, -0.5, 0), which converges to 1 on (0, sqrt 3), the iteration
    reaches U V^T of numpy's SVD (each matrix of a batch on its own)."""
    with jax.enable_x64(True):
        x = np.random.RandomState(0).randn(*shape)
        out = np.asarray(orthogonalize_via_newton_schulz(
            jnp.asarray(x), (1.5, -0.5, 0.0), ns_steps=60, dimension_numbers=dims))
    matrices = x.reshape(-1, *shape[-2:])
    for got, m in zip(out.reshape(matrices.shape), matrices, strict=True):
        u, _, vt = np.linalg.svd(m, full_matrices=False)
        np.testing.assert_allclose(got, u @ vt, atol=1e-10)


# Far from the start for every learning rate below: near its minimum the momentum is
# tiny, and orthogonalizing it (a step of size lr along its directions) magnifies rounding.
TARGET = {"w": 3 * jax.random.normal(jax.random.PRNGKey(7), (4, 3)),
          "b": jnp.array([3.0, -3.0, 2.0])}


def loss(params):
    return sum(0.5 * jnp.sum((p - t) ** 2) for p, t in
               zip(jax.tree.leaves(params), jax.tree.leaves(TARGET), strict=True))


def start():
    return jax.tree.map(lambda t: jnp.zeros_like(t, jnp.float64), TARGET)


def train(opt, num_steps=20):
    def body(_, carry):
        p, s = carry
        u, s = opt.update(jax.grad(loss)(p), s, p)
        return jaxgd.apply_updates(p, u), s

    params = start()
    return jax.lax.fori_loop(0, num_steps, body, (params, opt.init(params)))[0]


def test_runs_under_jit_as_it_does_eagerly():
    """To float32 rounding: XLA fuses the compiled iteration's arithmetic differently."""
    params, opt = TARGET, jaxgd.muon(0.01)
    grads = random_like(params, jax.random.PRNGKey(3))
    eager, _ = opt.update(grads, opt.init(params), params)
    jitted, _ = jax.jit(opt.update)(grads, jax.jit(opt.init)(params), params)
    assert_same_updates(jax.tree.leaves(eager), jax.tree.leaves(jitted))


def test_vmap_over_the_learning_rate_equals_separate_runs():
    """In float64, so that lanes and single runs round alike (see tests/test_hyperparams)."""
    with jax.enable_x64(True):
        lrs = jnp.array([0.01, 0.02, 0.05, 0.1])
        swept = jax.jit(jax.vmap(lambda lr: train(jaxgd.muon(lr))))(lrs)
        for i, lr in enumerate(lrs):
            alone = train(jaxgd.muon(float(lr)))
            for a, b in zip(jax.tree.leaves(swept), jax.tree.leaves(alone), strict=True):
                assert a.dtype == jnp.float64
                np.testing.assert_allclose(a[i], b, rtol=1e-9)
    assert not np.allclose(swept["w"][0], swept["w"][-1])


def test_sweep_over_the_learning_rate_equals_separate_fits():
    with jax.enable_x64(True):
        lrs = [0.01, 0.03, 0.1]
        res = jaxgd.sweep(loss, start(), jaxgd.muon, hyperparams={"learning_rate": lrs},
                          max_steps=15)
        for i, lr in enumerate(lrs):
            alone = jaxgd.fit(loss, start(), jaxgd.muon(lr), max_steps=15)
            for a, b in zip(jax.tree.leaves(res.fit.params), jax.tree.leaves(alone.params),
                            strict=True):
                np.testing.assert_allclose(a[i], b, rtol=1e-9)
    assert res.best["learning_rate"] == 0.1


def test_hyperparameters_live_in_the_state_and_ns_steps_stays_fixed():
    opt = jaxgd.muon(0.01, weight_decay=0.1, consistent_rms=0.2)
    state = opt.init(TARGET)
    assert {"learning_rate", "beta", "eps", "weight_decay", "adam_b1", "adam_b2",
            "adam_eps_root", "adam_weight_decay", "consistent_rms"} == set(state.hyperparams)
    grads = jax.tree.map(jnp.ones_like, TARGET)
    step = jax.jit(opt.update)
    u1, _ = step(grads, state, TARGET)
    u2, _ = step(grads, jaxgd.set_hyperparams(state, learning_rate=0.02), TARGET)
    assert step._cache_size() == 1
    for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2), strict=True):
        np.testing.assert_allclose(2 * a, b, rtol=1e-6)
    with pytest.raises(ValueError, match="ns_steps must be an int >= 1, not a traced value"):
        jax.vmap(lambda n: jaxgd.muon(0.01, ns_steps=n).init(TARGET))(jnp.arange(1, 3))


def test_is_not_marked_flatten_invariant():
    assert not is_flatten_invariant(jaxgd.muon(0.01))
    assert not is_flatten_invariant(jaxgd.scale_by_muon())


def test_params_without_a_matrix_warn_and_take_optax_s_adam_steps():
    params = {"b": jnp.linspace(-1.0, 1.0, 5), "s": jnp.array(0.3), "t": jnp.ones((2, 2, 2))}
    with pytest.warns(UserWarning, match="no leaf of the params is chosen for Muon"):
        opt = jaxgd.muon(0.01)
        state = opt.init(params)
    assert jax.tree.leaves(state.inner_state.inner_states["muon"].inner_state[0].mu) == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = updates_side_by_side(opt, optax.contrib.muon(0.01), params, num_steps=20)
        assert_same_updates(ours, theirs)
        adamw = jaxgd.adamw(0.01, weight_decay=0.0, nesterov=True)
        assert_same_updates(*updates_side_by_side(opt, adamw, params, num_steps=20))


def test_params_with_a_matrix_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jaxgd.muon(0.01).init(TARGET)


def test_a_selection_function_picks_muon_s_leaves():
    """A function of the params: here the 3-D leaf as a batch of matrices, and not the
    2-D one, which goes to Adam."""
    params = {"w": jnp.ones((3, 4)) * jnp.arange(4.0), "k": jnp.ones((2, 3, 4)) * 0.5}

    def select(tree):
        return jax.tree.map(lambda x: OptaxDims(1, 2) if x.ndim == 3 else None,
                            tree)

    opt = jaxgd.muon(0.01, muon_weight_dimension_numbers=select)
    ours, theirs = updates_side_by_side(
        opt, optax.contrib.muon(0.01, muon_weight_dimension_numbers=select), params,
        num_steps=10)
    assert_same_updates(ours, theirs)
    parts = opt.init(params).inner_state.inner_states
    assert [x.shape for x in jax.tree.leaves(parts["muon"].inner_state[0].mu)] == [(2, 3, 4)]
    assert [x.shape for x in jax.tree.leaves(parts["adam"].inner_state[0].mu)] == [(3, 4)]


@pytest.mark.parametrize("kwargs, match", [
    ({"beta": 1.0}, "beta must be in"),
    ({"eps": 0.0}, "eps must be a finite number > 0"),
    ({"ns_steps": 0}, "ns_steps must be an int >= 1"),
    ({"ns_steps": 2.5}, "ns_steps must be an int"),
    ({"ns_coeffs": (1.0, 2.0)}, r"ns_coeffs must have shape \(3,\) or \(n, 3\)"),
    ({"ns_coeffs": "fast"}, "ns_coeffs must be one of the presets"),
    ({"ns_coeffs": "dion", "ns_steps": 3}, "ns_coeffs has 5 rows"),
    ({"preconditioning": "svd"}, "preconditioning must be one of"),
    ({"adam_b1": 1.5}, "adam_b1 must be in"),
    ({"adam_b2": -0.1}, "adam_b2 must be in"),
    ({"adam_learning_rate": -1.0}, "adam_learning_rate must be"),
    ({"weight_decay": -1.0}, "weight_decay must be"),
    ({"consistent_rms": -0.2}, "consistent_rms must be"),
    ({"mu_dtype": jnp.int32}, "mu_dtype must be a floating-point dtype"),
])
def test_bad_hyperparameters_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jaxgd.muon(0.01, **kwargs)


def test_dimension_numbers_that_name_no_matrix_are_errors_naming_the_leaf():
    params = {"w": jnp.ones((3, 4)), "b": jnp.ones(4)}
    bad = jaxgd.muon(0.01, muon_weight_dimension_numbers={"w": None,
                                                          "b": MuonDimensionNumbers()})
    with pytest.raises(ValueError, match=r"leaf at \['b'\].*shape \(4,\)"):
        bad.init(params)
    with pytest.raises(ValueError, match=r"leaf at \['b'\].*shape \(4,\)"):
        jaxgd.scale_by_muon().init(params)
    same_axes = jaxgd.scale_by_muon(weight_dimension_numbers=MuonDimensionNumbers(1, 1))
    with pytest.raises(ValueError, match="must be non-empty and disjoint"):
        same_axes.init({"w": jnp.ones((3, 4))})
    with pytest.raises(ValueError, match="structure of the params or a prefix"):
        jaxgd.muon(0.01, muon_weight_dimension_numbers={"v": None}).init(params)


def test_mu_dtype_sets_both_momenta():
    state = jaxgd.muon(0.01, mu_dtype=jnp.bfloat16).init(TARGET)
    parts = state.inner_state.inner_states
    assert parts["muon"].inner_state[0].mu["w"].dtype == jnp.bfloat16
    assert parts["adam"].inner_state[0].mu["b"].dtype == jnp.bfloat16


@pytest.mark.parametrize("param_dtype", [jnp.float32, jnp.bfloat16])
def test_bfloat16_gradients_give_optax_s_update_dtypes(param_dtype):
    params = {"w": jnp.ones((3, 4), param_dtype), "b": jnp.full(4, 0.5, param_dtype)}
    grads = random_like(params, jax.random.PRNGKey(2))
    grads = jax.tree.map(lambda g: g.astype(jnp.bfloat16), grads)
    dtypes = []
    for opt in (jaxgd.muon(0.01), optax.contrib.muon(0.01)):
        updates, _ = opt.update(grads, opt.init(params), params)
        dtypes.append({k: u.dtype for k, u in updates.items()})
    assert dtypes[0] == dtypes[1] == {"w": param_dtype, "b": param_dtype}
