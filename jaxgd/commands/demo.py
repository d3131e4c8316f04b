"""``jaxgd demo``: every optimizer on Rosenbrock and on an ill-conditioned quadratic."""

from __future__ import annotations

import argparse

from jaxgd.commands.arguments import output_file, positive_int

NAME = "demo"
HELP = "train every optimizer on two test problems and print a table"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=positive_int, default=None, metavar="N",
                        help="step budget of every run (default: 5000 on Rosenbrock, "
                             "2000 on the quadratic); a run stops earlier on its rule")
    parser.add_argument("--only", nargs="+", metavar="OPTIMIZER",
                        help="run only these optimizers (names as in 'jaxgd list')")
    parser.add_argument("--problems", nargs="+", metavar="PROBLEM",
                        help="run only on these problems: rosenbrock, quadratic")
    parser.add_argument("--plot", type=output_file, metavar="FILE.png",
                        help="also plot the loss curves to this file")


def run(args: argparse.Namespace) -> int:
    from jaxgd.commands.arguments import check_names
    from jaxgd.demo import GRAD_TOLS, format_table, run_demo
    from jaxgd.optimizers.catalog import OPTIMIZERS

    variants = check_names("--only", args.only, OPTIMIZERS)
    problem_names = check_names("--problems", args.problems, GRAD_TOLS)
    if args.plot:  # before the runs: a missing matplotlib is found now, not after them
        from jaxgd.plot.figure import pyplot

        pyplot()
    rows = run_demo(max_steps=args.steps, variants=variants, problem_names=problem_names,
                    progress=True)
    print(format_table(rows))
    if args.plot:
        from jaxgd.plot import plot_demo

        plot_demo(rows, args.plot)
        print(f"wrote {args.plot}")
    return 0
