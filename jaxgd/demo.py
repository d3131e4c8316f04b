"""``jaxgd demo``: every optimizer on Rosenbrock and on an ill-conditioned quadratic."""

from __future__ import annotations

import time
from typing import NamedTuple

import jax
import numpy as np

from jaxgd import problems
from jaxgd.core.hyperparams import hyperparam_names
from jaxgd.optimizers.catalog import OPTIMIZERS
from jaxgd.train import fit

# The first argument of each optimizer (its learning rate; ``max_learning_rate`` for
# polyak_sgd), found by ``jaxgd.sweep`` over 19 log-spaced values from 1e-4 to 3.2 with
# the step budgets below, keeping the value that ends nearest the optimum. Newton keeps
# its classic rate 1 and L-BFGS its line search (``None``).
LEARNING_RATES: dict[str, dict[str, float | None]] = {
    "rosenbrock": {
        "sgd": 0.0018, "momentum": 0.0032, "nesterov": 0.001, "adagrad": 1.8,
        "rmsprop": 0.0032, "adam": 0.56, "adamw": 0.018, "nadam": 0.018, "nadamw": 0.01,
        "amsgrad": 1.0, "adamax": 0.32, "adamaxw": 0.032, "radam": 0.0056, "adabelief": 0.056,
        "yogi": 0.32, "lion": 0.0018, "adadelta": 0.1, "lamb": 0.0056, "lars": 0.56,
        "novograd": 0.0001, "fromage": 0.0056, "adafactor": 0.01, "sm3": 1.8,
        "noisy_sgd": 0.0018, "sign_sgd": 0.00056, "rprop": 0.01,
        "optimistic_gradient_descent": 0.00056, "polyak_sgd": 1.0, "lbfgs": None,
        "newton": 1.0,
    },
    "quadratic": {
        "sgd": 0.0018, "momentum": 0.0032, "nesterov": 0.001, "adagrad": 0.56,
        "rmsprop": 0.001, "adam": 0.0032, "adamw": 0.0032, "nadam": 0.0018, "nadamw": 0.0032,
        "amsgrad": 3.2, "adamax": 1.0, "adamaxw": 0.0032, "radam": 0.01, "adabelief": 0.00056,
        "yogi": 3.2, "lion": 0.001, "adadelta": 0.32, "lamb": 0.0056, "lars": 0.18,
        "novograd": 0.0001, "fromage": 0.018, "adafactor": 0.018, "sm3": 1.0,
        "noisy_sgd": 0.0018, "sign_sgd": 0.00056, "rprop": 0.001,
        "optimistic_gradient_descent": 0.00056, "polyak_sgd": 1.0, "lbfgs": None,
        "newton": 1.0,
    },
}


class DemoRow(NamedTuple):
    """One line of the demo's table."""

    problem: str
    variant: str
    learning_rate: float | None
    steps: int
    final_loss: float
    distance: float
    seconds: float
    losses: np.ndarray  # loss - min at each step taken


def demo_problems(max_steps: int | None = None) -> dict[str, tuple[problems.Problem, int]]:
    """The demo's problems with their step budgets: Rosenbrock from (-1.2, 1), and a
    20-D quadratic with condition number 1000 from the origin."""
    return {
        "rosenbrock": (problems.rosenbrock(), max_steps or 5000),
        "quadratic": (problems.quadratic(dim=20, mu=1.0, L=1000.0), max_steps or 2000),
    }


def run_demo(max_steps: int | None = None, variants: list[str] | None = None) -> list[DemoRow]:
    """Train each variant on each demo problem with ``jaxgd.fit``; time the compiled run.

    Runs stop at ``max_steps`` or when the gradient norm falls below 1e-5.
    """
    rows = []
    for problem_name, (problem, steps) in demo_problems(max_steps).items():
        for variant in variants or list(OPTIMIZERS):
            lr = LEARNING_RATES[problem_name][variant]
            factory = OPTIMIZERS[variant]
            # Polyak's step needs the optimal value, which the demo problems know.
            known = {"f_min": problem.min_value} if "f_min" in hyperparam_names(factory) else {}
            optimizer = factory(lr, **known)

            def run(optimizer=optimizer, problem=problem, steps=steps):
                return fit(problem.loss_fn, problem.init_params, optimizer,
                           max_steps=steps, grad_tol=1e-5)

            jax.block_until_ready(run())  # compile
            start = time.perf_counter()
            result = jax.block_until_ready(run())
            seconds = time.perf_counter() - start
            minimum = problem.min_value or 0.0
            final = float(problem.loss_fn(result.params)) - minimum
            distance = float(np.linalg.norm(np.asarray(result.params) -
                                            np.asarray(problem.optimum)))
            steps_taken = int(result.num_steps)
            rows.append(DemoRow(problem_name, variant, lr, steps_taken, final, distance,
                                seconds, np.asarray(result.losses[:steps_taken]) - minimum))
    return rows


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1e}"


def format_table(rows: list[DemoRow]) -> str:
    """The rows as a plain-text table."""
    header = (f"{'problem':<11} {'variant':<28} {'lr':>8} {'steps':>6} "
              f"{'loss - min':>11} {'|x - x*|':>10} {'time':>9}")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.problem:<11} {r.variant:<28} {_rate(r.learning_rate):>8} {r.steps:>6d} "
            f"{r.final_loss:>11.3e} {r.distance:>10.3e} {r.seconds * 1e3:>7.1f}ms"
        )
    return "\n".join(lines)
