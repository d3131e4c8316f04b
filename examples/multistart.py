"""Himmelblau's function from 256 random starts, all in one compiled program: which of
its four minima does each start reach?

The idea shown: local minima. Gradient descent only goes downhill from where it starts,
so on a function with several minima the start decides which one it finds; restarting
from many points is the simplest way to see (or escape) them."""

import jax
import numpy as np

import jaxgd
from jaxgd import problems

problem = problems.himmelblau()
result = jaxgd.sweep(problem.loss_fn, None, jaxgd.adam, hyperparams={"learning_rate": [0.05]},
                     seeds=256, max_steps=3000, grad_tol=1e-6,
                     init_fn=lambda key: jax.random.uniform(key, (2,), minval=-6, maxval=6))
ends = np.asarray(result.fit.params)
minima = np.asarray(problems.HIMMELBLAU_MINIMA)
distance = np.linalg.norm(ends[:, None, :] - minima[None], axis=-1)
reached = np.argmin(distance, axis=1)
for i, (x, y) in enumerate(minima):
    print(f"minimum ({x:+.3f}, {y:+.3f}): {np.sum(reached == i):>3} starts")
print(f"all within 1e-3 of a minimum: {bool(np.all(distance.min(axis=1) < 1e-3))}")
assert np.all(distance.min(axis=1) < 1e-3) and len(set(reached)) == 4
