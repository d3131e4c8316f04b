"""jaxgd and optax transformations mix both ways (extra arguments included), jaxgd returns
optax's dtypes for mixed precision, and jaxgd drops into flax's TrainState."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import updates_side_by_side

import jaxgd


def test_optax_chain_of_jaxgd_adam_block_equals_optax_adam(params):
    lr = 3e-3
    mixed = optax.chain(jaxgd.scale_by_adam(), optax.scale(-lr))
    ours, theirs = updates_side_by_side(mixed, optax.adam(lr), params)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_jaxgd_chain_accepts_optax_clip(params):
    lr = 0.1
    mixed = jaxgd.chain(optax.clip(1.0), jaxgd.sgd(lr))
    reference = optax.chain(optax.clip(1.0), optax.sgd(lr))
    ours, theirs = updates_side_by_side(mixed, reference, params, num_steps=10)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert max(float(jnp.max(jnp.abs(a))) for a in ours) <= lr + 1e-7


def test_jaxgd_chain_passes_extra_args_only_to_links_that_take_them(params):
    seen = {}

    def update(updates, state, params=None, **extra_args):
        seen.update(extra_args)
        return updates, state

    probe = jaxgd.GradientTransformation(lambda p: (), update)
    opt = jaxgd.chain(optax.scale(2.0), probe)
    state = opt.init(params)
    updates, _ = opt.update(params, state, params, value=jnp.float32(1.5))
    assert float(seen["value"]) == 1.5
    np.testing.assert_allclose(jax.tree.leaves(updates)[0], 2 * jax.tree.leaves(params)[0])


def test_flax_trainstate_trains_with_jaxgd_adam():
    from flax import linen as nn
    from flax.training.train_state import TrainState

    x = jax.random.normal(jax.random.PRNGKey(0), (64, 3))
    y = x @ jnp.array([1.0, -2.0, 0.5]) + 0.3
    model = nn.Dense(1)
    variables = model.init(jax.random.PRNGKey(1), x)
    state = TrainState.create(apply_fn=model.apply, params=variables["params"],
                              tx=jaxgd.adam(5e-2))

    def loss_fn(p):
        return jnp.mean((state.apply_fn({"params": p}, x)[:, 0] - y) ** 2)

    @jax.jit
    def train_step(state):
        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        return state.apply_gradients(grads=grads), loss

    first = None
    for _ in range(300):
        state, loss = train_step(state)
        first = loss if first is None else first
    assert float(loss) < 1e-3 * float(first)
    np.testing.assert_allclose(state.params["kernel"][:, 0], [1.0, -2.0, 0.5], atol=1e-2)


def quadratic(p):
    return jnp.sum(jnp.arange(1.0, 4.0) * (p["w"] - 1.0) ** 2) + (p["b"] + 1.0) ** 2


# jaxgd transformations that read value, grad or value_fn from the extra arguments.
READERS_OF_EXTRA_ARGS = {
    "polyak_sgd": lambda: jaxgd.polyak_sgd(),
    "lbfgs": lambda: jaxgd.lbfgs(),
    "sophia": lambda: jaxgd.sophia(0.1),
    "backtracking_linesearch": lambda: jaxgd.chain(
        jaxgd.sgd(1.0), jaxgd.scale_by_backtracking_linesearch(max_backtracking_steps=10)),
}
OPTAX_WRAPPERS = {
    "chain": optax.chain,
    "chain_after_an_optax_link": lambda t: optax.chain(optax.identity(), t),
    "multi_steps": lambda t: optax.MultiSteps(t, every_k_schedule=1).gradient_transformation(),
    "masked": lambda t: optax.masked(t, {"w": True, "b": True}),
}


def run_with_extra_args(opt, num_steps=3):
    params = {"w": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array(0.3)}
    state, all_updates = opt.init(params), []
    for _ in range(num_steps):
        value, grad = jax.value_and_grad(quadratic)(params)
        updates, state = opt.update(grad, state, params, value=value, grad=grad,
                                    value_fn=quadratic)
        params = optax.apply_updates(params, updates)
        all_updates.append(updates)
    return all_updates


def test_a_jaxgd_transformation_is_an_optax_extra_args_transformation():
    opt = jaxgd.adam(1e-3)
    assert isinstance(opt, optax.GradientTransformationExtraArgs)
    assert optax.with_extra_args_support(opt) is opt
    assert isinstance(opt, jaxgd.GradientTransformation) and opt._fields == ("init", "update")


# Every wrapper around one reader, and every reader in one wrapper, by default; each
# pair with ``-m slow`` (the steps run eagerly: lbfgs and sophia take seconds).
@pytest.mark.parametrize("name, wrapper", [
    pytest.param(name, wrapper, id=f"{name}-{wrapper}",
                 marks=() if name == "polyak_sgd" or wrapper == "chain" else pytest.mark.slow)
    for name in sorted(READERS_OF_EXTRA_ARGS) for wrapper in sorted(OPTAX_WRAPPERS)])
def test_optax_wrappers_pass_extra_args_to_jaxgd(name, wrapper):
    alone = run_with_extra_args(READERS_OF_EXTRA_ARGS[name]())
    wrapped = run_with_extra_args(OPTAX_WRAPPERS[wrapper](READERS_OF_EXTRA_ARGS[name]()))
    for a, b in zip(jax.tree.leaves(alone), jax.tree.leaves(wrapped), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_without_optax_jaxgd_neither_imports_nor_needs_it():
    code = """
