"""The ``jaxgd`` command line."""

from __future__ import annotations

import argparse
import inspect
import sys

from jaxgd.core.hyperparams import hyperparam_names
from jaxgd.optimizers.catalog import OPTIMIZERS


def _cmd_demo(args: argparse.Namespace) -> int:
    from jaxgd.demo import format_table, run_demo

    rows = run_demo(max_steps=args.steps, variants=args.only)
    print(format_table(rows))
    print("\nloss - min: final loss above the known minimum; time: the compiled run, "
          "compile excluded.")
    if args.plot:
        from jaxgd.plot import plot_demo

        plot_demo(rows, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _show_default(name: str, default) -> str:
    if default is inspect.Parameter.empty:
        return name
    shown = repr(default)
    return f"{name}={shown if len(shown) <= 24 else '<' + type(default).__name__ + '>'}"


def _cmd_list(args: argparse.Namespace) -> int:
    del args
    for name, factory in OPTIMIZERS.items():
        arguments = ", ".join(
            _show_default(arg, default) for arg, default in hyperparam_names(factory).items()
        )
        summary = (factory.__doc__ or "").strip().splitlines()[0]
        print(f"{name}({arguments})\n    {summary}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxgd", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="train every variant on two test problems")
    demo.add_argument("--steps", type=int, default=None, help="step budget per run")
    demo.add_argument("--only", nargs="+", choices=sorted(OPTIMIZERS), metavar="VARIANT",
                      help="run only these variants")
    demo.add_argument("--plot", metavar="FILE.png", help="also plot the loss curves")
    demo.set_defaults(run=_cmd_demo)

    listing = commands.add_parser("list", help="list the optimizers and their hyperparameters")
    listing.set_defaults(run=_cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
