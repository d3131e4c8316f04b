"""Optimizer paths on the 2-D test functions: the functions' minima, the rate each sweep
picks, the recorded paths, the pictures, the command line and its errors."""

import argparse
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd import problems
from jaxgd.commands import paths as paths_command
from jaxgd.commands.arguments import UsageError
from jaxgd.plot import paths as draw_paths
from jaxgd.sweep.paths import optimizer_paths

# ------------------------------------------------------------------ the new functions


def _camel_grad(x, y):  # by hand, in float64
    return np.array([8 * x - 8.4 * x**3 + 2 * x**5 + y, x - 8 * y + 16 * y**3])


def _camel_hessian(x, y):
    return np.array([[8 - 25.2 * x**2 + 10 * x**4, 1.0], [1.0, -8 + 48 * y**2]])


def test_six_hump_camel_minima_are_minima():
    p = problems.six_hump_camel()
    values = []
    for x, y in problems.CAMEL_MINIMA:
        assert np.max(np.abs(_camel_grad(x, y))) < 1e-12
        assert np.all(np.linalg.eigvalsh(_camel_hessian(x, y)) > 0)
        values.append(float(p.loss_fn(jnp.asarray([x, y]))))
        assert np.max(np.abs(np.asarray(jax.grad(p.loss_fn)(jnp.asarray([x, y]))))) < 1e-4
    assert values[0] == pytest.approx(p.min_value, abs=1e-6)
    assert min(values) == pytest.approx(p.min_value, abs=1e-6)
    assert len(p.info["minima"]) == 6


