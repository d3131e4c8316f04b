"""Batch vs stochastic vs mini-batch gradient descent on linear regression, with the same
budget of per-example gradient evaluations (50 passes over the data).

The idea shown: how many examples each step's gradient is averaged over. Batch descent
takes one exact step per pass; stochastic descent takes one noisy step per example and
needs a small learning rate to tame the noise; mini-batches sit between, many steps per
pass with a gradient clean enough for a larger rate. All three reach the least-squares
minimum on a convex problem."""

import time

import jax
import numpy as np

import jaxgd
from jaxgd import problems

problem = problems.linear_regression(num_examples=512, num_features=8, noise=0.1)
n = len(problem.data[0])
optimum = np.concatenate([problem.optimum["w"], [problem.optimum["b"]]])
epochs = 50

print(f"{'regime':<12} {'batch':>5} {'lr':>6} {'steps':>6} {'final mse':>10} "
      f"{'|θ - θ*|':>9} {'time':>8}")
for regime, batch_size, lr in [("batch", None, 0.3), ("mini-batch", 32, 0.05),
                               ("stochastic", 1, 0.005)]:
    steps = epochs * (n // (batch_size or n))
    run = lambda bs=batch_size, lr=lr, steps=steps: jaxgd.fit(  # noqa: E731
        problem.loss_fn, problem.init_params, jaxgd.sgd(lr), problem.data,
        batch_size=bs, max_steps=steps, key=jax.random.PRNGKey(0))
    jax.block_until_ready(run())
    start = time.perf_counter()
    result = jax.block_until_ready(run())
    seconds = time.perf_counter() - start
    theta = np.concatenate([result.params["w"], [result.params["b"]]])
    final = float(problem.loss_fn(result.params, problem.data))
    print(f"{regime:<12} {batch_size or n:>5} {lr:>6g} {int(result.num_steps):>6} "
          f"{final:>10.5f} {np.linalg.norm(theta - optimum):>9.2e} {seconds * 1e3:>6.1f}ms")
    assert final < 1.05 * problem.min_value + 1e-3
print(f"least-squares minimum mse: {problem.min_value:.5f}")
