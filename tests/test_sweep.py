"""jaxgd.sweep: many trials in one compiled program, equal to separate runs.

Lane-equality tests run in float64: on CPUs with FMA, XLA contracts a*b+c differently
for different vector widths, so float32 lanes differ from single runs by ~1e-7 per step
(plain JAX does the same); float64 keeps that at ~1e-16 and makes the tests sharp.
"""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd import problems
from jaxgd.sweep import sweep, trial_keys


def _float64(tree):
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), tree)


def test_gd_sweep_on_1d_quadratic_matches_closed_form_in_every_lane():
    lam, x0, k = 2.0, 1.5, 40
    with jax.enable_x64(True):
        lrs = np.logspace(-3, 0, 64)
        res = sweep(lambda x: 0.5 * lam * jnp.sum(x**2), jnp.full((1,), x0, jnp.float64),
                    jaxgd.sgd, hyperparams={"learning_rate": lrs}, max_steps=k)
        x = np.asarray(res.fit.params)[:, 0]
    assert x.dtype == np.float64 and x.shape == (64,)
    np.testing.assert_allclose(x, (1 - lrs * lam) ** k * x0, rtol=1e-6, atol=1e-300)
    assert np.all(res.num_steps == k)


SEPARATE = {
    "sgd": (jaxgd.sgd, {"learning_rate": [0.01, 0.05, 0.1]}),
    "momentum": (jaxgd.momentum, {"learning_rate": [0.01, 0.03], "momentum": [0.5, 0.9]}),
    "rmsprop": (jaxgd.rmsprop, {"learning_rate": [1e-3, 1e-2], "decay": [0.9, 0.99]}),
    "adam": (jaxgd.adam, {"learning_rate": [1e-3, 1e-2], "b1": [0.8, 0.9]}),
}


@pytest.mark.parametrize("name", sorted(SEPARATE))
def test_every_trial_equals_a_separate_fit_with_its_key(name):
    factory, grid = SEPARATE[name]
    with jax.enable_x64(True):
        problem = problems.linear_regression(num_examples=64, num_features=3)
        params, data = _float64(problem.init_params), _float64(problem.data)
        kwargs = dict(batch_size=16, max_steps=30)
        res = sweep(problem.loss_fn, params, factory, hyperparams=grid, seeds=[3, 7],
                    data=data, **kwargs)
        assert res.trials.count == 2 * int(np.prod([len(v) for v in grid.values()]))
        for i in range(res.trials.count):
            hp = {n: float(v[i]) for n, v in res.hyperparams.items()}
            _, fit_key = trial_keys(int(res.trials.seeds[i]))
            alone = jaxgd.fit(problem.loss_fn, params, factory(**hp), data, key=fit_key,
                              **kwargs)
            for a, b in zip(jax.tree.leaves(alone.params),
                            jax.tree.leaves(jax.tree.map(lambda x, i=i: x[i], res.fit.params)),
                            strict=True):
                np.testing.assert_allclose(b, a, rtol=1e-6)
            np.testing.assert_allclose(res.losses[i], alone.losses, rtol=1e-6)
    # different seeds order the data differently
    assert not np.allclose(res.losses[0], res.losses[1])


def _adam_grid(**kwargs):
    problem = problems.logistic_regression(num_examples=64, num_features=4)
    return sweep(problem.loss_fn, _float64(problem.init_params), jaxgd.adam,
                 hyperparams={"learning_rate": np.logspace(-3, -1, 8),
                              "b1": [0.5, 0.8, 0.9, 0.95]},
                 seeds=4, data=_float64(problem.data), batch_size=16, max_steps=20, **kwargs)


def test_grid_of_128_trials_in_one_call_and_max_parallel_gives_the_same_results():
    with jax.enable_x64(True):
        whole = _adam_grid()
        chunked = _adam_grid(max_parallel=16)
    assert whole.trials.count == 128
    table = whole.table()
    assert len(set(zip(table["learning_rate"], table["b1"], table["seed"], strict=True))) == 128
    np.testing.assert_allclose(chunked.losses, whole.losses, rtol=1e-9)
    np.testing.assert_allclose(chunked.final_loss, whole.final_loss, rtol=1e-9)
    assert chunked.best_index == whole.best_index


