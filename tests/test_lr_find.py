"""The learning-rate finder: its suggestion against a dense sweep, its rule's properties,
the all-diverged case, the plot, the command line and bad input."""

import argparse
import math
import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd import problems
from jaxgd.commands import lr_find as command
from jaxgd.commands.arguments import UsageError
from jaxgd.sweep.lr_find import LRFindError, suggested_index


def _quiet_lr_find(*args, **kwargs):
    # the range-cut warning is checked on its own below
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jaxgd.lr_find(*args, **kwargs)


def _within_1_5x_of_a_dense_sweep(name, **kwargs):
    problem = problems.logistic_regression()
    factory = jaxgd.OPTIMIZERS[name]
    found = _quiet_lr_find(problem.loss_fn, problem.init_params, factory, problem.data,
                           **kwargs)
    # The reference reaches higher rates than the finder's default range, so that the
    # finder is not compared with a sweep that shares its blind spots. Its last lane is
    # the suggestion: a lane equals a separate 200-step fit (see test_sweep.py).
    rates = np.append(np.logspace(-6, 2, 41), found.suggestion)
    kwargs.pop("seeds", None)
    dense = jaxgd.sweep(problem.loss_fn, problem.init_params, factory, data=problem.data,
                        hyperparams={"learning_rate": rates}, max_steps=200, **kwargs)
    best = np.min(np.where(dense.diverged, np.inf, dense.final_loss)[:-1])
    loss = dense.final_loss[-1]
    assert np.isfinite(best) and not dense.diverged[-1] and loss <= 1.5 * best, \
        (found, loss, best)
    return found


def test_suggestion_on_logistic_regression_is_within_1_5x_of_a_dense_sweep():
    _within_1_5x_of_a_dense_sweep("sgd")


@pytest.mark.slow
def test_adam_suggestion_on_logistic_regression_is_within_1_5x_of_a_dense_sweep():
    _within_1_5x_of_a_dense_sweep("adam")


@pytest.mark.slow
def test_mini_batch_suggestion_is_within_1_5x_of_a_dense_sweep_and_averages_seeds():
    found = _within_1_5x_of_a_dense_sweep("sgd", batch_size=50, seeds=2)
    per_seed = found.sweep.final_loss.reshape(len(found.rates), 2)
    np.testing.assert_allclose(found.losses, per_seed.mean(axis=1), rtol=1e-6)
    assert not found.overshot.any()  # batch losses are not compared with the start


def test_losses_and_suggestion_on_a_1d_quadratic_follow_the_closed_form():
    lam, steps, x0 = 1.0, 20, 3.0
    # two seeds give two equal runs per rate: their mean is the closed form only if each
    # rate's seeds are paired up right
    found = _quiet_lr_find(lambda x: 0.5 * lam * x**2, jnp.float32(x0), jaxgd.sgd,
                           min_lr=0.05, max_lr=2.5, num_rates=30, max_steps=steps, seeds=2)
    rates = np.logspace(math.log10(0.05), math.log10(2.5), 30)
    expected = 0.5 * lam * x0**2 * (1 - rates * lam) ** (2 * steps)
    np.testing.assert_allclose(found.rates, rates, rtol=1e-12)
    np.testing.assert_allclose(found.losses, expected, rtol=2e-3, atol=1e-9)
    # GD on a quadratic lowers the loss at every step exactly when |1 - rate * lam| < 1
    np.testing.assert_array_equal(found.overshot, np.abs(1 - rates * lam) > 1)
    assert found.initial_loss == pytest.approx(0.5 * lam * x0**2)
    # the rule, applied to the closed form: largest rate of the run up from the best
    best = int(np.argmin(expected))
    good = (expected <= expected[best] + 0.05 * (found.initial_loss - expected[best])) \
        & (np.abs(1 - rates * lam) <= 1)
    top = best + int(np.argmin(good[best:])) - 1 if not good[best:].all() else len(rates) - 1
    assert found.suggestion == pytest.approx(rates[top])
    assert 1.0 < found.suggestion < 2.0 / lam


