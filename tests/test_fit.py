"""jaxgd.train.fit against hand-written loops, closed forms and known answers."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import hand_loop

import jaxgd
from jaxgd import problems
from jaxgd.train import FitResult, fit, lower_fit, trace_count

RTOL = 1e-6


def _assert_trees_close(a, b, rtol=RTOL, atol=0.0):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=atol), a, b)


# --- 1. Batch gradient descent is the hand-written loop ---------------------------------


@pytest.mark.parametrize("make_opt", [lambda: jaxgd.momentum(0.05), lambda: jaxgd.adam(0.05)])
def test_full_batch_matches_hand_written_loop(make_opt):
    prob = problems.linear_regression(num_examples=64, num_features=4)
    opt = make_opt()
    res = fit(prob.loss_fn, prob.init_params, opt, prob.data, max_steps=40)
    traj, losses, norms = hand_loop(prob.loss_fn, prob.init_params, opt, prob.data, 40)
    assert res.stop_reason == "max_steps" and int(res.num_steps) == 40
    assert not bool(res.converged)
    np.testing.assert_allclose(res.losses, losses, rtol=RTOL)
    np.testing.assert_allclose(res.grad_norms, norms, rtol=RTOL)
    # Two programs round differently; a coordinate that cancels to near 0 keeps the
    # absolute rounding of the scale it came from.
    scale = max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(traj[40][0]))
    _assert_trees_close(res.params, traj[40][0], atol=RTOL * scale)
    _assert_trees_close(res.opt_state, traj[40][1], atol=RTOL * scale)


# --- 2. Data regimes: which examples each step sees -------------------------------------


def _row_recorder(num_rows):
    """A test optimizer whose update writes the gradient into row `count` only. With the
    loss -sum(seen[:, batch]), row t of `seen` ends up counting the visits of step t."""

    def init(params):
        del params
        return jnp.zeros((), jnp.int32)

    def update(grads, count, params=None):
        del params
        row = (jnp.arange(num_rows) == count)[:, None]
        return jax.tree.map(lambda g: -g * row, grads), count + 1

    return jaxgd.GradientTransformation(init, update)


def _visits(n, batch_size, num_epochs, key):
    """(steps, n) matrix: entry (t, i) = how many times step t's batch held example i."""
    steps = num_epochs * (n // batch_size)
    indices = jnp.arange(n)  # the data is just the example indices

    def loss(params, batch):
        return -jnp.sum(params["seen"][:, batch])

    res = fit(loss, {"seen": jnp.zeros((steps, n))}, _row_recorder(steps), indices,
              batch_size=batch_size, num_epochs=num_epochs, key=key)
    assert int(res.num_steps) == steps
    return np.asarray(res.params["seen"]), steps // num_epochs


@pytest.mark.parametrize("batch_size", [1, 4])
def test_each_example_exactly_once_per_epoch(batch_size):
    seen, per_epoch = _visits(n=12, batch_size=batch_size, num_epochs=3, key=0)
    np.testing.assert_array_equal(seen.sum(axis=1), batch_size)  # full batches
    for epoch in range(3):
        block = seen[epoch * per_epoch : (epoch + 1) * per_epoch]
        np.testing.assert_array_equal(block.sum(axis=0), 1)  # each example exactly once
    orders = [np.argmax(seen[e * per_epoch : (e + 1) * per_epoch], axis=1) for e in range(3)]
    if batch_size == 1:
        assert not np.array_equal(orders[0], orders[1])  # reshuffled every epoch


def test_shuffling_is_determined_by_the_key():
    a, _ = _visits(n=12, batch_size=3, num_epochs=2, key=0)
    b, _ = _visits(n=12, batch_size=3, num_epochs=2, key=0)
    c, _ = _visits(n=12, batch_size=3, num_epochs=2, key=jax.random.PRNGKey(7))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_partial_batch_is_dropped_and_rotates():
    # n = 10, k = 3: 3 steps per epoch, 9 examples each epoch, one dropped.
    seen, per_epoch = _visits(n=10, batch_size=3, num_epochs=8, key=1)
    assert per_epoch == 3
    dropped = []
    for epoch in range(8):
        counts = seen[epoch * 3 : (epoch + 1) * 3].sum(axis=0)
        assert set(np.unique(counts)) <= {0, 1} and counts.sum() == 9  # at most once
        dropped.append(int(np.argmin(counts)))
    assert len(set(dropped)) > 1  # a different example is left out as the order changes


def test_full_batch_sees_the_whole_data_set_each_step():
    seen, per_epoch = _visits(n=6, batch_size=6, num_epochs=2, key=0)
    assert per_epoch == 1
    np.testing.assert_array_equal(seen, 1)


# --- 3. Known answers --------------------------------------------------------------------


def test_linear_regression_reaches_least_squares():
    prob = problems.linear_regression()
    res = fit(prob.loss_fn, prob.init_params, jaxgd.sgd(0.2), prob.data, max_steps=2000,
              grad_tol=1e-6)
    X, y = prob.data
    coef = jnp.linalg.lstsq(jnp.concatenate([X, jnp.ones((X.shape[0], 1))], axis=1), y)[0]
    np.testing.assert_allclose(res.params["w"], coef[:-1], rtol=1e-4)
    np.testing.assert_allclose(res.params["b"], coef[-1], rtol=1e-4)


def test_logistic_regression_fits_training_set():
    prob = problems.logistic_regression(label_noise=0.01, key=1)
    res = fit(prob.loss_fn, prob.init_params, jaxgd.sgd(1.0), prob.data, max_steps=500)
    assert float(prob.accuracy_fn(res.params, prob.data)) >= 0.95


def test_digits_mlp_with_minibatch_adam():
    prob = problems.mlp_digits(key=0)
    res = fit(prob.loss_fn, prob.init_params, jaxgd.adam(1e-2), prob.data, batch_size=32,
              num_epochs=10, key=1)
    assert int(res.num_steps) == 10 * (prob.data[0].shape[0] // 32)
    assert float(prob.accuracy_fn(res.params, prob.test_data)) >= 0.95


# --- 4. Stopping rules and non-finite values ---------------------------------------------


def _bowl(p):
    return jnp.sum((p - jnp.array([3.0, -1.0])) ** 2 * jnp.array([1.0, 4.0]))


def test_tol_stops_at_first_small_relative_change():
    res = fit(_bowl, jnp.zeros(2), jaxgd.sgd(0.05), max_steps=1000, tol=1e-4)
    k = int(res.num_steps)
    assert res.stop_reason == "tol" and bool(res.converged) and k < 1000
    f = np.asarray(res.losses[:k], np.float64)
    small = np.abs(np.diff(f)) <= 1e-4 * np.abs(f[1:])
    assert small[-1] and not small[:-1].any()  # the first step where the rule holds
    assert np.isnan(res.losses[k:]).all() and np.isnan(res.grad_norms[k:]).all()
    traj, losses, _ = hand_loop(_bowl, jnp.zeros(2), jaxgd.sgd(0.05), None, k)
    np.testing.assert_allclose(res.losses[:k], losses, rtol=RTOL)
    np.testing.assert_allclose(res.params, traj[k][0], rtol=RTOL)


def test_grad_tol_stops_at_first_small_gradient():
    res = fit(_bowl, jnp.zeros(2), jaxgd.sgd(0.05), max_steps=1000, grad_tol=1e-3)
    k = int(res.num_steps)
    assert res.stop_reason == "grad_tol" and bool(res.converged) and k < 1000
    norms = np.asarray(res.grad_norms[:k])
    assert norms[-1] <= 1e-3 and (norms[:-1] > 1e-3).all()


def test_early_stopping_restores_best_validation_params():
    def loss(p, targets):
        return jnp.mean((p - targets) ** 2)

    train, val = jnp.full((8,), 2.0), jnp.full((4,), 1.0)
    res = fit(loss, jnp.asarray(0.0), jaxgd.sgd(0.1), train, val_data=val, patience=3,
              max_steps=100)
    traj, _, _ = hand_loop(loss, jnp.asarray(0.0), jaxgd.sgd(0.1), train, 100)
    val_hand = np.array([float(loss(p, val)) for p, _ in traj[1:]])  # after each epoch
    best = int(np.argmin(val_hand[:10]))
    assert res.stop_reason == "patience" and not bool(res.converged)
    assert int(res.num_steps) == best + 1 + 3
    assert int(res.best_epoch) == best
    np.testing.assert_allclose(res.val_losses[: best + 4], val_hand[: best + 4], rtol=1e-5)
    assert np.isnan(res.val_losses[best + 4 :]).all()
    np.testing.assert_allclose(res.params, traj[best + 1][0], rtol=RTOL)
    last = fit(loss, jnp.asarray(0.0), jaxgd.sgd(0.1), train, val_data=val, patience=3,
               max_steps=100, restore_best=False)
    np.testing.assert_allclose(last.params, traj[best + 4][0], rtol=RTOL)


def test_has_aux_returns_last_steps_aux():
    def loss(p):
        return _bowl(p), {"first": p[0]}

    res = fit(loss, jnp.zeros(2), jaxgd.sgd(0.05), max_steps=7, has_aux=True)
    traj, _, _ = hand_loop(_bowl, jnp.zeros(2), jaxgd.sgd(0.05), None, 7)
    np.testing.assert_allclose(res.aux["first"], traj[6][0][0], rtol=RTOL)  # aux of step 6


# --- 5. vmap and compile caching ----------------------------------------------------------


def test_vmap_over_learning_rates_equals_separate_fits():
    prob = problems.linear_regression(num_examples=60, num_features=3)
    lrs = jnp.geomspace(0.01, 0.3, 8)

    def run(lr):
        return fit(prob.loss_fn, prob.init_params, jaxgd.sgd(lr), prob.data, batch_size=20,
                   max_steps=150, tol=1e-3, key=3)

    batched = jax.vmap(run)(lrs)
    assert isinstance(batched, FitResult) and batched.losses.shape == (8, 150)
    assert len(set(np.asarray(batched.num_steps).tolist())) > 1  # lanes stop at different steps
    # The separate fits share one optimizer object and set the rate in its state, so they
    # compile once (a new jaxgd.sgd(lr) per call would be a new program each time).
    opt = jaxgd.sgd(1.0)
    for i, lr in enumerate(lrs):
        state = jaxgd.set_hyperparams(opt.init(prob.init_params), learning_rate=lr)
        single = fit(prob.loss_fn, prob.init_params, opt, prob.data, batch_size=20,
                     max_steps=150, tol=1e-3, key=3, opt_state=state)
        assert int(batched.num_steps[i]) == int(single.num_steps)
        assert batched.stop_reason[i] == single.stop_reason
        np.testing.assert_allclose(batched.losses[i], single.losses, rtol=RTOL)
        _assert_trees_close(jax.tree.map(lambda x, i=i: x[i], batched.params), single.params)


def test_vmap_over_keys_and_initial_params():
    prob = problems.linear_regression(num_examples=40, num_features=3)
    opt = jaxgd.adam(0.05)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    starts = jax.tree.map(lambda x: x + jnp.arange(3.0).reshape((3,) + (1,) * x.ndim),
                          prob.init_params)

    def run(key, p0):
        return fit(prob.loss_fn, p0, opt, prob.data, batch_size=8, max_steps=30, key=key)

    batched = jax.vmap(run)(keys, starts)
    for i in range(3):
        single = run(keys[i], jax.tree.map(lambda x, i=i: x[i], starts))
        np.testing.assert_allclose(batched.losses[i], single.losses, rtol=RTOL)


def test_second_call_does_not_recompile():
    prob = problems.linear_regression(num_examples=32, num_features=3)
    opt = jaxgd.adam(0.1)
    before = trace_count()
    first = fit(prob.loss_fn, prob.init_params, opt, prob.data, max_steps=20, tol=1e-9)
    assert trace_count() == before + 1
    # New tolerance, hyperparameter values and initial params are inputs, not constants.
    start = jax.tree.map(lambda x: x + 1.0, prob.init_params)
    second = fit(prob.loss_fn, start, jaxgd.adam(0.01), prob.data, max_steps=20, tol=1e-3)
    assert trace_count() == before + 1
    assert not np.allclose(first.losses, second.losses)
    # Resuming from a given state is its own program (the state is an input rather than
    # built inside), compiled once for any state of that structure.
    state = jaxgd.set_hyperparams(opt.init(prob.init_params), learning_rate=0.01)
    third = fit(prob.loss_fn, start, opt, prob.data, max_steps=20, tol=1e-3, opt_state=state)
    np.testing.assert_allclose(third.losses, second.losses, rtol=RTOL)
    fit(prob.loss_fn, start, opt, prob.data, max_steps=20, tol=1e-3, opt_state=first.opt_state)
    assert trace_count() == before + 2
    fit(prob.loss_fn, prob.init_params, opt, prob.data, max_steps=21)  # new length: traced
    assert trace_count() == before + 3


# --- 6. Bad inputs: a clear error before compiling ----------------------------------------

_X, _Y = jnp.ones((10, 2)), jnp.ones(10)
_P = {"w": jnp.zeros(2)}


def _mse(p, batch):
    return jnp.mean((batch[0] @ p["w"] - batch[1]) ** 2)


BAD_INPUTS = {
    "leading_sizes_differ": (
        dict(data=(_X, jnp.ones(9))), ValueError, r"leading \(example\) axis.*\[1\]: 9"),
    "batch_size_zero": (dict(batch_size=0), ValueError, "batch_size must be a positive"),
    "batch_size_too_large": (dict(batch_size=11), ValueError, "larger than the data set"),
    "loss_not_scalar": (
        dict(loss_fn=lambda p, b: b[0] @ p["w"]), ValueError, r"scalar.*shape \(10,\)"),
    "data_but_one_arg_loss": (
        dict(loss_fn=lambda p: jnp.sum(p["w"])), TypeError, "data was given"),
    "no_data_but_two_arg_loss": (dict(data=None), TypeError, "data is None"),
    "integer_params": (
        dict(params={"w": jnp.zeros(2, jnp.int32)}), TypeError, "floating point.*'w'"),
    "max_steps_zero": (dict(max_steps=0), ValueError, "max_steps must be a positive"),
    "negative_tol": (dict(tol=-1e-3), ValueError, "tol must be a finite number >= 0"),
    "negative_grad_tol": (dict(grad_tol=-1.0), ValueError, "grad_tol must be"),
    "patience_without_val_data": (dict(patience=3), ValueError, "patience .* needs val_data"),
    "steps_and_epochs": (dict(max_steps=5, num_epochs=2), ValueError, "not both"),
    "aux_expected": (dict(has_aux=True), TypeError, "must return a pair"),
    "aux_not_expected": (
        dict(loss_fn=lambda p, b: (_mse(p, b), 0.0)), TypeError, "has_aux=True"),
    "not_an_optimizer": (dict(optimizer=0.1), TypeError, "gradient transformation"),
    "opt_state_of_another_optimizer": (
        dict(opt_state=jaxgd.adam(0.1).init(_P)), ValueError,
        "opt_state does not match this optimizer"),
    "opt_state_of_other_shapes": (
        dict(optimizer=jaxgd.sgd(0.1, momentum=0.9),
             opt_state=jaxgd.sgd(0.1, momentum=0.9).init({"w": jnp.zeros(3)})), ValueError,
        r"opt_state leaf .* has shape \(3,\)"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_raises_clear_error_before_compiling(case):
    overrides, error, match = BAD_INPUTS[case]
    kwargs = dict(loss_fn=_mse, params=_P, optimizer=jaxgd.sgd(0.1), data=(_X, _Y))
    kwargs.update(overrides)
    before = trace_count()
    with pytest.raises(error, match=match):
        fit(**kwargs)
    assert trace_count() == before


# --- 7. Progress reports ------------------------------------------------------------------


def test_progress_sink_is_fed_every_n_steps_and_at_the_end():
    calls = []
    res = fit(_bowl, jnp.zeros(2), jaxgd.sgd(0.01), max_steps=95, progress_every=10,
              progress=lambda step, loss: calls.append((int(step), float(loss))))
    steps = [s for s, _ in calls]
    assert steps == [*range(10, 100, 10), 95]
    np.testing.assert_allclose([loss for _, loss in calls],
                               np.asarray(res.losses)[np.array(steps) - 1], rtol=RTOL)


def test_no_callback_is_compiled_without_progress():
    quiet = lower_fit(_bowl, jnp.zeros(2), jaxgd.sgd(0.01), max_steps=95).as_text()
    loud = lower_fit(_bowl, jnp.zeros(2), jaxgd.sgd(0.01), max_steps=95,
                     progress=lambda step, loss: None).as_text()
    assert "callback" not in quiet and "custom_call" not in quiet
    assert "callback" in loud


def test_tqdm_bar_and_missing_tqdm(capsys, monkeypatch):
    pytest.importorskip("tqdm")
    fit(_bowl, jnp.zeros(2), jaxgd.sgd(0.01), max_steps=50, progress=True)
    err = capsys.readouterr().err
    assert "50/50" in err and "loss=" in err
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(ImportError, match="progress=True needs tqdm"):
        fit(_bowl, jnp.zeros(2), jaxgd.sgd(0.01), max_steps=50, progress=True)
