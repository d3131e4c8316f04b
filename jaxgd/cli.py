"""The jaxgd command line: gradient-descent optimizers, their demos and pictures.

Run 'jaxgd COMMAND --help' for the options of a command."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

#: The modules of :mod:`jaxgd.commands` that are commands, in the order of ``--help``.
#: A module not (yet) present is left out. Each imports only the standard library at
#: module level, so that ``jaxgd --help`` does not import jax.
COMMAND_MODULES = ("demo", "listing", "paths", "lr_find")


class _Version(argparse.Action):
    """``--version``, read from the installed package's metadata only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="print jaxgd's version and exit"):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("jaxgd")
        except PackageNotFoundError:
            text = "unknown (not installed; pip install -e .)"
        print(f"jaxgd {text}")
        parser.exit()


def command_modules() -> list:
    """The command modules of :data:`COMMAND_MODULES` that exist, imported."""
    found = []
    for name in COMMAND_MODULES:
        qualified = f"jaxgd.commands.{name}"
        if importlib.util.find_spec(qualified) is not None:
            found.append(importlib.import_module(qualified))
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxgd", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in command_modules():
        sub = commands.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run, parser=sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from jaxgd.commands.arguments import UsageError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except UsageError as err:
        args.parser.error(str(err))  # usage line, message, exit status 2


if __name__ == "__main__":
    sys.exit(main())