def _reference_rule(losses, diverged, overshot, initial, tolerance):
    """The rule of lr_find written another way: the largest j >= best such that every
    rate above the best up to j is finite, did not diverge or overshoot, and is within
    the tolerance."""
    finite = ~diverged & np.isfinite(losses)
    if not finite.any():
        return None
    best = int(np.argmin(np.where(finite, losses, np.inf)))
    if losses[best] >= initial:
        return None
    threshold = losses[best] + tolerance * (initial - losses[best])
    good = finite & ~overshot & (losses <= threshold)
    return max(j for j in range(best, len(losses)) if good[best + 1:j + 1].all())


def _synthetic_curve(rng, k=25):
    """A noisy U curve over log rates: slow at the left, best in the middle, worse and
    then diverged (NaN) at the right, some rates overshooting."""
    x = np.linspace(-1, 1, k)
    centre = rng.uniform(-0.5, 0.5)
    losses = 1.0 - np.exp(-((x - centre) / rng.uniform(0.2, 0.6)) ** 2)
    losses = losses + rng.normal(0, 0.02, k)
    diverged = x > rng.uniform(0.3, 1.2)
    losses[diverged] = np.nan
    overshot = rng.uniform(size=k) < 0.1
    return losses, diverged, overshot, 1.2


@pytest.mark.parametrize("seed", range(20))
def test_suggestion_rule_properties_on_synthetic_curves(seed):
    rng = np.random.default_rng(seed)
    losses, diverged, overshot, initial = _synthetic_curve(rng)
    tol = 0.05
    i = suggested_index(losses, diverged, initial, tol, overshot)
    best = int(np.nanargmin(np.where(diverged, np.nan, losses)))
    threshold = losses[best] + tol * (initial - losses[best])
    assert i is not None and i >= best and not diverged[i]
    assert losses[i] <= threshold
    # every rate from the best up to the suggestion is as good as the best, and the
    # next one up is not
    assert all(losses[j] <= threshold and not diverged[j] and not overshot[j]
               for j in range(best + 1, i + 1))
    if i + 1 < len(losses):
        assert diverged[i + 1] or overshot[i + 1] or losses[i + 1] > threshold
    assert i == _reference_rule(losses, diverged, overshot, initial, tol)
    # unchanged by a shift and a positive scale of the loss (the start loss included)
    for a, b in [(3.0, -5.0), (1e-3, 100.0), (7.0, 0.0)]:
        assert suggested_index(a * losses + b, diverged, a * initial + b, tol, overshot) == i
    # a zero tolerance gives the best rate; a larger tolerance never a smaller rate
    assert suggested_index(losses, diverged, initial, 0.0, overshot) == best
    steps = [suggested_index(losses, diverged, initial, t, overshot)
             for t in (0.0, 0.01, 0.05, 0.2, 0.5, 0.9)]
    assert steps == sorted(steps)


def test_rule_ignores_an_isolated_good_rate_and_stops_at_an_overshoot():
    losses = np.array([0.9, 0.5, 0.10, 0.101, 0.6, 0.1005, 0.8])
    none = np.zeros(7, bool)
    assert suggested_index(losses, none, 1.0, 0.05) == 3
    overshot = np.array([0, 0, 0, 1, 0, 0, 0], bool)
    assert suggested_index(losses, none, 1.0, 0.05, overshot) == 2
    # the best rate's own overshoot does not count against it: nothing did better
    assert suggested_index(losses, none, 1.0, 0.05, np.roll(overshot, -1)) == 3
    assert suggested_index(losses, np.ones(7, bool), 1.0, 0.05) is None
    assert suggested_index(losses, none, 0.05, 0.05) is None  # nothing lowered the loss


def test_every_rate_diverging_raises_with_the_curve(tmp_path):
    with pytest.raises(LRFindError, match=r"every rate diverged \(6 rates from 10 to "
                                          r"1e\+04\).*lower") as err:
        jaxgd.lr_find(lambda x: jnp.sum(x**2), jnp.ones(3), jaxgd.sgd, min_lr=10.0,
                      max_lr=1e4, num_rates=6, max_steps=30)
    result = err.value.result
    assert result.suggestion is None and result.diverged.all() and len(result.rates) == 6
    path = tmp_path / "diverged.png"
    result.plot(str(path))
    assert path.stat().st_size > 0


def test_a_suggestion_at_the_top_of_the_range_warns():
    with pytest.warns(UserWarning, match="largest rate tried, max_lr=0.1"):
        found = jaxgd.lr_find(lambda x: jnp.sum(x**2), jnp.ones(3), jaxgd.sgd,
                              min_lr=1e-3, max_lr=0.1, num_rates=5, max_steps=200)
    assert found.suggestion == pytest.approx(0.1)


