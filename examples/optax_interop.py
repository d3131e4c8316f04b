"""Chaining jaxgd and optax pieces, both ways.

The idea shown: an optimizer is a chain of small transformations of the gradient
(rescale by moment estimates, clip, multiply by minus the learning rate) ending in the
gradient-descent step ``p <- p + update``; pieces from either library fit in one chain."""

import jax
import jax.numpy as jnp
import optax

import jaxgd

params = {"w": jnp.array([1.0, -2.0, 3.0])}
grads = {"w": jnp.array([0.3, -4.0, 0.01])}

# optax on the outside, a jaxgd building block inside: this *is* Adam.
mixed = optax.chain(jaxgd.scale_by_adam(), optax.scale(-1e-3))
reference = optax.adam(1e-3)
u_mixed, _ = mixed.update(grads, mixed.init(params), params)
u_ref, _ = reference.update(grads, reference.init(params), params)
print("optax.chain(jaxgd.scale_by_adam(), optax.scale(-lr)):", u_mixed["w"])
print("optax.adam(lr):                                       ", u_ref["w"])
assert jnp.allclose(u_mixed["w"], u_ref["w"], rtol=1e-6)

# jaxgd on the outside, an optax transformation inside: clip, then gradient descent.
clipped_sgd = jaxgd.chain(optax.clip(1.0), jaxgd.sgd(0.1))
updates, _ = clipped_sgd.update(grads, clipped_sgd.init(params), params)
print("jaxgd.chain(optax.clip(1.0), jaxgd.sgd(0.1)):", updates["w"])
assert float(jnp.max(jnp.abs(updates["w"]))) <= 0.1 + 1e-7

# jaxgd's schedules and optax's are interchangeable learning rates.
opt = jaxgd.sgd(optax.warmup_cosine_decay_schedule(0.0, 0.1, 10, 100))
state = opt.init(params)
for _ in range(5):
    updates, state = jax.jit(opt.update)(grads, state, params)
print("step 5 of a warmup schedule from optax:", updates["w"])
