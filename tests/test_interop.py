"""jaxgd and optax transformations mix both ways, and jaxgd drops into flax's TrainState."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
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
