"""Hyperparameters live in the state: vmap over them, and change them without retracing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd

# A separable quadratic f(x) = ½ Σ d_i x_i².
CURVATURE = np.array([0.5, 1.0, 2.0, 4.0])
X0 = jnp.array([1.0, -1.0, 0.5, 2.0])


def loss(x):
    return 0.5 * jnp.sum(jnp.asarray(CURVATURE, x.dtype) * x**2)


def train(optimizer, num_steps=50, x0=X0):
    def body(_, carry):
        x, state = carry
        updates, state = optimizer.update(jax.grad(loss)(x), state, x)
        return jaxgd.apply_updates(x, updates), state

    return jax.lax.fori_loop(0, num_steps, body, (x0, optimizer.init(x0)))[0]


SWEEPABLE = {
    "sgd": lambda lr: jaxgd.sgd(lr),
    "momentum": lambda lr: jaxgd.momentum(lr, 0.9),
    "rmsprop": lambda lr: jaxgd.rmsprop(lr),
    "adam": lambda lr: jaxgd.adam(lr),
}


@pytest.mark.parametrize("name", sorted(SWEEPABLE))
def test_vmap_over_16_learning_rates_equals_16_separate_runs(name):
    """Each lane of the vmapped loop is its own run.

    Run in float64: on CPUs with FMA, XLA contracts a*b+c differently in vectorised and
    scalar loops, so float32 lanes drift from single runs by ~1e-7 per step even in plain
    JAX code (bit-identical with ``--xla_cpu_max_isa=AVX``); float64 keeps that noise at
    ~1e-16 and makes rel 1e-6 a sharp test of the sweep itself.
    """
    make = SWEEPABLE[name]
    with jax.enable_x64(True):
        x0 = jnp.asarray(X0, jnp.float64)
        lrs = jnp.logspace(-3, -0.5, 16, dtype=jnp.float64)
        swept = jax.jit(jax.vmap(lambda lr: train(make(lr), x0=x0)))(lrs)
        single = jax.jit(lambda lr: train(make(lr), x0=x0))
        assert swept.dtype == jnp.float64
        for i, lr in enumerate(lrs):
            np.testing.assert_allclose(swept[i], single(lr), rtol=1e-6, atol=1e-30)
            np.testing.assert_allclose(swept[i], train(make(float(lr)), x0=x0), rtol=1e-6)
    assert not np.allclose(swept[0], swept[-1])


def test_vmap_over_b1_and_momentum_works():
    b1s = jnp.array([0.0, 0.5, 0.9, 0.99])
    out = jax.vmap(lambda b1: train(jaxgd.adam(0.1, b1=b1)))(b1s)
    for i, b1 in enumerate(b1s):
        np.testing.assert_allclose(out[i], train(jaxgd.adam(0.1, b1=float(b1))), rtol=1e-4)
    momenta = jax.vmap(lambda m: train(jaxgd.sgd(0.1, momentum=m)))(b1s[:3])
    assert len({float(jnp.sum(m)) for m in momenta}) == 3


def test_changing_learning_rate_between_jitted_calls_does_not_retrace():
    traces = []
    opt = jaxgd.adam(0.1)

    @jax.jit
    def step(x, state):
        traces.append(1)
        updates, state = opt.update(jax.grad(loss)(x), state, x)
        return jaxgd.apply_updates(x, updates), state

    x, state = step(X0, opt.init(X0))
    for lr in (0.05, 0.01, 1e-4):
        state = jaxgd.set_hyperparams(state, learning_rate=lr)
        before = x
        x, state = step(x, state)
        # Adam's step is bounded by the learning rate: the new value really is in use.
        assert float(jnp.max(jnp.abs(x - before))) <= lr * 1.001
    state = jaxgd.set_hyperparams(state, b1=0.5, b2=0.99)
    step(x, state)
    assert len(traces) == 1
    assert float(jaxgd.get_hyperparams(state)["b1"]) == 0.5


def test_set_learning_rate_gives_the_new_plain_gd_step_exactly():
    opt = jaxgd.sgd(0.1)
    state = jaxgd.set_hyperparams(opt.init(X0), learning_rate=0.25)
    updates, _ = jax.jit(opt.update)(X0, state)
    np.testing.assert_allclose(updates, -0.25 * X0, rtol=1e-7)


def test_set_hyperparams_reaches_into_nested_states():
    opt = jaxgd.chain(jaxgd.clip_by_global_norm(1.0), jaxgd.sgd(0.1, momentum=0.9))
    state = jaxgd.set_hyperparams(opt.init(X0), momentum=0.5)
    assert float(jaxgd.get_hyperparams(state)["momentum"]) == 0.5


def test_set_hyperparams_rejects_unknown_names_and_bad_values():
    state = jaxgd.adam(1e-3).init(X0)
    with pytest.raises(ValueError, match=r"unknown hyperparameter.*'lr'.*learning_rate"):
        jaxgd.set_hyperparams(state, lr=0.1)
    with pytest.raises(ValueError, match="learning_rate must be a finite number >= 0"):
        jaxgd.set_hyperparams(state, learning_rate=-1.0)
    with pytest.raises(ValueError, match=r"b2 must be in \[0, 1\)"):
        jaxgd.set_hyperparams(state, b2=1.0)


def test_low_precision_leaves_keep_their_dtype():
    params = {"w": jnp.ones(3, jnp.bfloat16), "b": jnp.ones(2, jnp.float16)}
    opt = jaxgd.adam(1e-2)
    state = opt.init(params)
    updates, new_state = opt.update(params, state, params)
    assert jax.tree.map(lambda u: u.dtype, updates) == jax.tree.map(lambda p: p.dtype, params)
    inner = new_state.inner_state[0]
    assert inner.mu["w"].dtype == jnp.bfloat16 and inner.nu["b"].dtype == jnp.float16


@pytest.mark.parametrize("alias", [jaxgd.adadelta, jaxgd.lars, jaxgd.lamb, jaxgd.adamw])
def test_a_zero_weight_decay_is_no_block_and_a_nonzero_one_is_settable(alias):
    params = {"w": jnp.ones(3), "b": jnp.zeros(2)}
    off = alias(0.1, weight_decay=0.0)
    assert "weight_decay" not in jaxgd.get_hyperparams(off.init(params))
    on = alias(0.1, weight_decay=1e-2)
    state = jaxgd.set_hyperparams(on.init(params), weight_decay=0.5)
    assert float(jaxgd.get_hyperparams(state)["weight_decay"]) == 0.5


@pytest.mark.parametrize("alias", [jaxgd.adadelta, jaxgd.adamw])
def test_a_zero_weight_decay_reads_no_params(alias):
    # (lamb and lars read the params anyway, for their trust ratio)
    params = {"w": jnp.ones(3), "b": jnp.zeros(2)}
    off = alias(0.1, weight_decay=0.0)
    state = off.init(params)
    grads = {"w": jnp.full(3, 0.5), "b": jnp.full(2, 0.5)}
    u1, _ = off.update(grads, state, params)
    u2, _ = off.update(grads, state, jax.tree.map(lambda p: p + 3.0, params))
    for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", sorted(jaxgd.OPTIMIZERS))
def test_state_can_be_donated_to_a_jitted_step(name):
    """No two state fields may share a buffer, or donating the state fails."""
    factory = jaxgd.OPTIMIZERS[name]
    if name in ("lbfgs", "newton", "polyak_sgd", "sophia"):
        pytest.skip("needs value / value_fn extra arguments; covered in their own tests")
    opt = factory() if name in ("adadelta", "adafactor") else factory(0.01)
    params = {"w": jnp.ones(3), "b": jnp.ones(2)}
    state = opt.init(params)
    step = jax.jit(lambda p, s: opt.update(p, s, p), donate_argnums=1)
    step(params, state)


# --- state.hyperparams is optax's plain dict ------------------------------------------

PARAMS = {"w": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array([0.25])}
GRADS = {"w": jnp.array([0.3, -0.1, 0.2]), "b": jnp.array([-0.4])}


def test_state_hyperparams_reads_like_a_dict():
    state = jaxgd.adam(1e-3, b1=0.8).init(PARAMS)
    hp = state.hyperparams
    assert type(hp) is dict
    assert set(hp.keys()) == {"learning_rate", "b1", "b2", "eps", "eps_root"}
    assert "b1" in hp and "momentum" not in hp
    assert float(hp["b1"]) == pytest.approx(0.8)
    assert hp == jaxgd.adam(1e-3, b1=0.8).init(PARAMS).hyperparams
    doubled = jax.tree.map(lambda v: 2 * v, hp)
    assert float(doubled["learning_rate"]) == pytest.approx(2e-3)


def test_assigning_an_entry_changes_the_next_step_as_in_optax():
    optax = pytest.importorskip("optax")
    ours, theirs = jaxgd.adam(1e-2), optax.inject_hyperparams(optax.adam)(1e-2)
    states = [ours.init(PARAMS), theirs.init(PARAMS)]
    updates = [None, None]
    for lr in (1e-2, 3e-4, 0.1):
        for i, (opt, state) in enumerate(zip((ours, theirs), states, strict=True)):
            state.hyperparams["learning_rate"] = lr
            updates[i], states[i] = jax.jit(opt.update)(GRADS, state, PARAMS)
        for a, b in zip(jax.tree.leaves(updates[0]), jax.tree.leaves(updates[1]), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6)
        assert float(states[0].hyperparams["learning_rate"]) == pytest.approx(lr)
    assert states[0].hyperparams["learning_rate"].dtype == jnp.float32


def test_repr_works_on_abstract_states():
    opt = jaxgd.adam(1e-3)
    abstract = jax.eval_shape(opt.init, PARAMS)
    assert "learning_rate" in repr(abstract)
    shapes = jax.tree.map(jnp.shape, opt.init(PARAMS))
    assert "'b1': ()" in repr(shapes)


# --- inject_hyperparams as in optax ----------------------------------------------------

def _schedule(step):
    return 0.1 * 0.5 ** (step / 3)


def test_inject_hyperparams_evaluates_schedules_at_the_count_as_optax():
    optax = pytest.importorskip("optax")
    ours = jaxgd.inject_hyperparams(jaxgd.sgd)(learning_rate=_schedule, momentum=0.9)
    theirs = optax.inject_hyperparams(optax.sgd)(learning_rate=_schedule, momentum=0.9)
    s_ours, s_theirs = ours.init(PARAMS), theirs.init(PARAMS)
    assert float(s_ours.hyperparams["learning_rate"]) == pytest.approx(_schedule(0))
    for step in range(8):
        u_ours, s_ours = ours.update(GRADS, s_ours, PARAMS)
        u_theirs, s_theirs = theirs.update(GRADS, s_theirs, PARAMS)
        for a, b in zip(jax.tree.leaves(u_ours), jax.tree.leaves(u_theirs), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6)
        # the value this step used, as optax shows it
        np.testing.assert_allclose(s_ours.hyperparams["learning_rate"],
                                   s_theirs.hyperparams["learning_rate"], rtol=1e-6)
        assert float(s_ours.hyperparams["learning_rate"]) == pytest.approx(_schedule(step))
        assert int(s_ours.count) == int(s_theirs.count) == step + 1


@pytest.mark.parametrize("name", ["adam", "sgd", "lion"])
def test_an_alias_with_a_schedule_matches_optax_and_shows_its_value(name):
    optax = pytest.importorskip("optax")
    ours, theirs = getattr(jaxgd, name)(_schedule), getattr(optax, name)(_schedule)
    s_ours, s_theirs = ours.init(PARAMS), theirs.init(PARAMS)
    step = jax.jit(ours.update)
    for k in range(6):
        u_ours, s_ours = step(GRADS, s_ours, PARAMS)
        u_theirs, s_theirs = theirs.update(GRADS, s_theirs, PARAMS)
        for a, b in zip(jax.tree.leaves(u_ours), jax.tree.leaves(u_theirs), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
        assert float(jaxgd.get_hyperparams(s_ours)["learning_rate"]) == pytest.approx(
            _schedule(k))


def test_hyperparam_dtype_sets_the_dtype_of_float_values():
    opt = jaxgd.inject_hyperparams(jaxgd.sgd, hyperparam_dtype=jnp.bfloat16)(0.1, 0.9)
    state = opt.init(PARAMS)
    assert {v.dtype for v in state.hyperparams.values()} == {jnp.dtype(jnp.bfloat16)}
    updates, state = opt.update(GRADS, state, PARAMS)
    assert state.hyperparams["momentum"].dtype == jnp.bfloat16
    assert jax.tree.map(lambda u: u.dtype, updates) == jax.tree.map(lambda p: p.dtype, PARAMS)


def test_integer_arguments_stay_integers():
    def every_other(learning_rate, period=2):
        del period  # an integer a factory may read as an int
        return jaxgd.sgd(learning_rate)

    state = jaxgd.inject_hyperparams(every_other)(1, period=3).init(PARAMS)
    assert state.hyperparams["period"].dtype == jnp.int32
    assert state.hyperparams["learning_rate"].dtype == jnp.float32  # a real-valued name
    # an alias that keeps its seed static, wrapped again: one level, the seed still static
    noisy = jaxgd.inject_hyperparams(jaxgd.noisy_sgd)(0.1, key=0)
    state = noisy.init(PARAMS)
    assert not isinstance(state.inner_state, jaxgd.InjectHyperparamsState)
    expected, _ = jaxgd.noisy_sgd(0.1, key=0).update(GRADS, jaxgd.noisy_sgd(0.1, key=0).init(
        PARAMS), PARAMS)
    got, _ = noisy.update(GRADS, state, PARAMS)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        np.testing.assert_array_equal(a, b)


def test_wrapping_an_alias_again_keeps_one_settable_level():
    opt = jaxgd.inject_hyperparams(jaxgd.adam)(0.1)
    state = jaxgd.set_hyperparams(opt.init(PARAMS), learning_rate=1e-3)
    updates, _ = opt.update(GRADS, state, PARAMS)
    # Adam's first step is lr * sign(g)
    np.testing.assert_allclose(updates["w"], -1e-3 * np.sign(GRADS["w"]), rtol=1e-4)


def test_static_args_must_name_arguments():
    with pytest.raises(ValueError, match=r"static_args \['nope'\].*learning_rate"):
        jaxgd.inject_hyperparams(jaxgd.sgd, static_args=("nope",))
    opt = jaxgd.inject_hyperparams(jaxgd.sgd, static_args="momentum")(0.1, momentum=0.9)
    assert set(opt.init(PARAMS).hyperparams) == {"learning_rate"}


# --- nested optimizers are addressed by path -------------------------------------------

LABELS = {"w": "a", "b": "b"}


def _partitioned():
    return jaxgd.partition({"a": jaxgd.adam(0.1), "b": jaxgd.sgd(0.2)}, LABELS)


def test_get_hyperparams_keeps_partitioned_optimizers_apart():
    found = jaxgd.get_hyperparams(_partitioned().init(PARAMS))
    assert set(found) == {"a", "b"}
    assert set(found["a"]) == {"learning_rate", "b1", "b2", "eps", "eps_root"}
    assert set(found["b"]) == {"learning_rate"}
    assert float(found["a"]["learning_rate"]) == pytest.approx(0.1)
    assert float(found["b"]["learning_rate"]) == pytest.approx(0.2)


@pytest.mark.parametrize("values", [{"b": {"learning_rate": 0.5}}, {"b/learning_rate": 0.5}])
def test_set_hyperparams_by_path_changes_only_that_optimizer(values):
    opt = _partitioned()
    state = opt.init(PARAMS)
    before, _ = opt.update(GRADS, state, PARAMS)
    state = jaxgd.set_hyperparams(state, values)
    after, _ = opt.update(GRADS, state, PARAMS)
    np.testing.assert_array_equal(after["w"], before["w"])
    np.testing.assert_allclose(after["b"], -0.5 * GRADS["b"], rtol=1e-6)
    assert float(jaxgd.get_hyperparams(state)["a"]["learning_rate"]) == pytest.approx(0.1)


def test_a_chain_of_two_aliases_is_addressed_by_position():
    opt = jaxgd.chain(jaxgd.sgd(1.0, momentum=0.5), jaxgd.sgd(0.1))
    state = jaxgd.set_hyperparams(opt.init(PARAMS), {"1": {"learning_rate": 0.01}})
    found = jaxgd.get_hyperparams(state)
    assert float(found["0"]["learning_rate"]) == 1.0
    assert float(found["1"]["learning_rate"]) == pytest.approx(0.01)
    updates, _ = opt.update(GRADS, state, PARAMS)
    np.testing.assert_allclose(updates["w"], 0.01 * GRADS["w"], rtol=1e-6)


def test_nested_names_without_a_path_or_with_a_wrong_one_are_errors():
    state = _partitioned().init(PARAMS)
    with pytest.raises(ValueError, match=r"need a path.*at \['a', 'b'\].*'a/learning_rate'"):
        jaxgd.set_hyperparams(state, learning_rate=0.1)
    with pytest.raises(ValueError, match=r"no optimizer at path\(s\) \['c'\].*\['a', 'b'\]"):
        jaxgd.set_hyperparams(state, {"c": {"learning_rate": 0.1}})
    with pytest.raises(ValueError, match=r"unknown.*'a/lr'.*'a/learning_rate'"):
        jaxgd.set_hyperparams(state, {"a/lr": 0.1})
    with pytest.raises(ValueError, match="learning_rate must be a finite number >= 0"):
        jaxgd.set_hyperparams(state, {"a/learning_rate": -1.0})


def test_masks_and_dtypes_are_callables_that_stay_fixed():
    def decayed(learning_rate, weight_decay_mask=None, accumulator_dtype=None):
        del accumulator_dtype
        return jaxgd.adamw(learning_rate, weight_decay=0.1, mask=weight_decay_mask)

    opt = jaxgd.inject_hyperparams(decayed)(
        0.1, weight_decay_mask=lambda p: jax.tree.map(lambda x: x.ndim > 0, p),
        accumulator_dtype=jnp.bfloat16)
    state = opt.init(PARAMS)
    assert set(state.hyperparams) == {"learning_rate"} and state.count is None
    opt.update(GRADS, state, PARAMS)


def test_an_alias_built_by_an_injected_factory_follows_the_outer_values():
    def clipped_adam(learning_rate):
        return jaxgd.chain(jaxgd.clip_by_global_norm(10.0), jaxgd.adam(learning_rate))

    opt = jaxgd.inject_hyperparams(clipped_adam)(0.1)
    state = jaxgd.set_hyperparams(opt.init(PARAMS), learning_rate=1e-3)
    assert jaxgd.get_hyperparams(state) == {"learning_rate": state.hyperparams["learning_rate"]}
    for update in (opt.update, jax.jit(opt.update)):
        updates, _ = update(GRADS, state, PARAMS)
        # Adam's first step is lr * sign(g)
        np.testing.assert_allclose(updates["w"], -1e-3 * np.sign(GRADS["w"]), rtol=1e-4)
