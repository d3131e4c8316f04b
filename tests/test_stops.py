"""Honest stops: what fit returns when a run meets NaN / Inf, skips bad batches, or keeps
its best params; checked against hand-written loops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import hand_loop

import jaxgd
from jaxgd.sweep import trial_keys
from jaxgd.train import batching, fit, trace_count

RTOL = 1e-6


def _bowl(p):
    return jnp.sum((p - jnp.array([3.0, -1.0])) ** 2 * jnp.array([1.0, 4.0]))


def _nan_loss(p):
    # Finite until the first coordinate passes 2, NaN from there on.
    return jnp.where(p[0] > 2.0, jnp.nan, _bowl(p))


def _nan_gradient(p):
    # 0 * sqrt(max(2 - x, 0)) is 0, but its gradient is 0 * inf = NaN once x passes 2.
    return _bowl(p) + 0.0 * jnp.sqrt(jnp.maximum(2.0 - p[0], 0.0))


def _nan_schedule(count):
    return jnp.where(count >= 6, jnp.nan, 0.02)


CASES = {
    # name: (loss, optimizer)
    "nan_loss": (_nan_loss, jaxgd.momentum(0.02, momentum=0.5)),
    "nan_gradient": (_nan_gradient, jaxgd.momentum(0.02, momentum=0.5)),
    "nan_schedule": (_bowl, jaxgd.momentum(_nan_schedule, momentum=0.5)),
    # diverging: the params stay finite, their loss overflows to inf
    "overflow": (lambda p: jnp.sum(p**4), jaxgd.sgd(0.3)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_nonfinite_stop_returns_the_last_params_with_finite_loss_and_gradient(case):
    loss_fn, opt = CASES[case]
    start = jnp.array([1.5, 1.5]) if case == "overflow" else jnp.zeros(2)
    res = fit(loss_fn, start, opt, max_steps=500)
    traj, losses, norms = hand_loop(loss_fn, start, opt, None, 60)
    finite = np.isfinite(losses) & np.isfinite(norms)
    last = int(np.argmin(finite)) - 1  # the last step whose loss and gradient were finite
    assert 0 < last < 59 and finite[: last + 1].all()
    assert res.stop_reason == "nonfinite" and not bool(res.converged)
    assert int(res.num_steps) == last
    np.testing.assert_allclose(res.params, traj[last][0], rtol=RTOL)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=RTOL), res.opt_state,
                 traj[last][1])
    np.testing.assert_allclose(res.losses[: last + 1], losses[: last + 1], rtol=RTOL)
    assert np.isnan(res.losses[last + 1 :]).all()
    # the promise: the returned params' loss and gradient are finite, and it is the last
    # finite entry of the history
    loss, grad = jax.value_and_grad(loss_fn)(res.params)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    np.testing.assert_allclose(loss, res.losses[int(res.num_steps)], rtol=RTOL)
    assert int(res.num_skipped) == 0
    np.testing.assert_allclose(res.best_loss, np.nanmin(losses[: last + 1]), rtol=RTOL)
    assert int(res.best_step) == int(np.nanargmin(losses[: last + 1]))


def test_a_first_step_that_is_not_finite_returns_the_start():
    res = fit(lambda p: jnp.sum(p**2) + jnp.nan, jnp.ones(2), jaxgd.adam(0.1), max_steps=10)
    assert res.stop_reason == "nonfinite" and int(res.num_steps) == 0
    np.testing.assert_array_equal(res.params, jnp.ones(2))
    assert np.isnan(res.losses).all()
    assert int(res.best_step) == -1 and np.isinf(res.best_loss)


def test_divergence_stops_on_the_last_finite_params():
    res = fit(lambda p: jnp.sum(p**2), jnp.ones(3), jaxgd.sgd(10.0), max_steps=500)
    k = int(res.num_steps)
    assert res.stop_reason == "nonfinite" and k < 500
    np.testing.assert_allclose(res.params, (-19.0) ** k, rtol=1e-5)
    assert np.isfinite(jnp.sum(res.params**2)) and np.isfinite(res.losses[k])


@pytest.mark.parametrize("early_stopping", [False, True])
def test_nonfinite_stops_under_vmap_leave_the_other_lanes_alone(early_stopping):
    lrs = jnp.array([0.01, 0.1, 10.0])  # the last one diverges
    tol = 0.0 if early_stopping else None

    def one(lr):
        return fit(lambda p: jnp.sum(p**2), jnp.ones(3), jaxgd.sgd(lr), max_steps=200,
                   tol=tol)

    batched = jax.vmap(one)(lrs)
    for i, lr in enumerate(lrs):
        alone = one(lr)
        np.testing.assert_allclose(batched.params[i], alone.params, rtol=1e-5)
        assert int(batched.num_steps[i]) == int(alone.num_steps)
        assert int(batched.stop_code[i]) == int(alone.stop_code)
    assert list(batched.stop_reason == "nonfinite") == [False, False, True]


@pytest.mark.parametrize(("loss_fn", "start", "stops", "on_nonfinite"), [
    (_bowl, 1.0, [False, False, True], "stop"),  # the last lane diverges (loss overflows)
    (_nan_gradient, 3.0, [True] * 3, "skip"),  # no step is finite: a NaN gradient at start
])
def test_a_sweeps_final_loss_is_the_loss_at_the_params_it_returns(loss_fn, start, stops,
                                                                  on_nonfinite):
    """A full-batch sweep of fixed length takes its final losses from its loop (one
    step more, see ``LoopConfig.evaluate_last``): they are the losses at the returned
    params, after a non-finite stop too."""
    res = jaxgd.sweep(loss_fn, jnp.full(2, start), jaxgd.sgd,
                      hyperparams={"learning_rate": [0.01, 0.1, 10.0]}, max_steps=200,
                      on_nonfinite=on_nonfinite)
    assert res.fit.final_loss is not None  # the loop's own
    assert list(res.fit.stop_reason == "nonfinite") == stops
    np.testing.assert_allclose(res.final_loss, jax.vmap(loss_fn)(res.fit.params), rtol=RTOL)
    assert np.isfinite(res.final_loss).all()
    assert fit(loss_fn, jnp.ones(2), jaxgd.sgd(0.1), max_steps=3).final_loss is None


def _poisoned_regression(n=48, poisoned=5):
    X = jax.random.normal(jax.random.PRNGKey(0), (n, 3))
    y = X @ jnp.array([1.0, -2.0, 0.5])
    return X.at[poisoned, 0].set(jnp.nan), y, poisoned


def _mse(p, batch):
    X, y = batch
    return jnp.mean((X @ p - y) ** 2)


def test_skip_trains_past_a_poisoned_example():
    X, y, poisoned = _poisoned_regression()
    k, epochs, key = 8, 12, jax.random.PRNGKey(3)
    opt = jaxgd.sgd(0.05)
    res = fit(_mse, jnp.zeros(3), opt, (X, y), batch_size=k, num_epochs=epochs, key=key,
              on_nonfinite="skip")
    assert res.stop_reason == "max_steps"
    assert int(res.num_skipped) == epochs  # one poisoned batch per epoch
    assert int(res.num_steps) == epochs * (len(y) // k - 1)

    # the reference: the same batches in Python, the poisoned one left out
    p, grad = jnp.zeros(3), jax.jit(jax.grad(_mse))
    skipped_steps = []
    for epoch in range(epochs):
        order = np.asarray(batching.epoch_permutation(key, jnp.asarray(epoch), len(y)))
        for j in range(len(y) // k):
            rows = order[j * k : (j + 1) * k]
            if poisoned in rows:
                skipped_steps.append(epoch * (len(y) // k) + j)
                continue
            p = p - 0.05 * grad(p, (X[rows], y[rows]))
    np.testing.assert_allclose(res.params, p, rtol=1e-5)
    np.testing.assert_array_equal(np.flatnonzero(np.isnan(res.losses)), skipped_steps)
    np.testing.assert_allclose(res.params, [1.0, -2.0, 0.5], atol=0.05)  # it learned
    best = int(np.nanargmin(res.losses))
    np.testing.assert_allclose(res.best_loss, res.losses[best])
    assert int(res.best_step) == best - sum(s < best for s in skipped_steps)

    stopped = fit(_mse, jnp.zeros(3), opt, (X, y), batch_size=k, num_epochs=epochs, key=key)
    # "stop" returns the params of the last finite step, the one before the poisoned batch
    assert stopped.stop_reason == "nonfinite"
    assert int(stopped.num_steps) == skipped_steps[0] - 1


SWEPT_RUNS = {
    # name: (loss, learning rates, fit keywords); the largest rate diverges
    "mini-batch, stop": (_mse, [0.01, 0.05, 50.0], dict(batch_size=8, num_epochs=4)),
    "mini-batch, skip": (_mse, [0.01, 0.05, 50.0],
                         dict(batch_size=8, num_epochs=4, on_nonfinite="skip")),
    "full batch, fixed length": (_bowl, [0.01, 0.1, 10.0], dict(max_steps=100)),
    "full batch, grad_tol": (_bowl, [0.01, 0.1, 10.0], dict(max_steps=300, grad_tol=1e-3)),
    "full batch, restore_best": (_bowl, [0.01, 0.1, 10.0], dict(max_steps=100,
                                                                restore_best=True)),
}


@pytest.mark.parametrize("case", list(SWEPT_RUNS))
def test_a_sweeps_records_are_those_of_lone_fits(case):
    """A sweep derives its records from each trial's history and stop code after its
    program (jaxgd.train.fit.finish): they are those of lone fits, past skipped
    batches, after a stop on the poisoned one, after a divergence and a convergence."""
    loss_fn, lrs, kwargs = SWEPT_RUNS[case]
    X, y, _ = _poisoned_regression()
    data, start = ((X, y), jnp.zeros(3)) if loss_fn is _mse else (None, jnp.zeros(2))
    res = jaxgd.sweep(loss_fn, start, jaxgd.sgd, data=data,
                      hyperparams={"learning_rate": lrs}, **kwargs)
    _, key = trial_keys(0)
    for i, lr in enumerate(lrs):
        alone = fit(loss_fn, start, jaxgd.sgd(lr), data, key=key, **kwargs)
        assert res.fit.stop_reason[i] == alone.stop_reason
        assert bool(res.fit.converged[i]) == bool(alone.converged)
        for name in ("num_steps", "num_skipped", "best_step"):
            assert int(getattr(res.fit, name)[i]) == int(getattr(alone, name)), name
        for name in ("losses", "grad_norms", "best_loss", "params"):
            np.testing.assert_allclose(getattr(res.fit, name)[i], getattr(alone, name),
                                       rtol=1e-5, err_msg=name)
    assert res.fit.stop_reason[-1] == "nonfinite"  # the large rate diverges
    if "skip" in case:
        assert int(res.fit.num_skipped[0]) > 0 and int(res.fit.best_step[0]) > 0
    if "grad_tol" in case:
        assert bool(res.fit.converged[1])


def test_skip_stops_after_an_epoch_of_nonfinite_batches():
    # A NaN learning rate from step 6 on makes the params NaN: every batch after is
    # non-finite, and skipping cannot help; after one epoch of them the run stops.
    X, y, _ = _poisoned_regression(poisoned=0)
    X = X.at[0, 0].set(1.0)
    opt = jaxgd.sgd(_nan_schedule)
    res = fit(_mse, jnp.zeros(3), opt, (X, y), batch_size=8, num_epochs=5, key=0,
              on_nonfinite="skip")
    per_epoch = len(y) // 8
    assert res.stop_reason == "nonfinite"
    assert int(res.num_steps) == 6 and int(res.num_skipped) == per_epoch - 1
    assert np.isfinite(res.params).all()
    assert np.isfinite(res.losses[:7]).all() and np.isnan(res.losses[7:]).all()


def test_restore_best_on_full_batches_returns_the_params_of_the_lowest_loss():
    # Gradient descent with too large a step on a quadratic: the loss goes down, then
    # up as the iterates start to oscillate with a growing amplitude... here made to
    # climb by a learning rate that grows with the step count.
    def growing(count):
        return 0.05 * 1.1 ** count.astype(jnp.float32)

    opt = jaxgd.sgd(growing)
    res = fit(_bowl, jnp.zeros(2), opt, max_steps=60, restore_best=True)
    traj, losses, _ = hand_loop(_bowl, jnp.zeros(2), opt, None, 60)
    final_loss = float(_bowl(traj[60][0]))
    all_losses = np.append(losses, final_loss)
    best = int(np.nanargmin(np.where(np.isfinite(all_losses), all_losses, np.nan)))
    assert 0 < best < 60
    assert int(res.best_step) == best
    np.testing.assert_allclose(res.best_loss, all_losses[best], rtol=RTOL)
    np.testing.assert_allclose(res.params, traj[best][0], rtol=RTOL)
    np.testing.assert_allclose(_bowl(res.params), res.best_loss, rtol=RTOL)
    last = fit(_bowl, jnp.zeros(2), opt, max_steps=60)  # default: the last params
    np.testing.assert_allclose(last.params, traj[int(last.num_steps)][0], rtol=RTOL)


def test_restore_best_counts_the_last_params_too():
    res = fit(_bowl, jnp.zeros(2), jaxgd.sgd(0.05), max_steps=30, restore_best=True)
    traj, _, _ = hand_loop(_bowl, jnp.zeros(2), jaxgd.sgd(0.05), None, 30)
    assert int(res.best_step) == 30  # still descending: the last params are the best
    np.testing.assert_allclose(res.params, traj[30][0], rtol=RTOL)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(on_nonfinite="ignore"), ValueError, "on_nonfinite must be one of"),
    (dict(restore_best=True, batch_size=4), ValueError, "restore_best=True with mini-batches"),
    (dict(restore_best="yes"), TypeError, "restore_best must be"),
])
def test_bad_stop_options_are_rejected_before_compiling(kwargs, error, match):
    X, y, _ = _poisoned_regression()
    before = trace_count()
    with pytest.raises(error, match=match):
        fit(_mse, jnp.zeros(3), jaxgd.sgd(0.1), (X, y), **kwargs)
    assert trace_count() == before
