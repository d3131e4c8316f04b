"""``jaxgd demo``: every optimizer of the catalog on Rosenbrock and on an ill-conditioned
quadratic, each run stopped by its stopping rule, in a table and (optionally) a plot."""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import numpy as np

from jaxgd import problems
from jaxgd.core.hyperparams import hyperparam_names
from jaxgd.optimizers.catalog import OPTIMIZERS
from jaxgd.train import fit

#: The learning-rate grid: 19 log-spaced values from 1e-4 to 3.2.
RATE_GRID = np.logspace(-4.0, 0.5, 19)

# The first argument of each optimizer (its learning rate; ``max_learning_rate`` for
# polyak_sgd), found by ``jaxgd.sweep`` over RATE_GRID with the demo's step budgets and
# stopping rules, keeping the value that ends nearest the optimum: what
# :func:`sweep_learning_rate` gives (and does while the demo runs, for an optimizer
# missing here). Newton keeps its classic rate 1, and L-BFGS its line search (``None``).
LEARNING_RATES: dict[str, dict[str, float | None]] = {
    "rosenbrock": {
        "sgd": 0.0018, "momentum": 0.0032, "nesterov": 0.001, "adagrad": 1.8,
        "rmsprop": 0.0032, "adam": 0.56, "adamw": 0.018, "nadam": 0.018, "nadamw": 0.01,
        "amsgrad": 1.0, "adamax": 0.32, "adamaxw": 0.032, "radam": 0.0056, "adabelief": 0.056,
        "yogi": 0.32, "lion": 0.0018, "adadelta": 0.1, "lamb": 0.0056, "lars": 0.56,
        "novograd": 0.0001, "fromage": 0.0056, "adafactor": 0.01, "sm3": 1.8,
        "noisy_sgd": 0.0018, "sign_sgd": 0.00056, "rprop": 0.01,
        "optimistic_gradient_descent": 0.00056, "ademamix": 0.18,
        "simplified_ademamix": 0.0001, "schedule_free_sgd": 0.0056,
        "schedule_free_adamw": 0.056, "madgrad": 0.018, "adopt": 3.2, "prodigy": 0.1,
        "dadapt_adamw": 0.56, "cocob": 0.32, "dog": 1.0, "dowg": 0.32, "muon": 0.001,
        "sophia": 0.01, "polyak_sgd": 1.0, "lbfgs": None, "newton": 1.0,
    },
    "quadratic": {
        "sgd": 0.0018, "momentum": 0.0032, "nesterov": 0.001, "adagrad": 0.56,
        "rmsprop": 0.001, "adam": 0.0032, "adamw": 0.0032, "nadam": 0.0018, "nadamw": 0.0032,
        "amsgrad": 3.2, "adamax": 1.0, "adamaxw": 0.0032, "radam": 0.01, "adabelief": 0.00056,
        "yogi": 3.2, "lion": 0.001, "adadelta": 0.32, "lamb": 0.0056, "lars": 0.18,
        "novograd": 0.0001, "fromage": 0.018, "adafactor": 0.018, "sm3": 1.0,
        "noisy_sgd": 0.0018, "sign_sgd": 0.00056, "rprop": 0.001,
        "optimistic_gradient_descent": 0.00056, "ademamix": 0.1,
        "simplified_ademamix": 0.0001, "schedule_free_sgd": 0.018, "schedule_free_adamw": 0.01,
        "madgrad": 0.32, "adopt": 0.1, "prodigy": 1.0, "dadapt_adamw": 0.18, "cocob": 0.0032,
        "dog": 1.8, "dowg": 0.56, "muon": 0.001, "sophia": 0.0056, "polyak_sgd": 1.0,
        "lbfgs": None, "newton": 1.0,
    },
}

#: The stopping rule of each demo problem, ``‖g‖ ≤ grad_tol`` (see :func:`demo_problems`).
GRAD_TOLS = {"rosenbrock": 1e-5, "quadratic": 5e-4}

#: Optimizers whose rule is for matrices (Muon orthogonalizes each 2-D leaf's step; on a
#: vector it takes its Adam fallback's): the demo reshapes their params to these shapes,
#: the loss being the same function of the entries.
MATRIX_SHAPES: dict[str, dict[str, tuple[int, int]]] = {
    "muon": {"rosenbrock": (1, 2), "quadratic": (4, 5)},
}

#: Where a row's learning rate came from.
TUNED, SWEPT, OWN_RULE = "tuned", "swept", "own rule"


class DemoProblem(NamedTuple):
    """A demo problem, its step budget and its stopping rule ``‖g‖ ≤ grad_tol``."""

    problem: problems.Problem
    max_steps: int
    grad_tol: float


class DemoRow(NamedTuple):
    """One line of the demo's table."""

    problem: str
    variant: str
    learning_rate: float | None
    rate_source: str  # TUNED, SWEPT or OWN_RULE
    steps: int  # updates until the stopping rule held, or the budget
    stop_reason: str  # as FitResult.stop_reason
    final_loss: float  # loss - min at the returned params, in float64, >= 0
    distance: float
    seconds: float
    losses: np.ndarray  # loss - min at each step taken, >= 0


