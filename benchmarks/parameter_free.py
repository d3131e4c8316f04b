"""Learning-rate sensitivity of parameter-free methods against tuned Adam.

One ``jaxgd.sweep`` per optimizer and problem over ``learning_rate``: 13 log-spaced values
over 3 decades, centred on 1 for the parameter-free methods (their rate multiplies their
own estimate of the step) and on the usual value for the others. *best*: the lowest final
loss, as the excess over the known minimum where there is one (floored at 1e-6 x the
start's, so that runs at the minimum tie); *width*: decades of rates whose final loss is
within 10 % of the optimizer's own best; diverged trials count as infinitely bad.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import jaxgd
from benchmarks import harness
from benchmarks.harness import Figure

TIMED = False  # its section reports losses, not times
DECADES, POINTS, TOLERANCE = 3.0, 13, 0.1
FLOOR = 1e-6  # excess floored at this x the start's: runs at the minimum tie
CENTRES = {"adam": 1e-2, "sgd": 1e-1, "schedule_free_adamw": 1e-2}
OPTIMIZERS = ("adam", "sgd", "schedule_free_adamw", "prodigy", "dadapt_adamw", "cocob",
              "dog", "dowg")


@dataclass(frozen=True)
class Case:
    name: str
    problem: Callable[[], jaxgd.problems.Problem]
    steps: int
    batch_size: int | None = None


FULL = (
    Case("logistic regression", jaxgd.problems.logistic_regression, 300),
    Case("digits MLP", jaxgd.problems.mlp_digits, 300, batch_size=128),
    Case("quadratic, condition 1e3", lambda: jaxgd.problems.quadratic(20, 1.0, 1e3), 300),
    Case("Rosenbrock", jaxgd.problems.rosenbrock, 1000),
    Case("recommender (matrix factorization)", jaxgd.problems.matrix_factorization, 300,
         batch_size=256),
)
QUICK = (Case("logistic regression", lambda: jaxgd.problems.logistic_regression(100), 30),
         Case("Rosenbrock", jaxgd.problems.rosenbrock, 50))


def grid(name: str) -> np.ndarray:
    return CENTRES.get(name, 1.0) * np.logspace(-DECADES / 2, DECADES / 2, POINTS)


def width(losses: np.ndarray) -> float:
    """Decades of the grid within ``TOLERANCE`` of the best, each point standing for the
    half-spacings on either side of it (the ends for one half)."""
    if not np.isfinite(np.min(losses)):
        return 0.0
    cell = np.full(POINTS, DECADES / (POINTS - 1))
    cell[[0, -1]] /= 2
    return float(np.sum(cell[losses <= (1 + TOLERANCE) * np.min(losses)]))


def measure(quick: bool) -> list[dict]:
    rows = []
    for case in QUICK if quick else FULL:
        problem = case.problem()
        data = () if problem.data is None else (problem.data,)
        start = float(problem.loss_fn(problem.init_params, *data))
        for name in OPTIMIZERS:
            result = jaxgd.sweep(problem.loss_fn, problem.init_params, getattr(jaxgd, name),
                                 hyperparams={"learning_rate": grid(name)}, data=problem.data,
                                 batch_size=case.batch_size, max_steps=case.steps)
            final = np.where(np.isfinite(result.final_loss) & ~result.diverged,
                             result.final_loss, np.inf)
            if problem.min_value is not None:
                excess = start - problem.min_value
                final = np.maximum(final - problem.min_value, FLOOR * excess)
            rows.append({"problem": case.name, "optimizer": name, "curve": final})
    return rows


def report(rows: list[dict], plots: Path | None) -> tuple[dict[str, Figure], list[str]]:
    cells = []
    for r in rows:
        best = int(np.argmin(r["curve"]))
        adam = next(x for x in rows if x["problem"] == r["problem"]
                    and x["optimizer"] == "adam")
        if not np.isfinite(r["curve"][best]):
            cells.append([r["problem"], r["optimizer"], "all diverged", "", "0", ""])
            continue
        cells.append([r["problem"], r["optimizer"], f"{r['curve'][best]:.3g}",
                      f"{grid(r['optimizer'])[best]:.2g}", f"{width(r['curve']):.2f}",
                      f"{r['curve'][best] / np.min(adam['curve']):.3g}"])
    blocks = [harness.markdown_table(["problem", "optimizer", "best (excess) loss", "at rate",
                                      "width (decades)", "best / Adam's"], cells)]
    if plots is not None:
        plot(rows, plots / "parameter_free.png")
        blocks.append("![learning-rate curves](plots/parameter_free.png)")
    return {}, blocks


def plot(rows: list[dict], path: Path) -> None:
    panels = []
    for problem in dict.fromkeys(r["problem"] for r in rows):
        mine = [r for r in rows if r["problem"] == problem]
        # one run diverging to 1e20 would squash the others: cut at 100 x the losses of
        # the smallest rates, which hardly leave the start
        slowest = np.array([r["curve"][0] for r in mine])
        top = 100 * np.max(slowest[np.isfinite(slowest)]) if np.isfinite(slowest).any() else None
        panels.append((problem, "learning rate / centre of its grid", {
            r["optimizer"]: (grid(r["optimizer"]) / CENTRES.get(r["optimizer"], 1.0),
                             np.where(np.isfinite(r["curve"]), r["curve"], np.nan))
            for r in mine}, top))
    harness.plot(path, panels, "final (excess) loss")


if __name__ == "__main__":
    sys.exit(harness.main("parameter_free"))
