"""Logistic regression by mini-batch gradient descent with early stopping on a held-out
set.

The idea shown: when to stop. The training loss keeps falling, but what matters is the
loss on data the model has not seen; training stops once the validation loss has not
improved for a few epochs (``patience``) and returns the best parameters seen."""

import jax
import jax.numpy as jnp

import jaxgd
from jaxgd import problems

problem = problems.logistic_regression(num_examples=2000, num_features=20, label_noise=0.02)
X, y = problem.data
train, val = (X[:1600], y[:1600]), (X[1600:], y[1600:])

result = jaxgd.fit(problem.loss_fn, problem.init_params, jaxgd.momentum(0.1), train,
                   batch_size=64, num_epochs=100, val_data=val, patience=5,
                   key=jax.random.PRNGKey(0))
accuracy = problem.accuracy_fn(result.params, val)
print(f"stopped: {result.stop_reason} after {int(result.num_steps)} steps "
      f"(best epoch {int(result.best_epoch)})")
print(f"validation loss {float(result.best_val_loss):.4f}, accuracy {float(accuracy):.3f}")
assert float(accuracy) > 0.9 and jnp.isfinite(result.best_val_loss)