def test_diverging_trial_is_flagged_and_leaves_the_others_unchanged():
    def run(lrs):
        return sweep(lambda x: jnp.sum(x**2), jnp.array([1.0, -2.0]), jaxgd.sgd,
                     hyperparams={"learning_rate": lrs}, max_steps=200)

    good = [0.01, 0.1, 0.3]
    with_bad = run(good + [5.0])     # |1 - 2*5| = 9: overflows to inf within 200 steps
    same_width = run(good + [0.2])
    assert with_bad.diverged.tolist() == [False, False, False, True]
    assert with_bad.table()["stop_reason"][3] == "nonfinite"
    assert np.all(np.isfinite(np.asarray(with_bad.fit.params)))
    # same lane layout: bit-identical; the NaN did not leak into other lanes
    np.testing.assert_array_equal(with_bad.losses[:3], same_width.losses[:3])
    with jax.enable_x64(True):
        narrow = run(good)
        wide = run(good + [5.0])
    np.testing.assert_allclose(wide.losses[:3], narrow.losses, rtol=1e-12)
    assert with_bad.best_index != 3
    assert with_bad.best["final_loss"] == np.min(with_bad.final_loss[:3])


def test_multistart_from_init_fn_finds_himmelblau_minima():
    problem = problems.himmelblau()
    res = sweep(problem.loss_fn, None, jaxgd.adam, hyperparams={"learning_rate": [0.05]},
                seeds=32, init_fn=lambda k: jax.random.uniform(k, (2,), minval=-5, maxval=5),
                max_steps=2000)
    minima = np.asarray(problems.HIMMELBLAU_MINIMA)
    ends = np.asarray(res.fit.params)
    nearest = np.min(np.linalg.norm(ends[:, None] - minima[None], axis=-1), axis=1)
    assert np.all(nearest < 1e-3)
    found = set(np.argmin(np.linalg.norm(ends[:, None] - minima[None], axis=-1), axis=1))
    assert len(found) >= 3  # different starts reach different minima


