"""How much each optimizer's final loss depends on its learning rate: parameter-free
methods against tuned Adam, one vectorized sweep per optimizer and problem.

For every problem of :data:`PROBLEMS` and every optimizer of :data:`OPTIMIZERS`, one
``jaxgd.sweep`` over ``learning_rate`` on a log grid of :data:`POINTS` values spanning
:data:`DECADES` decades, centred on the optimizer's usual value (1 for the
parameter-free methods, whose ``learning_rate`` multiplies their own estimate of the
step; :data:`CENTRES` for the others), runs ``STEPS`` steps.

Figures per optimizer and problem:

* *best*: the lowest final loss over the grid, as the excess ``f - f*`` over the
  problem's known minimum where it has one (the test functions, the quadratic, the
  logistic regression's Newton solution), else the loss itself;
* *width*: the width in decades of the set of rates whose final loss is within 10 % of
  the optimizer's own best (``<= 1.1 * best``; every grid point counts for its share of
  the grid, so the whole grid is ``DECADES``, and a curve with gaps counts only its good
  points). Diverged or non-finite runs count as infinitely bad. An excess is floored
  at ``1e-6 *`` the start's excess, so that runs that reach the minimum to float
  precision tie instead of ranking their rounding;
* *vs Adam*: the best against tuned Adam's best on the same problem.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.parameter_free            # full run, writes RESULTS.md
    .venv/bin/python -m benchmarks.parameter_free --quick    # tiny sizes, writes nothing
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import jaxgd  # noqa: E402
from benchmarks import timing  # noqa: E402

SECTION = "parameter_free"
DECADES = 3.0
POINTS = 13
TOLERANCE = 0.1
FLOOR = 1e-6
#: Grid centres of the optimizers that are not parameter-free.
CENTRES = {"adam": 1e-2, "sgd": 1e-1, "schedule_free_adamw": 1e-2, "adopt": 1e-2}
#: The optimizers compared; parameter-free ones are centred on 1.
OPTIMIZERS = ("adam", "sgd", "schedule_free_adamw", "prodigy", "dadapt_adamw", "cocob",
              "dog", "dowg")


@dataclass(frozen=True)
class Case:
    name: str
    problem: Callable[[], jaxgd.problems.Problem]
    steps: int
    batch_size: int | None = None


def _recommender() -> jaxgd.problems.Problem:
    return jaxgd.problems.matrix_factorization()


PROBLEMS = (
    Case("logistic regression", jaxgd.problems.logistic_regression, 300),
    Case("digits MLP", jaxgd.problems.mlp_digits, 300, batch_size=128),
    Case("quadratic, condition 1e3", lambda: jaxgd.problems.quadratic(20, 1.0, 1e3), 300),
    Case("Rosenbrock", jaxgd.problems.rosenbrock, 1000),
    Case("recommender (matrix factorization)", _recommender, 300, batch_size=256),
)
QUICK_PROBLEMS = (
    Case("logistic regression", lambda: jaxgd.problems.logistic_regression(100), 30),
    Case("Rosenbrock", jaxgd.problems.rosenbrock, 50),
)


def grid(name: str) -> np.ndarray:
    centre = CENTRES.get(name, 1.0)
    return centre * np.logspace(-DECADES / 2, DECADES / 2, POINTS)


def excess(problem: jaxgd.problems.Problem, losses: np.ndarray) -> tuple[np.ndarray, float]:
    """The final losses as the figures compare them, and the start's."""
    start = float(problem.loss_fn(problem.init_params, *(
        () if problem.data is None else (problem.data,))))
    if problem.min_value is None:
        return losses, start
    start_excess = start - problem.min_value
    return np.maximum(losses - problem.min_value, FLOOR * start_excess), start_excess


def sweep_one(case: Case, problem, name: str) -> tuple[np.ndarray, np.ndarray]:
    rates = grid(name)
    result = jaxgd.sweep(
        problem.loss_fn, problem.init_params, getattr(jaxgd, name),
        hyperparams={"learning_rate": rates}, data=problem.data,
        batch_size=case.batch_size, max_steps=case.steps)
    finite = np.isfinite(result.final_loss) & ~result.diverged
    return rates, np.where(finite, result.final_loss, np.inf)


