"""jaxgd.sweep: many trials in one compiled program, equal to separate runs.

Lane-equality tests run in float64: on CPUs with FMA, XLA contracts a*b+c differently
for different vector widths, so float32 lanes differ from single runs by ~1e-7 per step
(plain JAX does the same); float64 keeps that at ~1e-16 and makes the tests sharp.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd import problems
from jaxgd.core.hyperparams import hyperparam_names
from jaxgd.sweep import sweep, trial_keys
from jaxgd.train.loop import trace_count


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


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n == "adam" else pytest.mark.slow)
                                  for n in sorted(SEPARATE)])
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


@pytest.mark.slow
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


# --- static hyperparameters, optimizer dicts, validation, plots --------------------------

def _regression():
    problem = problems.linear_regression(num_examples=32, num_features=3)
    return problem.loss_fn, _float64(problem.init_params), _float64(problem.data)


def _assert_each_trial_equals_a_separate_fit(res, optimizer, loss_fn, params, data, **kwargs):
    """Rebuild every trial from its table row alone and run it with jaxgd.fit."""
    table = res.table()
    for i in range(res.trials.count):
        factory = optimizer[table["optimizer"][i]] if isinstance(optimizer, dict) else optimizer
        takes = hyperparam_names(factory)
        args = {n: (float(c[i]) if c.dtype != object else c[i])
                for n, c in res.hyperparams.items() if n in takes}
        _, fit_key = trial_keys(int(res.trials.seeds[i]))
        alone = jaxgd.fit(loss_fn, params, factory(**args), data, key=fit_key, **kwargs)
        lane = jax.tree.map(lambda x, i=i: x[i], res.fit.params)
        for a, b in zip(jax.tree.leaves(alone.params), jax.tree.leaves(lane), strict=True):
            np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(res.losses[i], alone.losses, rtol=1e-9)


STATIC = {  # mini-batches in one case: the seeds then give different trials
    "sgd nesterov": (jaxgd.sgd, {"learning_rate": [0.01, 0.05], "momentum": [0.9],
                                 "nesterov": [False, True]}, "nesterov", 8),
    "rmsprop centered": (jaxgd.rmsprop, {"centered": [True, False],
                                         "learning_rate": [1e-3, 1e-2]}, "centered", None),
}


@pytest.mark.parametrize("name", sorted(STATIC))
def test_swept_flags_compile_one_program_each_and_equal_separate_fits(name):
    factory, grid, flag, batch_size = STATIC[name]
    with jax.enable_x64(True):
        loss_fn, params, data = _regression()
        kwargs = dict(batch_size=batch_size, max_steps=12)
        res = sweep(loss_fn, params, factory, hyperparams=grid, seeds=[1, 4], data=data,
                    **kwargs)
        _assert_each_trial_equals_a_separate_fit(res, factory, loss_fn, params, data, **kwargs)
    # grid order: first name slowest, seeds fastest, across the two programs
    configs = list(itertools.product(*grid.values()))
    expected = [c[list(grid).index(flag)] for c in configs for _ in range(2)]
    assert res.table()[flag].tolist() == expected
    assert res.trials.seeds.tolist() == [1, 4] * len(configs)
    assert len(res.trials.programs) == 2
    assert not np.allclose(res.final_loss[expected.index(True)],
                           res.final_loss[expected.index(False)])


def test_swept_schedules_equal_separate_fits():
    schedules = [jaxgd.exponential_decay(0.1, 4, 0.5), jaxgd.cosine_decay_schedule(0.2, 12)]
    with jax.enable_x64(True):
        loss_fn, params, data = _regression()
        res = sweep(loss_fn, params, jaxgd.momentum,
                    hyperparams={"learning_rate": schedules, "momentum": [0.5, 0.9]},
                    data=data, max_steps=12)
        _assert_each_trial_equals_a_separate_fit(res, jaxgd.momentum, loss_fn, params, data,
                                                 max_steps=12)
    assert [s is t for s, t in zip(res.hyperparams["learning_rate"],
                                   np.repeat(schedules, 2), strict=True)] == [True] * 4
    assert res.hyperparams["momentum"].tolist() == [0.5, 0.9, 0.5, 0.9]


def test_an_optimizer_dict_sweeps_each_optimizer_over_the_names_it_takes():
    optimizers = {"adam": jaxgd.adam, "sgd": jaxgd.sgd}
    with jax.enable_x64(True):
        loss_fn, params, data = _regression()
        res = sweep(loss_fn, params, optimizers, data=data, max_steps=12,
                    hyperparams={"learning_rate": [0.01, 0.1], "b1": [0.8, 0.9]})
        _assert_each_trial_equals_a_separate_fit(res, optimizers, loss_fn, params, data,
                                                 max_steps=12)
    table = res.table()
    assert list(table)[:3] == ["optimizer", "learning_rate", "b1"]
    assert table["optimizer"].tolist() == ["adam"] * 4 + ["sgd"] * 2
    np.testing.assert_array_equal(table["learning_rate"], [0.01, 0.01, 0.1, 0.1, 0.01, 0.1])
    np.testing.assert_array_equal(table["b1"], [0.8, 0.9, 0.8, 0.9, np.nan, np.nan])
    assert res.fit.opt_state is None  # adam's and sgd's states differ
    assert res.best["optimizer"] in optimizers


def test_best_is_chosen_on_validation_loss_when_val_data_is_given():
    # Training data centred on 1, validation data on 0.5: from 0, sgd reaches the
    # training mean in one step at learning rate 0.5, and passes 0.5 after 5 steps at
    # the rate r with (1 - 2r)^5 = 1/2.
    def loss_fn(p, batch):
        return jnp.mean((p - batch) ** 2)

    train, val = jnp.array([0.9, 1.1]), jnp.array([0.4, 0.6])
    halfway = (1 - 0.5 ** (1 / 5)) / 2
    with jax.enable_x64(True):
        res = sweep(loss_fn, jnp.zeros(()), jaxgd.sgd, data=train, val_data=val,
                    hyperparams={"learning_rate": [halfway, 0.5]}, max_steps=5)
        p = np.asarray(res.fit.params)
    np.testing.assert_allclose(p, [0.5, 1.0], rtol=1e-9)
    np.testing.assert_allclose(res.val_loss, (p[:, None] - np.asarray(val)) ** 2 @ [.5, .5])
    assert np.argmin(res.final_loss) == 1
    assert res.best_index == 0 and res.best["learning_rate"] == halfway
    table = res.table()
    np.testing.assert_allclose(table["best_val_loss"], res.val_loss, rtol=1e-9)
    assert table["best_epoch"].tolist() == [4, 0]


@pytest.mark.parametrize("batch_size", [None, 8])
def test_best_loss_is_measured_on_all_the_data(batch_size):
    with jax.enable_x64(True):
        loss_fn, params, data = _regression()
        res = sweep(loss_fn, params, jaxgd.sgd, data=data, batch_size=batch_size,
                    hyperparams={"learning_rate": [0.05, 0.6]}, max_steps=12)
        full = [float(loss_fn(jax.tree.map(lambda x, i=i: x[i], res.fit.params), data))
                for i in range(2)]
    np.testing.assert_allclose(res.final_loss, full, rtol=1e-9)
    # a batch's loss is not a loss on all of the data: mini-batch runs have only the final
    full_batch = np.minimum(np.nanmin(res.losses, axis=1), full)
    np.testing.assert_allclose(res.best_loss, full if batch_size else full_batch, rtol=1e-9)


def test_a_second_identical_sweep_with_flags_compiles_nothing():
    def run(loss_fn):
        return sweep(loss_fn, jnp.ones(2), jaxgd.sgd, max_steps=5,
                     hyperparams={"learning_rate": [0.1, 0.2], "momentum": [0.9],
                                  "nesterov": [True, False]})

    def loss_fn(x):
        return jnp.sum(x**2)

    before = trace_count()
    first = run(loss_fn)
    compiled = trace_count()
    second = run(loss_fn)
    assert compiled - before >= 2 and trace_count() == compiled
    np.testing.assert_array_equal(second.losses, first.losses)


SCHEDULES = [jaxgd.constant_schedule(0.01 * (i + 1)) for i in range(65)]


@pytest.mark.parametrize(
    "hyperparams, kwargs, count",
    [
        ({"learning_rate": SCHEDULES}, {}, 65),
        ({"learning_rate": SCHEDULES[:3], "nesterov": [True, False]}, {"max_programs": 5}, 6),
    ],
)
def test_too_many_programs_are_refused_before_compiling(hyperparams, kwargs, count):
    before = trace_count()
    with pytest.raises(ValueError, match=rf"needs {count} compiled programs.*"
                                         rf"pass max_programs={count}"):
        sweep(lambda x: jnp.sum(x**2), jnp.ones(2), jaxgd.sgd, hyperparams=hyperparams,
              max_steps=5, **kwargs)
    assert trace_count() == before


@pytest.mark.parametrize(
    "optimizer, hyperparams, error, message",
    [
        ({}, {"learning_rate": [0.1]}, ValueError, "optimizer is an empty dict"),
        ({"adam": 0.1}, {"learning_rate": [0.1]}, TypeError,
         r"optimizer\['adam'\] must be an optimizer factory .* got float"),
        ({"adam": jaxgd.adam(0.1)}, {"learning_rate": [0.1]}, TypeError, "already-built"),
        ({"adam": jaxgd.adam, "sgd": jaxgd.sgd}, {"lr": [0.1]}, ValueError,
         "no optimizer in the dict takes 'lr': 'adam' takes learning_rate"),
        ({"adam": jaxgd.adam, "sgd": jaxgd.sgd}, {"b1": [0.9]}, ValueError,
         r"'adam' needs \['learning_rate'\]"),
        ({"adam": jaxgd.adam, 3: jaxgd.sgd}, {"learning_rate": [0.1]}, TypeError, "strings"),
    ],
)
def test_a_bad_optimizer_dict_is_rejected_before_compiling(optimizer, hyperparams, error,
                                                           message):
    before = trace_count()
    with pytest.raises(error, match=message):
        sweep(lambda x: jnp.sum(x**2), jnp.ones(2), optimizer, hyperparams=hyperparams,
              max_steps=5)
    assert trace_count() == before


def test_plot_draws_the_mean_over_seeds_of_each_group_with_a_band():
    pytest.importorskip("matplotlib")
    problem = problems.linear_regression(num_examples=32, num_features=3)
    lrs = [0.01, 0.03, 0.1]
    res = sweep(problem.loss_fn, problem.init_params, jaxgd.adam, data=problem.data,
                hyperparams={"learning_rate": lrs, "b1": [0.5, 0.9]}, seeds=3,
                batch_size=8, max_steps=10)
    left = res.plot().axes[0]
    assert len(left.get_lines()) == 2 and len(left.collections) == 2
    table = res.table()
    for line, b1 in zip(left.get_lines(), [0.5, 0.9], strict=True):
        assert line.get_label() == f"b1={b1:g}"
        np.testing.assert_allclose(line.get_xdata(), lrs)
        means = [np.mean(res.final_loss[(table["b1"] == b1) & (table["learning_rate"] == lr)])
                 for lr in lrs]
        np.testing.assert_allclose(line.get_ydata(), means, rtol=1e-6)
    assert [t.get_text() for t in left.get_legend().get_texts()] == [
        "b1=0.5", "b1=0.9", "min to max over 3 seeds (line: mean)"]


def test_plot_of_an_optimizer_dict_draws_one_curve_per_optimizer_and_marks_divergence():
    pytest.importorskip("matplotlib")
    res = sweep(lambda x: jnp.sum(x**2), jnp.ones(2), {"adam": jaxgd.adam, "sgd": jaxgd.sgd},
                hyperparams={"learning_rate": [0.01, 0.1, 5.0]}, max_steps=200)
    assert res.diverged.tolist() == [False, False, False, False, False, True]
    left = res.plot().axes[0]
    lines = left.get_lines()
    assert [line.get_label() for line in lines] == ["optimizer=adam", "optimizer=sgd",
                                                    "diverged"]
    assert len(left.collections) == 0  # one seed: no band
    assert len(lines[1].get_xdata()) == 3 and np.isnan(lines[1].get_ydata()[2])
    np.testing.assert_allclose(lines[2].get_xdata(), [5.0])
