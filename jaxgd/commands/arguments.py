"""Argument types and checks shared by the ``jaxgd`` subcommands (standard library only).

Checks that argparse can make run at parse time, as ``type=``, so that a bad value is
a usage error before any work starts. A check that needs jax (a name looked up in the
optimizer catalog) runs inside the command's ``run``, and raises :class:`UsageError`,
which the command line reports like argparse's own errors (usage line, exit status 2).

Example::

    parser.add_argument("--steps", type=positive_int, default=None)
    parser.add_argument("--out", type=output_file, default="paths.png")
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Iterable


class UsageError(Exception):
    """A bad command-line value found inside a command's ``run``; the command line
    prints it after the command's usage line and exits with status 2."""


def positive_int(text: str) -> int:
    """An argparse ``type``: a whole number ``>= 1`` (``--steps 0``, ``-5`` or ``2.5``
    are usage errors, not ignored and not a traceback)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    """An argparse ``type``: a finite number ``> 0`` (a learning rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def output_file(text: str) -> str:
    """An argparse ``type``: a file path whose directory exists and is writable (so a
    typo fails now, not after the whole run)."""
    if not text or text.endswith(("/", os.sep)):
        raise argparse.ArgumentTypeError(f"must be a file name, got {text!r}")
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(
            f"directory {folder!r} does not exist (create it first, or choose another path)"
        )
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"directory {folder!r} is not writable")
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is a directory; give a file name")
    return text


def check_names(what: str, given: Iterable[str] | None, known: Iterable[str]) -> list[str]:
    """``given`` (``None``: all of ``known``) as a list, every name checked against
    ``known``; :class:`UsageError` naming the unknown ones, the nearest known spelling,
    and the whole list, otherwise. ``what`` is the option, e.g. ``"--only"``."""
    import difflib

    known = list(known)
    if given is None:
        return known
    given = list(given)
    unknown = [name for name in given if name not in known]
    if unknown:
        hints = [f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name)
                 for name in unknown
                 for close in [difflib.get_close_matches(name, known, n=1)]]
        raise UsageError(f"argument {what}: unknown name {', '.join(hints)}; "
                         f"choose from: {', '.join(known)}")
    return given