def width(losses: np.ndarray) -> float:
    """Decades of the grid within ``TOLERANCE`` of the best: each point stands for the
    half-spacings on either side of it (the two ends for one half), so all is DECADES."""
    if not np.isfinite(np.min(losses)):
        return 0.0
    good = losses <= (1 + TOLERANCE) * np.min(losses)
    cell = np.full(POINTS, DECADES / (POINTS - 1))
    cell[[0, -1]] /= 2
    return float(np.sum(cell[good]))


def run_case(case: Case, optimizers: Sequence[str]) -> list[dict]:
    problem = case.problem()
    rows = []
    for name in optimizers:
        rates, final = sweep_one(case, problem, name)
        figures, _ = excess(problem, final)
        best = int(np.argmin(figures))
        rows.append({"problem": case.name, "optimizer": name, "best": float(figures[best]),
                     "best_rate": float(rates[best]), "width": width(figures),
                     "curve": figures, "rates": rates})
        print(f"{case.name:36s} {name:20s} best {figures[best]:.3e} at {rates[best]:.2e}, "
              f"width {rows[-1]['width']:.2f} decades", flush=True)
    adam = next((r["best"] for r in rows if r["optimizer"] == "adam"), np.nan)
    for r in rows:
        r["vs_adam"] = r["best"] / adam
    return rows


def table(rows: list[dict]) -> str:
    def cells(r):
        if not np.isfinite(r["best"]):
            return [r["problem"], r["optimizer"], "all diverged", "", "0", ""]
        return [r["problem"], r["optimizer"], f"{r['best']:.3g}", f"{r['best_rate']:.2g}",
                f"{r['width']:.2f}", f"{r['vs_adam']:.3g}"]

    return timing.markdown_table(
        ["problem", "optimizer", "best (excess) loss", "at rate", "width (decades)",
         "best / Adam's"], [cells(r) for r in rows])


def plot(rows: list[dict], path: Path) -> None:
    from jaxgd.plot.figure import pyplot

    plt = pyplot()
    problems = list(dict.fromkeys(r["problem"] for r in rows))
    fig, axes = plt.subplots(1, len(problems), figsize=(4.5 * len(problems), 4))
    for ax, problem in zip(np.atleast_1d(axes), problems, strict=True):
        for r in (r for r in rows if r["problem"] == problem):
            relative = r["rates"] / CENTRES.get(r["optimizer"], 1.0)
            ax.loglog(relative, np.where(np.isfinite(r["curve"]), r["curve"], np.nan),
                      marker=".", label=r["optimizer"])
        # a diverging run's finite 1e20 would squash every other curve into one line: cut
        # at 100 x the losses of the smallest rates, which hardly leave the start
        slowest = np.array([r["curve"][0] for r in rows if r["problem"] == problem])
        if np.isfinite(slowest).any():
            ax.set_ylim(top=100 * np.max(slowest[np.isfinite(slowest)]))
        ax.set_title(problem, fontsize="small")
        ax.set_xlabel("learning rate / centre of its grid")
        ax.grid(True, alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("final (excess) loss")
    np.atleast_1d(axes)[-1].legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = timing.suite_parser("python -m benchmarks.parameter_free", __doc__,
                                 "two small problems")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    cases = QUICK_PROBLEMS if args.quick else PROBLEMS
    rows = [row for case in cases for row in run_case(case, OPTIMIZERS)]
    elapsed = time.perf_counter() - start
    text = table(rows)
    print(text)
    if timing.wants_write(args):
        picture = Path(args.results).parent / "plots" / "parameter_free.png"
        picture.parent.mkdir(exist_ok=True)
        plot(rows, picture)
        body = [
            *timing.section_head(SECTION, "learning-rate sensitivity of parameter-free "
                                 "methods against tuned Adam", timing.machine_info(),
                                 elapsed),
            f"One `jaxgd.sweep` per optimizer and problem over `learning_rate`: {POINTS} "
            f"log-spaced values over {DECADES:g} decades, centred on 1 for the "
            f"parameter-free methods and on {CENTRES} for the others; steps and batch "
            "sizes as in `benchmarks/parameter_free.py`. *Best*: the lowest final loss, "
            "as the excess over the known minimum where the problem has one. *Width*: "
            f"decades of rates whose final loss is within {TOLERANCE:.0%} of the "
            "optimizer's own best. Diverged trials count as infinitely bad.", "",
            text, "",
            f"![learning-rate curves](plots/{picture.name})",
        ]
        timing.write_section(SECTION, "\n".join(body), args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