def demo_problems(max_steps: int | None = None,
                  names: Sequence[str] | None = None) -> dict[str, DemoProblem]:
    """Rosenbrock from (-1.2, 1), and a 20-D quadratic with condition number 1000 from
    the origin (or those of ``names``), with their budgets (``max_steps`` replaces them)
    and stopping rules.

    The gradient tolerance of each sits just above the float32 rounding of the gradient
    near its optimum, so that a run that has reached the optimum stops there instead of
    spending its budget on rounding noise. Rosenbrock's gradient vanishes exactly at the
    representable (1, 1); the quadratic's ``A x - b`` cannot get much below
    ``eps32 · L · ‖x*‖`` (about 2e-4 here), and ``‖g‖ ≤ 5e-4`` bounds
    ``‖x - x*‖ ≤ ‖g‖ / μ = 5e-4``.
    """
    makers = {
        "rosenbrock": (problems.rosenbrock, 5000),
        "quadratic": (functools.partial(problems.quadratic, dim=20, mu=1.0, L=1000.0), 2000),
    }
    return {name: DemoProblem(make(), max_steps or budget, GRAD_TOLS[name])
            for name, (make, budget) in makers.items() if names is None or name in names}


def shaped_for(variant: str, problem_name: str, problem: problems.Problem) -> problems.Problem:
    """``problem`` with its params in the shape ``variant`` needs (:data:`MATRIX_SHAPES`)."""
    shape = MATRIX_SHAPES.get(variant, {}).get(problem_name)
    if shape is None:
        return problem
    loss_fn = problem.loss_fn
    return problem._replace(
        loss_fn=lambda params: loss_fn(params.reshape(-1)),
        init_params=problem.init_params.reshape(shape),
        optimum=np.asarray(problem.optimum).reshape(shape),
    )


def _rate_argument(factory: Callable) -> tuple[str, object]:
    """The name and default of the factory's first argument, its learning rate."""
    name, default = next(iter(hyperparam_names(factory).items()))
    return name, default


def _fixed_arguments(variant: str, factory: Callable, problem: problems.Problem) -> dict:
    """The arguments the demo sets besides the learning rate: those the problem knows
    (Polyak's step needs the optimal value), and nothing else, so every other argument
    keeps its default. An argument without a default is an error naming it."""
    names = hyperparam_names(factory)
    fixed = {"f_min": problem.min_value} if "f_min" in names else {}
    missing = [n for n, d in list(names.items())[1:]
               if d is inspect.Parameter.empty and n not in fixed]
    if missing:
        raise ValueError(f"the demo cannot build {variant!r}: it has no setting for its "
                         f"required argument(s) {missing}; add them in jaxgd/demo.py.")
    return fixed


def sweep_learning_rate(variant: str, demo_problem: DemoProblem) -> float:
    """The rate of :data:`RATE_GRID` that ends nearest the optimum (then in the fewest
    steps), from one ``jaxgd.sweep`` over the grid with the demo's budget and rule."""
    from jaxgd.sweep import sweep

    factory, problem = OPTIMIZERS[variant], demo_problem.problem
    rate_name, _ = _rate_argument(factory)
    made = functools.partial(factory, **_fixed_arguments(variant, factory, problem))
    result = sweep(problem.loss_fn, problem.init_params, made,
                   hyperparams={rate_name: RATE_GRID}, max_steps=demo_problem.max_steps,
                   grad_tol=demo_problem.grad_tol)
    flat = np.asarray(result.fit.params, np.float64).reshape(len(RATE_GRID), -1)
    distance = np.linalg.norm(flat - np.asarray(problem.optimum, np.float64).ravel(), axis=1)
    distance = np.where(result.diverged | ~np.isfinite(distance), np.inf, distance)
    best = np.lexsort((result.num_steps, distance))[0]
    return float(result.hyperparams[rate_name][best])


def learning_rate(variant: str, problem_name: str,
                  demo_problem: DemoProblem) -> tuple[float | None, str]:
    """The rate the demo runs ``variant`` with, and where it came from: the tuned table;
    else ``None`` when the optimizer's own rule needs none (its default is ``None``:
    a line search, a relative step); else a sweep now over :data:`RATE_GRID`."""
    if variant in LEARNING_RATES.get(problem_name, {}):
        return LEARNING_RATES[problem_name][variant], TUNED
    _, default = _rate_argument(OPTIMIZERS[variant])
    if default is None:
        return None, OWN_RULE
    return sweep_learning_rate(variant, demo_problem), SWEPT


def build(variant: str, rate: float | None, problem: problems.Problem):
    """The optimizer ``variant`` as the demo runs it on ``problem``."""
    factory = OPTIMIZERS[variant]
    return factory(rate, **_fixed_arguments(variant, factory, problem))


