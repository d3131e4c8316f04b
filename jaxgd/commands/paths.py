"""``jaxgd paths``: optimizer paths on the 2-D test functions (:func:`jaxgd.plot.paths`)."""

from __future__ import annotations

import argparse

from jaxgd.commands.arguments import output_file, positive_float, positive_int

NAME = "paths"
HELP = ("draw the paths of optimizers on 2-D test functions, each at the learning rate "
        "a vectorized sweep picked")

#: Without --optimizers.
OPTIMIZERS = ("sgd", "momentum", "adam")

#: ``--lr`` without rates: the picked rate times each of these (overshoot and crawl).
LR_FACTORS = (0.1, 0.3, 1.0, 1.5)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--functions", nargs="+", metavar="NAME",
                        help="the test functions (default: all of rosenbrock, beale, "
                             "himmelblau, ill_conditioned, saddle, six_hump_camel)")
    parser.add_argument("--optimizers", nargs="+", metavar="NAME",
                        help="the optimizers to compare, named as in 'jaxgd list' "
                             f"(default: {' '.join(OPTIMIZERS)})")
    parser.add_argument("--steps", type=positive_int, default=200, metavar="N",
                        help="steps of every run (default: 200)")
    parser.add_argument("--starts", type=positive_int, default=1, metavar="N",
                        help="1: each function's classic start; more: N random starts, "
                             "marking which minimum each reaches (default: 1)")
    parser.add_argument("--lr", type=positive_float, nargs="*", metavar="RATE",
                        help="draw one optimizer (--optimizer) at several learning rates: "
                             "these, or without values the swept best rate times "
                             f"{', '.join(f'{f:g}' for f in LR_FACTORS)}")
    parser.add_argument("--optimizer", default="sgd", metavar="NAME",
                        help="the optimizer of --lr (default: sgd)")
    parser.add_argument("--out", type=output_file, default="paths.png", metavar="FILE.png",
                        help="where to write the picture (default: paths.png)")
    parser.add_argument("--gif", type=output_file, metavar="FILE.gif",
                        help="also write an animation of the paths")


def run(args: argparse.Namespace) -> int:
    from jaxgd.commands.arguments import UsageError, check_names
    from jaxgd.optimizers.catalog import OPTIMIZERS as CATALOG
    from jaxgd.plot.figure import pyplot
    from jaxgd.problems.functions import FUNCTIONS

    functions = check_names("--functions", args.functions, FUNCTIONS)
    if args.lr is not None:
        if args.optimizers is not None:
            raise UsageError("argument --lr: draws one optimizer, named by --optimizer, "
                             "not --optimizers")
        optimizers = check_names("--optimizer", [args.optimizer], CATALOG)
    else:
        optimizers = check_names("--optimizers", args.optimizers or OPTIMIZERS, CATALOG)
    pyplot()  # a missing matplotlib is found before the runs, not after them

    import numpy as np

    from jaxgd.plot.trajectories import paths
    from jaxgd.sweep.paths import optimizer_paths

    fixed = args.lr or None
    factors = LR_FACTORS if args.lr is not None and not args.lr else None
    try:
        result = optimizer_paths(functions, optimizers, args.steps, starts=args.starts,
                                 learning_rates=fixed, lr_factors=factors)
    except ValueError as err:  # e.g. an optimizer without a learning rate
        raise UsageError(str(err)) from None
    for traj in result.trajectories:
        # float32 rounding can put a loss a hair below the float64 minimum
        ends = np.maximum(traj.losses[:, -1] - (result.problems[traj.function].min_value
                                                or 0.0), 0.0)
        print(f"{traj.function:>16} {traj.optimizer:>10}  lr {traj.learning_rate:<10.3g} "
              f"final f - f_min {np.median(ends):.3g}"
              + (f" (median of {len(ends)} starts)" if len(ends) > 1 else ""))
    paths(result=result, out=args.out, gif=args.gif)
    print(f"wrote {args.out}" + (f" and {args.gif}" if args.gif else ""))
    return 0
