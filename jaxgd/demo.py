"""``jaxgd demo``: every optimizer on Rosenbrock and on an ill-conditioned quadratic."""

from __future__ import annotations

import time
from typing import NamedTuple

import jax
import numpy as np

from jaxgd import problems
from jaxgd.optimizers.catalog import OPTIMIZERS
from jaxgd.train import fit

# Learning rates tuned by a vmapped sweep over 26 log-spaced values (1e-5 .. 1) with the
# step budgets below; each is a little inside the best value's stable side.
LEARNING_RATES: dict[str, dict[str, float]] = {
    "rosenbrock": {"sgd": 1.5e-3, "momentum": 2e-3, "nesterov": 1e-3, "adagrad": 0.5,
                   "rmsprop": 1e-3, "adam": 5e-2, "newton": 1.0},
    "quadratic": {"sgd": 1.5e-3, "momentum": 1e-3, "nesterov": 1e-3, "adagrad": 0.5,
                  "rmsprop": 5e-4, "adam": 1.5e-3, "newton": 1.0},
}


class DemoRow(NamedTuple):
    """One line of the demo's table."""

    problem: str
    variant: str
    learning_rate: float
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
            optimizer = OPTIMIZERS[variant](lr)

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


def format_table(rows: list[DemoRow]) -> str:
    """The rows as a plain-text table."""
    header = (f"{'problem':<11} {'variant':<9} {'lr':>8} {'steps':>6} "
              f"{'loss - min':>11} {'|x - x*|':>10} {'time':>9}")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.problem:<11} {r.variant:<9} {r.learning_rate:>8.1e} {r.steps:>6d} "
            f"{r.final_loss:>11.3e} {r.distance:>10.3e} {r.seconds * 1e3:>7.1f}ms"
        )
    return "\n".join(lines)