def test_plot_writes_the_file(tmp_path):
    pytest.importorskip("matplotlib")
    from jaxgd.plot import plot_lr_find

    found = _quiet_lr_find(lambda x: 0.5 * jnp.sum(x**2) - 1.0, jnp.ones(2), jaxgd.sgd,
                           num_rates=6, min_lr=1e-2, max_lr=3.0, max_steps=15)
    path = tmp_path / "curve.png"
    figure = found.plot(str(path))
    assert path.stat().st_size > 0 and len(figure.axes) == 2
    assert plot_lr_find(found).axes[0].get_xscale() == "log"


@pytest.mark.parametrize("kwargs, error, message", [
    ({"min_lr": -1.0}, ValueError, "min_lr must be a finite number > 0"),
    ({"min_lr": float("nan")}, ValueError, "min_lr must be a finite number > 0"),
    ({"max_lr": float("inf")}, ValueError, "max_lr must be a finite number > 0"),
    ({"min_lr": 0.0}, ValueError, "min_lr must be a finite number > 0"),
    ({"min_lr": "0.1"}, TypeError, "min_lr must be a number"),
    ({"min_lr": 1.0, "max_lr": 1.0}, ValueError, "min_lr must be below max_lr"),
    ({"min_lr": 2.0, "max_lr": 1.0}, ValueError, "min_lr must be below max_lr"),
    ({"num_rates": 1}, ValueError, "num_rates must be an int >= 2"),
    ({"num_rates": 2.5}, ValueError, "num_rates must be an int >= 2"),
    ({"tolerance": 1.0}, ValueError, "tolerance must be a fraction in"),
    ({"tolerance": -0.1}, ValueError, "tolerance must be a fraction in"),
    ({"hyperparams": {"b1": [0.9]}}, TypeError, "lr_find sets"),
])
def test_bad_input_is_rejected_before_anything_runs(kwargs, error, message):
    def loss_fn(x):
        raise AssertionError("loss_fn was called")

    with pytest.raises(error, match=message):
        jaxgd.lr_find(loss_fn, jnp.ones(2), jaxgd.sgd, **kwargs)


def _parser():
    parser = argparse.ArgumentParser(prog="jaxgd lr-find")
    command.add_arguments(parser)
    return parser


def test_command_runs_on_a_small_problem_and_writes_the_plot(tmp_path, capsys):
    path = tmp_path / "lr.png"
    args = _parser().parse_args(["--problem", "quadratic", "--steps", "20", "--num-rates",
                                 "6", "--max-lr", "0.1", "--out", str(path)])
    assert command.run(args) == 0
    out = capsys.readouterr().out
    assert "suggested learning rate" in out and "<- suggested" in out
    assert path.stat().st_size > 0


def test_command_all_diverged_exits_1_and_still_plots(tmp_path, capsys):
    path = tmp_path / "lr.png"
    args = _parser().parse_args(["--problem", "quadratic", "--steps", "10", "--num-rates",
                                 "3", "--min-lr", "10", "--max-lr", "100", "--out", str(path)])
    assert command.run(args) == 1
    assert "every rate diverged" in capsys.readouterr().err
    assert path.stat().st_size > 0


@pytest.mark.parametrize("argv", [["--steps", "0"], ["--steps", "-5"], ["--min-lr", "-1"],
                                  ["--max-lr", "nan"], ["--problem", "rosenbrock"],
                                  ["--out", "/no/such/dir/lr.png"]])
def test_command_rejects_bad_arguments_at_parse_time(argv, capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(argv)
    assert "error: argument" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--min-lr", "1", "--max-lr", "0.5"], "--min-lr: must be below --max-lr"),
    (["--num-rates", "1"], "--num-rates: must be at least 2"),
    (["--optimizer", "adamm"], "did you mean 'adam'"),
    (["--optimizer", "polyak_sgd"], "polyak_sgd takes no learning_rate"),
    (["--problem", "quadratic", "--batch-size", "8"], "has no data examples"),
])
def test_command_rejects_bad_values_before_running(argv, message):
    with pytest.raises(UsageError, match=message):
        command.run(_parser().parse_args(argv))
