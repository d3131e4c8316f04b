"""An MLP on scikit-learn's digits (shipped with scikit-learn, no download), trained by
mini-batch Adam through jaxgd.fit.

The idea shown: gradient descent trains neural networks. The loss is non-convex and the
gradients, through backpropagation, come from mini-batches; an adaptive method (Adam)
gives each weight its own step size, and the test accuracy, not the training loss, says
how well it learned."""

import time

import jax

import jaxgd
from jaxgd import problems

problem = problems.mlp_digits(hidden=(64,))
start = time.perf_counter()
result = jaxgd.fit(problem.loss_fn, problem.init_params, jaxgd.adam(1e-3), problem.data,
                   batch_size=32, num_epochs=20, key=jax.random.PRNGKey(0))
accuracy = float(problem.accuracy_fn(result.params, problem.test_data))
print(f"{int(result.num_steps)} steps in {time.perf_counter() - start:.1f}s (compile "
      f"included); final training loss {float(result.losses[-1]):.4f}; "
      f"test accuracy {accuracy:.3f}")
assert accuracy >= 0.95