def test_table_pandas_and_plot(tmp_path):
    res = sweep(lambda x: jnp.sum(x**2), jnp.ones(2), jaxgd.sgd,
                hyperparams={"learning_rate": [0.01, 0.1, 2.0]}, max_steps=50)
    assert set(res.table()) >= {"learning_rate", "seed", "final_loss", "best_loss", "steps",
                                "diverged", "stop_reason"}
    pd = pytest.importorskip("pandas")
    frame = res.to_pandas()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 3
    pytest.importorskip("matplotlib")
    res.plot(str(tmp_path / "sweep.png"))
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    np.testing.assert_allclose(res.best_params, np.zeros(2), atol=1e-3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(hyperparams={"lr": [0.1]}), r"sgd takes no argument 'lr'; it takes: learning_rate"),
        (dict(hyperparams={"learning_rate": [0.1, 0.2], "momentum": [0.9]}, mode="zip"),
         "equal lengths"),
        (dict(hyperparams={"learning_rate": []}), r"hyperparams\['learning_rate'\] is empty"),
        (dict(hyperparams={"learning_rate": [0.1, np.nan]}), "non-finite"),
        (dict(hyperparams={"learning_rate": [0.1, -1.0]}), "learning_rate must be a finite"),
        (dict(hyperparams={"momentum": [0.9]}), r"sgd needs \['learning_rate'\]"),
        (dict(hyperparams={"learning_rate": [0.1]}, mode="outer"), "mode must be"),
        (dict(hyperparams={}), "hyperparams is empty"),
        (dict(hyperparams={"learning_rate": [0.1]}, seeds=0), "seeds must be"),
        (dict(hyperparams={"learning_rate": [0.1]}, max_parallel=0), "max_parallel"),
    ],
)
def test_bad_sweep_input_is_rejected_before_compiling(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sweep(lambda x: jnp.sum(x**2), jnp.ones(2), jaxgd.sgd, max_steps=5, **kwargs)


def test_a_built_transformation_is_not_a_factory():
    with pytest.raises(TypeError, match="optimizer factory"):
        sweep(lambda x: jnp.sum(x**2), jnp.ones(2), jaxgd.sgd(0.1),
              hyperparams={"learning_rate": [0.1]})


MULTI_DEVICE = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    import jaxgd
    from jaxgd.sweep import sweep
    assert jax.device_count() == 8, jax.devices()
    def run(n, devices=None):
        return sweep(lambda x: jnp.sum(jnp.asarray([1.0, 3.0]) * x**2), jnp.ones(2),
                     jaxgd.momentum, hyperparams={"learning_rate": np.logspace(-3, -0.5, n)},
                     max_steps=50, devices=devices)
    sharded = run(16)
    assert len(sharded.fit.losses.sharding.device_set) == 8, sharded.fit.losses.sharding
    assert len(sharded.fit.params.sharding.device_set) == 8
    single = run(16, devices=jax.devices()[:1])
    np.testing.assert_allclose(sharded.losses, single.losses, rtol=1e-12)
    padded = run(12)                      # 12 trials over 8 devices: padded to 16
    np.testing.assert_allclose(padded.losses, run(12, jax.devices()[:1]).losses, rtol=1e-12)
    assert padded.losses.shape[0] == 12
    print("OK")
""")


def test_trials_are_sharded_over_8_cpu_devices_with_the_1_device_results():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
           "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", MULTI_DEVICE], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and "OK" in done.stdout, done.stderr[-3000:]


def test_a_many_leaf_sweep_equals_separate_fits_and_leaves_fit_working():
    # Over IN_PROGRAM_LEAVES leaves, fit's flat path hands the sweep its result flat and
    # the sweep unflattens every trial at once after its program.
    from jaxgd.train import flat
    with jax.enable_x64(True):
        target = [jnp.linspace(-1.0, 1.0, 3) * (i + 1) for i in range(flat.IN_PROGRAM_LEAVES + 4)]
        params = [jnp.zeros_like(t) for t in target]

        def loss(p):
            return sum(jnp.sum((x - t) ** 2) for x, t in zip(p, target, strict=True))

        lrs = [0.01, 0.05, 0.2]
        res = sweep(loss, params, jaxgd.adam, hyperparams={"learning_rate": lrs},
                    max_steps=25, max_parallel=2)
        for i, lr in enumerate(lrs):
            alone = jaxgd.fit(loss, params, jaxgd.adam(lr), max_steps=25)
            lane = jax.tree.map(lambda x, i=i: x[i], (res.fit.params, res.fit.opt_state))
            assert jax.tree.structure(lane) == jax.tree.structure(
                (alone.params, alone.opt_state))
            for a, b in zip(jax.tree.leaves(lane), jax.tree.leaves(
                    (alone.params, alone.opt_state)), strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12)
            np.testing.assert_allclose(res.final_loss[i], loss(alone.params), rtol=1e-6)


def test_a_many_leaf_sweep_from_numpy_float64_params_restores_its_trials():
    # Outside x64, jit turns the float64 start into float32: the sweep must look up the
    # restore of the program it traced, keyed by the start as the program sees it.
    params = [np.full(3, float(i)) for i in range(12)]
    res = sweep(lambda p: sum(jnp.sum(x**2) for x in p), params, jaxgd.sgd,
                hyperparams={"learning_rate": [0.1, 0.2]}, max_steps=3)
    assert len(res.fit.params) == 12
    assert res.fit.params[1].shape == (2, 3) and res.fit.params[1].dtype == jnp.float32
    np.testing.assert_allclose(res.fit.params[1][0], 0.8 ** 3, rtol=1e-6)
