"""64 learning rates for Adam and for SGD on logistic regression, each sweep one compiled
program; prints the best and writes the U-curve plot (needs matplotlib).

The idea shown: choosing the learning rate. Too small and descent crawls, too large and
it overshoots the valley and diverges; the final loss against the rate is a U curve,
whose bottom is the rate to pick, and whose right edge is where steps start to
overshoot."""

import sys

import numpy as np

import jaxgd
from jaxgd import problems

problem = problems.logistic_regression(num_examples=2000, num_features=50)
for factory in (jaxgd.adam, jaxgd.sgd):
    result = jaxgd.sweep(problem.loss_fn, problem.init_params, factory,
                         hyperparams={"learning_rate": np.logspace(-4, 1.5, 64)},
                         data=problem.data, max_steps=200)
    best = result.best
    print(f"{factory.__name__:>5}: best learning rate {best['learning_rate']:.3g} -> "
          f"loss {best['final_loss']:.4f}; {int(result.diverged.sum())} of 64 diverged")
    path = sys.argv[1] if len(sys.argv) > 1 else f"lr_sweep_{factory.__name__}.png"
    try:
        result.plot(path)
        print(f"       wrote {path}")
    except ImportError as err:
        print(f"       no plot: {err}")
    assert best["final_loss"] < 0.5