def excess_loss(problem: problems.Problem, params) -> float:
    """``loss(params) - min`` with the loss evaluated in float64 (the known minimum is a
    float64 value): a float32 loss near the optimum is rounded by more than the gap it
    should show, which can come out negative. Clamped at 0 against float64 rounding."""
    with jax.enable_x64(True):
        wide = jax.tree.map(lambda x: np.asarray(x, np.float64), params)
        value = float(problem.loss_fn(wide)) - (problem.min_value or 0.0)
    return max(value, 0.0)


def _progress_bar(total: int, enabled: bool):
    """A tqdm bar over the runs, or None (not asked for, or tqdm not installed)."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    # disable=None: no bar when stderr is not a terminal (a log, a pipe, a test)
    return tqdm(total=total, desc="demo", unit="run", leave=False, disable=None)


def run_demo(max_steps: int | None = None, variants: Sequence[str] | None = None,
             problem_names: Sequence[str] | None = None,
             progress: bool = False) -> list[DemoRow]:
    """Train each variant (default: all of :data:`jaxgd.OPTIMIZERS`) on each demo problem
    (default: both, see :func:`demo_problems`) with ``jaxgd.fit``, stopping on the
    problem's rule; time the compiled run.

    ``progress``: a tqdm bar over the runs while they go (when tqdm is installed)."""
    variants = list(OPTIMIZERS) if variants is None else list(variants)
    problem_names = list(GRAD_TOLS) if problem_names is None else list(problem_names)
    for what, given, known in (("variants", variants, OPTIMIZERS),
                               ("problem_names", problem_names, GRAD_TOLS)):
        unknown = [name for name in given if name not in known]
        if unknown:
            raise ValueError(f"{what}: unknown name(s) {unknown}; choose from {list(known)}.")
    chosen = demo_problems(max_steps, problem_names)
    bar = _progress_bar(len(chosen) * len(variants), progress)
    rows = []
    try:
        for problem_name, demo_problem in chosen.items():
            for variant in variants:
                if bar is not None:
                    bar.set_postfix_str(f"{problem_name} {variant}")
                rows.append(_run_one(problem_name, demo_problem, variant))
                if bar is not None:
                    bar.update()
    finally:
        if bar is not None:
            bar.close()
    return rows


def _run_one(problem_name: str, demo_problem: DemoProblem, variant: str) -> DemoRow:
    problem = shaped_for(variant, problem_name, demo_problem.problem)
    demo_problem = demo_problem._replace(problem=problem)
    rate, source = learning_rate(variant, problem_name, demo_problem)
    optimizer = build(variant, rate, problem)

    def run():
        return fit(problem.loss_fn, problem.init_params, optimizer,
                   max_steps=demo_problem.max_steps, grad_tol=demo_problem.grad_tol)

    jax.block_until_ready(run())  # compile
    start = time.perf_counter()
    result = jax.block_until_ready(run())
    seconds = time.perf_counter() - start
    taken = int(result.num_steps)
    # fit tests the rule on the point a step starts from, and still applies that step:
    # the rule held after one update fewer than it made.
    steps = taken - 1 if bool(result.converged) else taken
    minimum = problem.min_value or 0.0
    curve = np.asarray(result.losses[:taken], np.float64) - minimum
    distance = np.linalg.norm(np.asarray(result.params, np.float64)
                              - np.asarray(problem.optimum, np.float64))
    return DemoRow(problem_name, variant, rate, source, steps, result.stop_reason,
                   excess_loss(problem, result.params), float(distance), seconds,
                   np.maximum(curve, 0.0))


def _rate(row: DemoRow) -> str:
    if row.learning_rate is None:
        return "-"
    return f"{row.learning_rate:.1e}" + ("*" if row.rate_source == SWEPT else "")


def format_table(rows: Sequence[DemoRow]) -> str:
    """The rows as a plain-text table, with a legend of its columns."""
    width = max([len("variant"), *(len(r.variant) for r in rows)])
    header = (f"{'problem':<11} {'variant':<{width}} {'lr':>9} {'steps':>6} "
              f"{'stop':<9} {'loss - min':>11} {'|x - x*|':>10} {'time':>9}")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.problem:<11} {r.variant:<{width}} {_rate(r):>9} {r.steps:>6d} "
            f"{r.stop_reason:<9} {r.final_loss:>11.3e} {r.distance:>10.3e} "
            f"{r.seconds * 1e3:>7.1f}ms"
        )
    shown = {r.problem for r in rows}
    rules = ", ".join(f"{name} |g| <= {tol:g}" for name, tol in GRAD_TOLS.items()
                      if name in shown)
    swept = any(r.rate_source == SWEPT for r in rows)
    return "\n".join([
        *lines,
        "",
        f"steps: updates until the stopping rule held ({rules}), else the budget.",
        "loss - min: the loss at the final params in float64, minus the known minimum; "
        "0 is below float64 rounding.",
        "lr: tuned per problem" + ("; * picked now by a sweep over 1e-4..3.2" if swept else "")
        + "; - the optimizer's own step rule.",
        "time: the compiled run, compile excluded.",
    ])
