"""jaxgd inside flax's TrainState: a small MLP regression.

The idea shown: full-batch gradient descent on a non-convex loss, with the step bounded by
clipping the gradient's global norm first. A steep region of the loss can give one huge
gradient; clipping caps the step there without shrinking the learning rate everywhere."""

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax.training.train_state import TrainState

import jaxgd


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.tanh(nn.Dense(32)(x))
        return nn.Dense(1)(x)[:, 0]


x = jnp.linspace(-2, 2, 128)[:, None]
y = jnp.sin(2 * x[:, 0])
model = MLP()
state = TrainState.create(
    apply_fn=model.apply,
    params=model.init(jax.random.PRNGKey(0), x)["params"],
    tx=jaxgd.chain(jaxgd.clip_by_global_norm(1.0), jaxgd.adam(1e-2)),
)


@jax.jit
def train_step(state):
    def loss_fn(params):
        return jnp.mean((state.apply_fn({"params": params}, x) - y) ** 2)

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    return state.apply_gradients(grads=grads), loss


for _ in range(2000):
    state, loss = train_step(state)
print(f"final mse {float(loss):.2e} after {int(state.step)} steps")
assert float(loss) < 1e-2