def test_saddle_has_a_saddle_and_two_minima():
    p = problems.saddle()
    hessian = np.asarray(jax.hessian(p.loss_fn)(jnp.zeros(2)))
    np.testing.assert_allclose(np.linalg.eigvalsh(hessian), [-1.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(jax.grad(p.loss_fn)(jnp.zeros(2)), 0.0, atol=0)
    assert float(p.loss_fn(jnp.zeros(2))) == pytest.approx(0.25)
    for m in p.info["minima"]:
        np.testing.assert_allclose(jax.grad(p.loss_fn)(m), 0.0, atol=1e-7)
        assert float(p.loss_fn(m)) == 0.0
        assert np.all(np.linalg.eigvalsh(np.asarray(jax.hessian(p.loss_fn)(m))) > 0)
    # x^2 - y^2/2 + y^4/4 + 1/4 at any point
    x, y = 0.7, -1.3
    assert float(p.loss_fn(jnp.asarray([x, y]))) == pytest.approx(
        x**2 - y**2 / 2 + y**4 / 4 + 0.25, rel=1e-6)


@pytest.mark.parametrize("angle", [0.0, 0.6])
def test_ill_conditioned_quadratic_closed_form(angle):
    p = problems.ill_conditioned(condition=30.0, angle=angle)
    c, s = np.cos(angle), np.sin(angle)
    u = np.array([c, s])  # the flat direction, eigenvalue 1
    v = np.array([-s, c])  # the steep one, eigenvalue 30
    point = np.array([0.3, -1.7])
    expected = 0.5 * ((u @ point) ** 2 + 30.0 * (v @ point) ** 2)
    assert float(p.loss_fn(jnp.asarray(point))) == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(np.linalg.eigvalsh(p.info["A"]), [1.0, 30.0], rtol=1e-12)
    np.testing.assert_allclose(jax.grad(p.loss_fn)(p.optimum), 0.0, atol=0)
    assert p.info["condition_number"] == 30.0
    with pytest.raises(ValueError, match="condition"):
        problems.ill_conditioned(condition=0.5)


@pytest.mark.parametrize("name", list(problems.FUNCTIONS))
def test_domain_holds_the_start_and_the_minima(name):
    p = problems.FUNCTIONS[name]()
    (x0, x1), (y0, y1) = p.info["domain"]
    for x, y in [np.asarray(p.init_params), *np.asarray(p.info["minima"])]:
        assert x0 < x < x1 and y0 < y < y1
    assert float(p.loss_fn(p.optimum)) == pytest.approx(p.min_value, abs=1e-6)


# ------------------------------------------------------------------ the computation

KAPPA = 20.0
GRID = [0.005, 0.02, 0.05, 0.09, 0.5]  # 0.5 > 2/20 overflows: a diverged lane
STEPS = 60


@pytest.fixture(scope="module")
def quadratic_paths():
    return optimizer_paths(["ill_conditioned"], ["sgd"], STEPS, grid=GRID)


def test_picked_rate_is_the_grid_best_by_separate_fits(quadratic_paths):
    p = problems.ill_conditioned()
    finals = []
    for rate in GRID:
        res = jaxgd.fit(p.loss_fn, p.init_params, jaxgd.sgd(rate), max_steps=STEPS)
        finals.append(np.inf if res.stop_reason == "nonfinite" else float(p.loss_fn(res.params)))
    assert np.isinf(finals[-1])
    scores = quadratic_paths.grid_loss[("ill_conditioned", "sgd")]
    np.testing.assert_allclose(scores, finals, rtol=1e-5)
    (traj,) = quadratic_paths.trajectories
    assert traj.learning_rate == pytest.approx(GRID[int(np.argmin(finals))])
    assert quadratic_paths.best_rate("ill_conditioned", "sgd") == pytest.approx(traj.learning_rate)


def test_trajectory_is_gradient_descent_and_losses_are_f(quadratic_paths):
    p = problems.ill_conditioned()
    (traj,) = quadratic_paths.trajectories
    assert traj.points.shape == (1, STEPS + 1, 2) and traj.losses.shape == (1, STEPS + 1)
    np.testing.assert_array_equal(traj.points[0, 0], np.asarray(p.init_params))
    np.testing.assert_allclose(traj.losses[0], np.asarray(jax.vmap(p.loss_fn)(traj.points[0])),
                               rtol=1e-6)
    # axis-aligned quadratic: x_k = (1 - eta)^k x_0, y_k = (1 - eta kappa)^k y_0
    k = np.arange(STEPS + 1)
    factors = np.stack([(1 - traj.learning_rate) ** k, (1 - traj.learning_rate * KAPPA) ** k], 1)
    np.testing.assert_allclose(traj.points[0], factors * np.asarray(p.init_params),
                               rtol=1e-4, atol=1e-6)
    assert traj.reached.tolist() == [0] and not traj.diverged.any()


def test_fixed_rates_record_a_diverging_path_as_nan():
    res = optimizer_paths(["ill_conditioned"], ["sgd"], 40, learning_rates=[0.05, 0.5])
    assert res.grid is None and res.grid_loss == {}
    good, bad = res.trajectories
    assert np.all(np.isfinite(good.losses)) and not good.diverged.any()
    assert bad.diverged.all() and bad.reached.tolist() == [-1]
    first_nan = int(np.argmax(np.isnan(bad.losses[0])))
    assert first_nan > 1 and np.all(np.isnan(bad.points[0, first_nan:]))
    # before that, each step multiplies y by 1 - 0.5 * 20 = -9
    np.testing.assert_allclose(bad.points[0, 1:first_nan, 1] / bad.points[0, :first_nan - 1, 1],
                               -9.0, rtol=1e-4)


@pytest.fixture(scope="module")
def himmelblau_starts():
    return optimizer_paths(["himmelblau"], ["adam"], 300, starts=8, grid=[0.03, 0.1])


def test_multistart_on_himmelblau_reaches_the_known_minima(himmelblau_starts):
    (traj,) = himmelblau_starts.trajectories
    minima = np.asarray(problems.HIMMELBLAU_MINIMA)
    ends = traj.points[:, -1]
    distance = np.linalg.norm(ends[:, None] - minima[None], axis=-1)
    assert np.all(distance.min(axis=1) < 1e-2)
    np.testing.assert_array_equal(traj.reached, distance.argmin(axis=1))
    assert len(set(traj.reached.tolist())) >= 2
    starts = himmelblau_starts.starts["himmelblau"]
    np.testing.assert_array_equal(traj.points[:, 0], starts)
    assert len(np.unique(starts, axis=0)) == 8 and np.all(np.abs(starts) <= 6)


@pytest.fixture(scope="module")
def saddle_rates():
    return optimizer_paths(["saddle"], ["sgd"], 10, grid=[0.1, 0.3], lr_factors=[0.5, 1.0])


def test_lr_factors_scale_the_picked_rate(saddle_rates):
    best = saddle_rates.best_rate("saddle", "sgd")
    assert [t.learning_rate for t in saddle_rates.trajectories] == pytest.approx([0.5 * best,
                                                                                  best])


# ------------------------------------------------------------------ pictures


def test_pictures_are_written(tmp_path, himmelblau_starts, saddle_rates):
    pytest.importorskip("matplotlib")
    fig = draw_paths(result=himmelblau_starts, out=str(tmp_path / "multi.png"), resolution=40)
    assert (tmp_path / "multi.png").read_bytes()[:4] == b"\x89PNG"
    assert fig.axes[0].get_title() == "himmelblau"
    fig = draw_paths(result=saddle_rates, out=str(tmp_path / "rates.png"), resolution=40)
    assert (tmp_path / "rates.png").read_bytes()[:4] == b"\x89PNG"
    assert fig.axes[0].get_title() == "saddle: sgd"


@pytest.mark.slow
def test_animation_is_written(tmp_path, saddle_rates):
    pytest.importorskip("matplotlib")
    draw_paths(result=saddle_rates, gif=str(tmp_path / "rates.gif"), resolution=40)
    assert (tmp_path / "rates.gif").read_bytes()[:3] == b"GIF"


# ------------------------------------------------------------------ errors


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="unknown function 'rosenbrok'.*six_hump_camel"):
        optimizer_paths(["rosenbrok"])
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'.*nesterov"):
        optimizer_paths(["saddle"], ["adamm"])
    with pytest.raises(ValueError, match="steps must be a positive int"):
        optimizer_paths(["saddle"], steps=0)
    with pytest.raises(ValueError, match="starts"):
        optimizer_paths(["saddle"], starts=-2)
    with pytest.raises(ValueError, match="not both"):
        optimizer_paths(["saddle"], learning_rates=[0.1], lr_factors=[1.0])


def test_missing_directory_fails_before_any_work(tmp_path, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("computed before checking the output path")

    # jaxgd.sweep is also the name of the function: reach the module itself
    monkeypatch.setattr(importlib.import_module("jaxgd.sweep.paths"), "optimizer_paths", no_work)
    for key in ("out", "gif"):
        with pytest.raises(ValueError, match=f"{key}=.*does not exist"):
            draw_paths(["saddle"], **{key: str(tmp_path / "nope" / "p.png")})


def _parser():
    parser = argparse.ArgumentParser(prog="jaxgd paths")
    paths_command.add_arguments(parser)
    return parser


def test_cli_rejects_bad_values(tmp_path, capsys):
    parser = _parser()
    for argv in (["--steps", "0"], ["--steps", "-5"], ["--starts", "x"],
                 ["--out", str(tmp_path / "nope" / "p.png")], ["--lr", "-1"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(UsageError, match="unknown name 'nope'.*himmelblau"):
        paths_command.run(parser.parse_args(["--functions", "nope"]))
    with pytest.raises(UsageError, match="'adamm'.*did you mean 'adam'"):
        paths_command.run(parser.parse_args(["--optimizers", "adamm"]))
    with pytest.raises(UsageError, match="--optimizer"):
        paths_command.run(parser.parse_args(["--lr", "--optimizers", "sgd"]))


def test_cli_lr_mode_writes_the_picture(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "lr.png"
    args = _parser().parse_args(["--functions", "saddle", "--steps", "5", "--lr", "0.01",
                                 "0.1", "--optimizer", "momentum", "--out", str(out)])
    assert paths_command.run(args) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "momentum" in printed and "0.01" in printed and "0.1" in printed
