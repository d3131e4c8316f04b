"""Quick start: a plain JAX training loop with jaxgd.adam (linear regression).

The idea shown: the gradient-descent loop itself. Each step computes the gradient of the
loss, turns it into an update, and moves the parameters by it; the learning rate, the size
of the move, can be changed between steps (here halved mid-run) without recompiling."""

import jax
import jax.numpy as jnp

import jaxgd

X = jax.random.normal(jax.random.PRNGKey(0), (256, 3))
true_w = jnp.array([2.0, -1.0, 0.5])
y = X @ true_w + 0.1


def loss_fn(params, X, y):
    return jnp.mean((X @ params["w"] + params["b"] - y) ** 2)


params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
optimizer = jaxgd.adam(learning_rate=0.05)
opt_state = optimizer.init(params)


@jax.jit
def step(params, opt_state):
    loss, grads = jax.value_and_grad(loss_fn)(params, X, y)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return jaxgd.apply_updates(params, updates), opt_state, loss


for i in range(500):
    params, opt_state, loss = step(params, opt_state)
    if i == 250:
        # Halve the learning rate mid-run: the jitted step is not recompiled.
        opt_state = jaxgd.set_hyperparams(opt_state, learning_rate=0.025)

print(f"loss {float(loss):.2e}  w {params['w']}  b {float(params['b']):.4f}")
assert float(loss) < 1e-6
