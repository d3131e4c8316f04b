"""Write the pictures of the docs into ``docs/figures/`` (git-ignored, made at build time).

Run by the docs hook before a build when a figure is missing, or by hand:
``python docs/gen_figures.py [--force]``. Each picture is computed by jaxgd itself, so
the pages show what the code does today.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = Path(__file__).resolve().parent / "figures"

#: file name -> the function that writes it
WRITERS: dict = {}


def figure(name: str):
    def register(write):
        WRITERS[name] = write
        return write

    return register


@figure("paths.png")
def _paths(out: Path) -> None:
    """Three optimizers on four of the test functions, each at the rate its sweep picked."""
    import jaxgd.plot

    jaxgd.plot.paths(["rosenbrock", "ill_conditioned", "saddle", "beale"],
                     ["sgd", "momentum", "adam"], steps=100, resolution=80, out=str(out))


@figure("paths_lr.png")
def _paths_lr(out: Path) -> None:
    """Gradient descent at several rates on the ill-conditioned quadratic: crawl to overshoot."""
    import jaxgd.plot

    jaxgd.plot.paths(["ill_conditioned"], ["sgd"], steps=60, lr_factors=[0.1, 0.5, 1.0, 1.6],
                     resolution=100, out=str(out))


@figure("paths_multistart.png")
def _paths_multistart(out: Path) -> None:
    """Eight starts on Himmelblau: which of the four minima each one reaches."""
    import jaxgd.plot

    jaxgd.plot.paths(["himmelblau"], ["momentum"], steps=100, starts=8, resolution=100,
                     out=str(out))


@figure("sweep_logistic.png")
def _sweep(out: Path) -> None:
    """The U curves of Adam and SGD on logistic regression, one compiled sweep each."""
    import numpy as np

    import jaxgd
    from jaxgd import problems

    problem = problems.logistic_regression(num_examples=500, num_features=10)
    result = jaxgd.sweep(problem.loss_fn, problem.init_params,
                         {"adam": jaxgd.adam, "sgd": jaxgd.sgd},
                         hyperparams={"learning_rate": np.logspace(-3, 1.5, 19)},
                         data=problem.data, max_steps=100)
    result.plot(str(out))


@figure("lr_find_logistic.png")
def _lr_find(out: Path) -> None:
    """The learning-rate finder's curve on logistic regression, with its suggestion."""
    import jaxgd
    from jaxgd import problems

    problem = problems.logistic_regression(num_examples=500, num_features=10)
    result = jaxgd.lr_find(problem.loss_fn, problem.init_params, jaxgd.adam, problem.data,
                           num_rates=17)
    result.plot(str(out))


def copy_benchmark_plots() -> list[Path]:
    """The plots the benchmark suites wrote, next to the generated figures."""
    copied = []
    for png in sorted((ROOT / "benchmarks" / "plots").glob("*.png")):
        target = FIGURES / "benchmarks" / png.name
        target.parent.mkdir(parents=True, exist_ok=True)
        # copy only what changed: a write under docs/ makes `mkdocs serve` rebuild
        if not target.is_file() or target.read_bytes() != png.read_bytes():
            shutil.copyfile(png, target)
        copied.append(target)
    return copied


def missing() -> list[str]:
    return [name for name in WRITERS if not (FIGURES / name).is_file()]


def main(force: bool = False, log=print) -> None:
    import matplotlib

    matplotlib.use("Agg")
    FIGURES.mkdir(parents=True, exist_ok=True)
    for name, write in WRITERS.items():
        out = FIGURES / name
        if out.is_file() and not force:
            continue
        start = time.perf_counter()
        write(out)
        log(f"docs figure {name}: {time.perf_counter() - start:.1f} s")
        matplotlib.pyplot.close("all")
    copy_benchmark_plots()


if __name__ == "__main__":
    main(force="--force" in sys.argv[1:])