import sys
sys.modules["optax"] = None  # import optax now raises ImportError
import jax, jax.numpy as jnp, jaxgd
assert "optax" not in [c.__module__.split(".")[0] for c in jaxgd.GradientTransformation.__mro__]
params = {"w": jnp.ones(3), "b": jnp.ones(2)}
opt = jaxgd.chain(jaxgd.masked(jaxgd.add_decayed_weights(0.1), {"w": True, "b": False}),
                  jaxgd.polyak_sgd())
state = opt.init(params)
updates, state = opt.update(params, state, params, value=jnp.float32(2.0))
print(jaxgd.apply_updates(params, updates)["w"][0])
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


# optax aliases of the same name, each given only its learning rate.
SAME_NAME_ALIASES = [
    "adabelief", "adadelta", "adafactor", "adagrad", "adam", "adamax", "adamaxw", "adamw",
    "amsgrad", "lamb", "lars", "lion", "nadam", "nadamw", "noisy_sgd", "novograd",
    "optimistic_gradient_descent", "radam", "rmsprop", "rprop", "sgd", "sign_sgd", "sm3",
    "yogi", "fromage",
]


@pytest.mark.filterwarnings("ignore:Specifying a key")  # optax.noisy_sgd without a key
@pytest.mark.parametrize("name", SAME_NAME_ALIASES)
def test_bfloat16_grads_on_float32_params_give_optax_update_dtypes(name):
    params = {"w": jnp.ones((3, 4)), "b": jnp.full(4, 0.5, jnp.float32)}
    grads = jax.tree.map(lambda p: (0.1 * p + 0.01).astype(jnp.bfloat16), params)
    dtypes = []
    for lib in (jaxgd, optax):  # traced only: the dtypes a compiled step would give
        opt = getattr(lib, name)(0.01)
        updates, _ = jax.eval_shape(lambda g, p, opt=opt: opt.update(g, opt.init(p), p),
                                    grads, params)
        dtypes.append([x.dtype for x in jax.tree.leaves(updates)])
    assert dtypes[0] == dtypes[1]


def test_bfloat16_params_stay_bfloat16_under_float32_hyperparameters():
    params = {"w": jnp.ones((3, 4), jnp.bfloat16)}
    opt = jaxgd.adam(jnp.float32(0.01))
    updates, state = opt.update(params, opt.init(params), params)
    assert jax.tree.leaves(updates)[0].dtype == jnp.bfloat16
    assert jaxgd.apply_updates(params, updates)["w"].dtype == jnp.bfloat16
