"""The order in which fit's mini-batches visit the examples: a keyed permutation per epoch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgd.train import batching


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 16, 17, 100, 255, 256, 1000, 4097])
def test_epoch_permutation_is_a_permutation_of_the_examples(n):
    for epoch in range(3):
        order = np.asarray(batching.epoch_permutation(jax.random.PRNGKey(n), epoch, n))
        assert order.dtype == np.int32
        np.testing.assert_array_equal(np.sort(order), np.arange(n))


def test_epoch_permutation_depends_on_key_and_epoch_only():
    key = jax.random.PRNGKey(0)
    a = batching.epoch_permutation(key, 0, 500)
    np.testing.assert_array_equal(a, batching.epoch_permutation(key, 0, 500))
    assert not np.array_equal(a, batching.epoch_permutation(key, 1, 500))
    assert not np.array_equal(a, batching.epoch_permutation(jax.random.PRNGKey(1), 0, 500))
    traced = jax.jit(batching.epoch_permutation, static_argnums=2)(key, jnp.asarray(0), 500)
    np.testing.assert_array_equal(a, traced)


def test_epoch_permutation_looks_uniform():
    # Over many epochs: each example lands in each position about equally often (a
    # chi-square test on where example 0 and example n-1 go), and the number of fixed
    # points averages 1, as for a uniformly random permutation.
    n, epochs = 20, 4000
    orders = np.asarray(jax.vmap(lambda e: batching.epoch_permutation(
        jax.random.PRNGKey(3), e, n))(jnp.arange(epochs)))
    expected = epochs / n
    for example in (0, n - 1):
        counts = np.bincount(np.argmax(orders == example, axis=1), minlength=n)
        chi2 = float(np.sum((counts - expected) ** 2 / expected))
        assert chi2 < 45.0  # 19 degrees of freedom: p < 0.001 above 43.8
    fixed_points = (orders == np.arange(n)).sum(axis=1)
    assert abs(fixed_points.mean() - 1.0) < 0.1
    # neighbours are not kept together: example 1 follows example 0 about 1/(n-1) of
    # the time
    pos0, pos1 = np.argmax(orders == 0, axis=1), np.argmax(orders == 1, axis=1)
    assert abs(np.mean(pos1 == pos0 + 1) - 1 / n) < 0.02


def _equations(jaxpr):
    """Every equation of ``jaxpr``, those of the jaxprs inside its loops and calls too."""
    for eqn in jaxpr.eqns:
        yield eqn
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else [param]:
                inner = getattr(sub, "jaxpr", None)
                if inner is not None:
                    yield from _equations(getattr(inner, "jaxpr", inner))


def _permutation_shapes(jaxpr):
    """The shapes of the index arrays that epoch permutations walk (the uint32 carries of
    while loops)."""
    return [v.aval.shape for eqn in _equations(jaxpr) if eqn.primitive.name == "while"
            for v in eqn.outvars if v.aval.dtype == jnp.uint32]


def _regression(n=64):
    X = jax.random.normal(jax.random.PRNGKey(0), (n, 3))
    return X, X @ jnp.array([1.0, -2.0, 0.5])


def _mse(p, batch):
    return jnp.mean((batch[0] @ p - batch[1]) ** 2)


@pytest.mark.parametrize("tol", [None, 1e-9])
def test_trials_that_share_a_key_share_each_epochs_permutation(tol):
    import jaxgd
    from jaxgd.sweep import run

    data, lrs = _regression(), jnp.array([0.01, 0.03, 0.1])
    if tol is None:  # a fixed-length vmap(fit): the epochs are shared as they are
        program = jax.vmap(lambda lr: jaxgd.fit(_mse, jnp.zeros(3), jaxgd.sgd(lr), data,
                                                batch_size=8, num_epochs=3, key=0))
        jaxpr = jax.make_jaxpr(program)(lrs)
    else:  # a sweep with early stopping: its epoch loop runs while any trial runs
        program = run._trial_program(_mse, jaxgd.sgd, {}, None,
                                     dict(batch_size=8, num_epochs=3, tol=tol),
                                     shared_seed=True)
        jaxpr = jax.make_jaxpr(program)({"learning_rate": lrs}, jnp.asarray(0), jnp.zeros(3),
                                        data, None, None)
    shapes = _permutation_shapes(jaxpr.jaxpr)
    assert shapes and all(shape == (64,) for shape in shapes), shapes  # not (3, 64)


def _scan_lengths(jaxpr):
    return [eqn.params["length"] for eqn in _equations(jaxpr) if eqn.primitive.name == "scan"]


@pytest.mark.parametrize("max_steps, lengths", [(3, [3]), (16, [2, 8]), (19, [2, 8, 3])])
def test_a_partial_last_epoch_runs_only_its_own_steps(max_steps, lengths):
    # 64 examples in batches of 8: epochs of 8 steps. A last, partial epoch is a scan of
    # its own length, not a whole epoch whose extra steps would be computed for nothing.
    import jaxgd

    data = _regression()
    jaxpr = jax.make_jaxpr(lambda p: jaxgd.fit(_mse, p, jaxgd.sgd(0.1), data, batch_size=8,
                                               max_steps=max_steps, key=0))(jnp.zeros(3))
    assert sorted(_scan_lengths(jaxpr.jaxpr)) == sorted(lengths)
    res = jaxgd.fit(_mse, jnp.zeros(3), jaxgd.sgd(0.1), data, batch_size=8,
                    max_steps=max_steps, key=0)
    assert int(res.num_steps) == max_steps and res.losses.shape == (max_steps,)
