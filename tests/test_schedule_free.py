"""Schedule-free learning: optax.contrib's numbers (updates and evaluation params), under
jit and vmap, in sweep, and fit evaluating and returning the average x."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from catalog_tiers import catalog_params
from conftest import hand_loop, nested_params, random_like

import jaxgd

PAIRS = {
    "schedule_free_sgd": (lambda: jaxgd.schedule_free_sgd(0.1),
                          lambda: optax.contrib.schedule_free_sgd(0.1)),
    "schedule_free_sgd_warmup_decay": (
        lambda: jaxgd.schedule_free_sgd(0.5, warmup_steps=10, b1=0.8, weight_decay=0.01),
        lambda: optax.contrib.schedule_free_sgd(0.5, warmup_steps=10, b1=0.8,
                                                weight_decay=0.01)),
    "schedule_free_adamw": (jaxgd.schedule_free_adamw, optax.contrib.schedule_free_adamw),
    "schedule_free_adamw_warmup_decay": (
        lambda: jaxgd.schedule_free_adamw(0.01, warmup_steps=10, b2=0.99, weight_decay=0.1,
                                          weight_lr_power=1.0),
        lambda: optax.contrib.schedule_free_adamw(0.01, warmup_steps=10, b2=0.99,
                                                  weight_decay=0.1, weight_lr_power=1.0)),
    "schedule_free_around_jaxgd_adam": (
        lambda: jaxgd.schedule_free(jaxgd.adam(0.01, b1=0.0), 0.01, b1=0.95),
        lambda: optax.contrib.schedule_free(optax.adam(0.01, b1=0.0), 0.01, b1=0.95)),
    "schedule_free_around_optax_sgd_schedule": (
        lambda: jaxgd.schedule_free(optax.sgd(optax.linear_schedule(0.0, 0.2, 5)),
                                    optax.linear_schedule(0.0, 0.2, 5)),
        lambda: optax.contrib.schedule_free(optax.sgd(optax.linear_schedule(0.0, 0.2, 5)),
                                            optax.linear_schedule(0.0, 0.2, 5))),
}


def side_by_side(ours, theirs, params, num_steps=100):
    """Both fed the same gradients along optax's trajectory: each one's updates and
    evaluation params after every step."""
    def step(carry, key):
        p, s_ours, s_theirs = carry
        grads = random_like(p, key)
        u_ours, s_ours = ours.update(grads, s_ours, p)
        u_theirs, s_theirs = theirs.update(grads, s_theirs, p)
        p = jax.tree.map(jnp.add, p, u_theirs)
        return (p, s_ours, s_theirs), (
            u_ours, u_theirs, jaxgd.schedule_free_eval_params(s_ours, p),
            optax.contrib.schedule_free_eval_params(s_theirs, p))

    keys = jax.random.split(jax.random.PRNGKey(1), num_steps)
    run = jax.jit(lambda p: jax.lax.scan(step, (p, ours.init(p), theirs.init(p)), keys)[1])
    return [jax.tree.leaves(x) for x in run(params)]


# One of each kind by default (compiling both runs takes a few seconds); all with -m slow.
FAST = {"schedule_free_sgd", "schedule_free_adamw_warmup_decay", "schedule_free_around_jaxgd_adam"}


@pytest.mark.parametrize("name", catalog_params(sorted(PAIRS), default=FAST))
def test_updates_and_eval_params_match_optax_over_100_steps(name):
    make_ours, make_theirs = PAIRS[name]
    u_ours, u_theirs, x_ours, x_theirs = side_by_side(make_ours(), make_theirs(),
                                                      nested_params())
    for a, b in zip(x_ours, x_theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # An update is y_{t+1} - y_t, a difference of params-sized numbers (|y| up to ~3):
    # a float32 ulp of theirs is 2.4e-7, and 1 - b1 rounds differently from a traced b1.
    for a, b in zip(u_ours, u_theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_eval_params_with_exact_b1_are_bitwise_optax():
    """With b1 = 0.75 (1 - b1 exact in float32) nothing rounds differently. Run op by op,
    so that no compiler fuses a multiply-add of one program and not of the other."""
    with jax.disable_jit():
        u_ours, u_theirs, x_ours, x_theirs = side_by_side(
            jaxgd.schedule_free_sgd(0.1, b1=0.75),
            optax.contrib.schedule_free_sgd(0.1, b1=0.75), nested_params(), num_steps=6)
    for a, b in zip(u_ours + x_ours, u_theirs + x_theirs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_constant_learning_rate_makes_x_the_plain_average_of_z():
    """Closed form: with a constant learning rate c_t = 1/t, so x_T = mean(z_1..z_T)."""
    opt = jaxgd.schedule_free(jaxgd.sgd(0.1), learning_rate=0.1, b1=0.9)
    p = jnp.array([1.0, -2.0])
    state, zs = opt.init(p), []
    for t in range(6):
        grads = jnp.array([np.sin(t), np.cos(t)], jnp.float32)
        u, state = opt.update(grads, state, p)
        p = p + u
        zs.append(np.asarray(state.z, np.float64))
    np.testing.assert_allclose(jaxgd.schedule_free_eval_params(state, p), np.mean(zs, 0),
                               rtol=1e-6)
    np.testing.assert_allclose(p, 0.9 * np.mean(zs, 0) + 0.1 * zs[-1], rtol=1e-6)


def test_eval_params_found_in_nested_states():
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    grads = jax.tree.map(lambda p: p + 0.5, params)
    inner = jaxgd.schedule_free(jaxgd.sgd(0.1), 0.1)
    for opt in (jaxgd.chain(jaxgd.clip_by_global_norm(1.0), inner),
                jaxgd.inject_hyperparams(jaxgd.schedule_free)(jaxgd.sgd(0.1), 0.1),
                jaxgd.masked(inner, {"w": True, "b": False})):
        state = opt.init(params)
        u, state = opt.update(grads, state, params)
        y = jaxgd.apply_updates(params, u)
        found = jaxgd.transforms.schedule_free.schedule_free_states(state)
        assert len(found) == 1
        x = jaxgd.schedule_free_eval_params(state, y)
        np.testing.assert_allclose(x["w"], (y["w"] - 0.1 * found[0].z["w"]) / 0.9, rtol=1e-6)
        if isinstance(found[0].z["b"], jaxgd.MaskedNode):  # not trained by it: as it is
            np.testing.assert_array_equal(x["b"], y["b"])


def test_a_state_that_is_not_schedule_free_is_a_clear_error():
    params = {"w": jnp.ones(3)}
    with pytest.raises(ValueError, match="needs the state of a schedule-free optimizer.*"
                                         "holds none"):
        jaxgd.schedule_free_eval_params(jaxgd.adam(0.1).init(params), params)
    state = jaxgd.schedule_free_sgd(0.1).init(params)
    with pytest.raises(ValueError, match="do not match the schedule-free state"):
        jaxgd.schedule_free_eval_params(state, {"v": jnp.ones(3)})


@pytest.mark.parametrize("kwargs, match", [
    ({"b1": 0.0}, "b1 must be a finite number > 0"),
    ({"b1": 1.0}, r"b1 must be in \[0, 1\)"),
    ({"warmup_steps": 0}, "warmup_steps must be a positive int"),
    ({"learning_rate": -1.0}, "learning_rate must be"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jaxgd.schedule_free_sgd(**kwargs)


def test_update_without_params_is_a_clear_error():
    opt = jaxgd.schedule_free_sgd(0.1)
    with pytest.raises(ValueError, match="needs the params"):
        opt.update(jnp.ones(2), opt.init(jnp.ones(2)))


def quadratic(p):
    return 0.5 * jnp.sum(jnp.array([1.0, 3.0]) * p**2)


def test_vmap_over_learning_rate_equals_separate_runs():
    lrs = jnp.array([0.05, 0.1, 0.3])

    def run(lr):
        opt = jaxgd.schedule_free_adamw(lr, warmup_steps=3)
        p = jnp.array([1.0, -1.0])

        def step(carry, _):
            p, s = carry
            u, s = opt.update(jax.grad(quadratic)(p), s, p)
            return (p + u, s), None

        (p, s), _ = jax.lax.scan(step, (p, opt.init(p)), None, length=20)
        return jaxgd.schedule_free_eval_params(s, p)

    together = jax.jit(jax.vmap(run))(lrs)
    for i, lr in enumerate(lrs):
        np.testing.assert_allclose(together[i], jax.jit(run)(lr), rtol=1e-6)
    assert len({float(x) for x in together[:, 0]}) == 3


def regression_data(key, n):
    kx, kn = jax.random.split(jax.random.PRNGKey(key))
    X = jax.random.normal(kx, (n, 3))
    y = X @ jnp.array([1.0, -2.0, 0.5]) + 0.1 * jax.random.normal(kn, (n,))
    return X, y


def mse(params, batch):
    X, y = batch
    return jnp.mean((X @ params["w"] + params["b"] - y) ** 2)


def test_fit_returns_and_validates_at_the_eval_params():
    data, val_data = regression_data(0, 32), regression_data(1, 16)
    start = {"w": jnp.zeros(3), "b": jnp.zeros(())}
    opt = jaxgd.schedule_free_sgd(0.1, warmup_steps=5)
    res = jaxgd.fit(mse, start, opt, data, max_steps=25, val_data=val_data,
                    restore_best=False)
    trajectory, losses, _ = hand_loop(mse, start, opt, data, 25)
    y, state = trajectory[-1]
    x = jaxgd.schedule_free_eval_params(state, y)
    for a, b in zip(jax.tree.leaves((res.params, res.train_params)),
                    jax.tree.leaves((x, y)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(res.losses, losses, rtol=1e-5)  # taken at y
    assert float(mse(res.params, data)) != pytest.approx(float(mse(res.train_params, data)),
                                                         rel=1e-3)
    # full batch: one epoch per step, each validated at that step's x
    for t in (0, 9, 24):
        y_t, s_t = trajectory[t + 1]
        np.testing.assert_allclose(
            res.val_losses[t], mse(jaxgd.schedule_free_eval_params(s_t, y_t), val_data),
            rtol=1e-5)


def test_fit_resumes_from_the_train_params():
    data = regression_data(0, 32)
    start = {"w": jnp.zeros(3), "b": jnp.zeros(())}
    opt = jaxgd.schedule_free_sgd(0.1)
    whole = jaxgd.fit(mse, start, opt, data, max_steps=20)
    half = jaxgd.fit(mse, start, opt, data, max_steps=10)
    rest = jaxgd.fit(mse, half.train_params, opt, data, max_steps=10, opt_state=half.opt_state)
    for a, b in zip(jax.tree.leaves(rest.params), jax.tree.leaves(whole.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("copies", [1, pytest.param(2, marks=pytest.mark.slow)],
                         ids=["small tree", "big tree"])
def test_fit_on_the_flat_path_returns_the_per_leaf_eval_params(copies):
    def loss(params):
        return sum(jnp.sum((leaf - 1.0) ** 2) for leaf in jax.tree.leaves(params))

    start = [nested_params(key=k) for k in range(copies)]
    opt = jaxgd.schedule_free_adamw(0.05)
    from jaxgd.train import flat as flat_path
    assert isinstance(flat_path.plan(loss, start, opt, None, None, False), flat_path.FlatPath)
    flat = jaxgd.fit(loss, start, opt, max_steps=15, ema_decay=0.9)
    per_leaf = jaxgd.fit(loss, start, opt, max_steps=15, flat_params=False, ema_decay=0.9)
    for a, b in zip(jax.tree.leaves((flat.params, flat.train_params, flat.ema_params)),
                    jax.tree.leaves((per_leaf.params, per_leaf.train_params,
                                     per_leaf.ema_params)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert jax.tree.structure(flat.params) == jax.tree.structure(start)


def test_fit_with_optax_schedule_free_returns_its_eval_params():
    start = jnp.array([1.0, -1.0])
    opt = optax.contrib.schedule_free_sgd(0.2)
    res = jaxgd.fit(quadratic, start, opt, max_steps=10)
    trajectory, _, _ = hand_loop(quadratic, start, opt, None, 10)
    y, state = trajectory[-1]
    np.testing.assert_allclose(res.params, optax.contrib.schedule_free_eval_params(state, y),
                               rtol=1e-6)
    np.testing.assert_allclose(res.train_params, y, rtol=1e-6)


def test_fit_with_another_optimizer_has_no_train_params():
    res = jaxgd.fit(quadratic, jnp.ones(2), jaxgd.sgd(0.1), max_steps=3)
    assert res.train_params is None and res.ema_params is None


def test_sweep_scores_each_trial_at_its_eval_params():
    data, val_data = regression_data(0, 32), regression_data(1, 16)
    start = {"w": jnp.zeros(3), "b": jnp.zeros(())}
    lrs = [0.02, 0.1, 0.3]
    res = jaxgd.sweep(mse, start, jaxgd.schedule_free_sgd, hyperparams={"learning_rate": lrs},
                      data=data, val_data=val_data, max_steps=15)
    for i, lr in enumerate(lrs):
        alone = jaxgd.fit(mse, start, jaxgd.schedule_free_sgd(lr), data, max_steps=15,
                          val_data=val_data, restore_best=True)
        trial = jax.tree.map(lambda x, i=i: x[i], res.fit.params)
        for a, b in zip(jax.tree.leaves(trial), jax.tree.leaves(alone.params), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(res.final_loss[i], mse(alone.params, data), rtol=1e-5)
        np.testing.assert_allclose(res.val_loss[i], mse(alone.params, val_data), rtol=1e-5)
    assert res.fit.train_params is not None
