"""``jaxgd lr-find``: the learning-rate finder (:func:`jaxgd.lr_find`) on a built-in
problem."""

from __future__ import annotations

import argparse

from jaxgd.commands.arguments import output_file, positive_float, positive_int

NAME = "lr-find"
HELP = ("suggest a learning rate from short trainings at many rates, run as one "
        "vectorized program")

#: The built-in problems it runs on: each a factory of :mod:`jaxgd.problems`.
PROBLEMS = ("logistic_regression", "linear_regression", "mlp_digits", "quadratic")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--problem", choices=PROBLEMS, default="logistic_regression",
                        help="the problem to train (default: logistic_regression)")
    parser.add_argument("--optimizer", default="sgd", metavar="NAME",
                        help="an optimizer that takes learning_rate, named as in "
                             "'jaxgd list' (default: sgd)")
    parser.add_argument("--steps", type=positive_int, default=None, metavar="N",
                        help="steps of each short run (default: 100)")
    parser.add_argument("--min-lr", type=positive_float, default=None, metavar="LR",
                        help="the smallest rate tried (default: 1e-6)")
    parser.add_argument("--max-lr", type=positive_float, default=None, metavar="LR",
                        help="the largest rate tried (default: 10)")
    parser.add_argument("--num-rates", type=positive_int, default=None, metavar="K",
                        help="the number of log-spaced rates, at least 2 (default: 25)")
    parser.add_argument("--batch-size", type=positive_int, default=None, metavar="B",
                        help="train on mini-batches of B examples (default: full batch)")
    parser.add_argument("--out", type=output_file, metavar="FILE.png",
                        help="also plot the curve to this file")


def _options(args: argparse.Namespace) -> dict:
    """The keyword arguments of lr_find that the command line sets, checked."""
    from jaxgd.commands.arguments import UsageError
    from jaxgd.sweep.lr_find import MAX_LR, MIN_LR, NUM_RATES

    options = {"min_lr": MIN_LR if args.min_lr is None else args.min_lr,
               "max_lr": MAX_LR if args.max_lr is None else args.max_lr,
               "num_rates": NUM_RATES if args.num_rates is None else args.num_rates}
    if options["min_lr"] >= options["max_lr"]:
        raise UsageError(f"argument --min-lr: must be below --max-lr, got "
                         f"{options['min_lr']:g} and {options['max_lr']:g}")
    if options["num_rates"] < 2:
        raise UsageError(f"argument --num-rates: must be at least 2, got {args.num_rates}")
    if args.steps is not None:
        options["max_steps"] = args.steps
    if args.batch_size is not None:
        options["batch_size"] = args.batch_size
    return options


def _problem(name: str, batch_size: int | None):
    from jaxgd import problems
    from jaxgd.commands.arguments import UsageError

    problem = getattr(problems, name)()
    if batch_size is not None:
        if problem.data is None:
            raise UsageError(f"argument --batch-size: the {name} problem has no data "
                             "examples to batch")
        count = len(problem.data[0])
        if batch_size > count:
            raise UsageError(f"argument --batch-size: the {name} problem has {count} "
                             f"examples, fewer than {batch_size}")
    return problem


def _print_curve(result) -> None:
    print(f"{'learning rate':>14}  {'loss':>12}  note")
    for i, rate in enumerate(result.rates):
        notes = [text for flag, text in ((result.diverged[i], "diverged"),
                                         (result.overshot[i] and not result.diverged[i],
                                          "rose above the start"),
                                         (rate == result.suggestion, "<- suggested"))
                 if flag]
        print(f"{rate:14.4g}  {result.losses[i]:12.6g}  {', '.join(notes)}")
    print(f"start loss {result.initial_loss:.6g}; as good as the best: loss <= "
          f"{result.threshold:.6g}" if result.threshold is not None
          else f"start loss {result.initial_loss:.6g}")


def run(args: argparse.Namespace) -> int:
    import sys
    import warnings

    from jaxgd.commands.arguments import UsageError, check_names
    from jaxgd.core.hyperparams import hyperparam_names
    from jaxgd.optimizers.catalog import OPTIMIZERS

    (name,) = check_names("--optimizer", [args.optimizer], OPTIMIZERS)
    takes_rate = [n for n, f in OPTIMIZERS.items() if "learning_rate" in hyperparam_names(f)]
    if name not in takes_rate:
        raise UsageError(f"argument --optimizer: {name} takes no learning_rate; choose "
                         f"from: {', '.join(takes_rate)}")
    options = _options(args)
    problem = _problem(args.problem, args.batch_size)
    if args.out:  # before the runs: a missing matplotlib is found now, not after them
        from jaxgd.plot.figure import pyplot

        pyplot()
    from jaxgd.sweep.lr_find import LRFindError, lr_find

    print(f"lr-find: {name} on {args.problem}, {options['num_rates']} rates from "
          f"{options['min_lr']:g} to {options['max_lr']:g}")
    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always")
        try:
            result = lr_find(problem.loss_fn, problem.init_params, OPTIMIZERS[name],
                             problem.data, **options)
            status = 0
        except LRFindError as err:
            result, status = err.result, 1
            print(f"error: {err}", file=sys.stderr)
    _print_curve(result)
    for note in notes:
        print(f"note: {note.message}")
    if result.suggestion is not None:
        print(f"suggested learning rate: {result.suggestion:.4g}")
    if args.out:
        import matplotlib.pyplot as plt

        plt.close(result.plot(args.out))
        print(f"wrote {args.out}")
    return status
