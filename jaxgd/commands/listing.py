"""``jaxgd list``: every optimizer of the catalog, its hyperparameters and what it is."""

from __future__ import annotations

import argparse
import re
import textwrap

NAME = "list"
HELP = "list the optimizers, their hyperparameters and defaults"

# Words whose period does not end a sentence ("Kingma & Ba, 2015, sec. 7").
_ABBREVIATIONS = ("e.g.", "i.e.", "et al.", "cf.", "vs.", "sec.", "eq.", "fig.", "resp.")
_ROLE = re.compile(r":[a-z]+:`([^`]*)`")  # :func:`adam`, :math:`g_t`
_LATEX = {
    r"\alpha": "α", r"\beta": "β", r"\gamma": "γ", r"\delta": "δ", r"\epsilon": "ε",
    r"\varepsilon": "ε", r"\eta": "η", r"\lambda": "λ", r"\mu": "μ", r"\nu": "ν",
    r"\rho": "ρ", r"\sigma": "σ", r"\tau": "τ", r"\odot": "⊙", r"\cdot": "·",
    r"\nabla": "∇", r"\sum": "Σ", r"\infty": "∞", r"\le": "≤", r"\leq": "≤", r"\ge": "≥",
    r"\geq": "≥", r"\|": "‖", r"\,": " ", r"\;": " ", r"\!": "",
}


def _plain(text: str) -> str:
    """reST and LaTeX markup made plain: roles and literals lose their quotes, Greek
    letters become characters, ``\\text{...}`` and ``\\hat`` their argument."""
    text = _ROLE.sub(r"\1", text).replace("``", "")
    text = re.sub(r"\\(?:text|mathrm|operatorname|hat|bar|tilde)\{([^{}]*)\}", r"\1", text)
    text = re.sub(r"\\(?:hat|bar|tilde) ", "", text)
    text = re.sub(r"\\sqrt\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}", r"√(\1)", text)
    for command, char in sorted(_LATEX.items(), key=lambda item: -len(item[0])):
        after = r"(?![A-Za-z])" if command[-1].isalpha() else ""  # \le, not \left
        text = re.sub(re.escape(command) + after, char, text)
    return re.sub(r"(?<!\w)\*([^*\s][^*]*)\*(?!\w)", r"\1", text)


def first_sentence(doc: str | None) -> str:
    """The whole first sentence of a docstring, on one line, markup made plain.

    The sentence ends at a ``.``, ``!`` or ``?`` followed by a space and a capital
    letter (not after an abbreviation such as "sec." or "et al."), or at the end of the
    first paragraph; it is never cut in the middle. A paragraph ending in ``:`` leads
    into a displayed formula, left out: the colon becomes a period."""
    import inspect

    paragraph = inspect.cleandoc(doc or "").split("\n\n")[0]
    text = " ".join(paragraph.split())
    for match in re.finditer(r"[.!?](?=\s+[A-Z])", text):
        head = text[: match.end()]
        if not head.lower().endswith(_ABBREVIATIONS):
            text = head
            break
    if text.endswith(":"):
        text = text[:-1] + "."
    return _plain(text)


def readable(value) -> str:
    """A default value as a user would write it: ``float32`` for a dtype, a callable by
    its name, a gradient transformation by the factory that made it."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return repr(value)
    if isinstance(value, type):  # a dtype given as its scalar type: jnp.float32
        import numpy as np

        dtype = np.dtype(value)
        return value.__name__ if dtype == np.dtype(object) else dtype.name
    update = getattr(value, "update", None)
    if callable(getattr(value, "init", None)) and callable(update):
        maker = getattr(update, "__qualname__", "").split(".<locals>")[0]
        return f"{maker}(...)" if maker and maker != "update" else type(value).__name__
    if callable(value):
        return getattr(value, "__name__", type(value).__name__)
    text = repr(value)
    return text if len(text) <= 32 and not text.startswith("<") else type(value).__name__


def signature_line(name: str, arguments: dict) -> str:
    """``name(required, other=default, ...)``."""
    import inspect

    shown = [arg if default is inspect.Parameter.empty else f"{arg}={readable(default)}"
             for arg, default in arguments.items()]
    return f"{name}({', '.join(shown)})"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="list only these optimizers (default: all)")


def run(args: argparse.Namespace) -> int:
    import shutil

    from jaxgd.commands.arguments import check_names
    from jaxgd.core.hyperparams import hyperparam_names
    from jaxgd.optimizers.catalog import OPTIMIZERS

    names = check_names("NAME", args.names or None, OPTIMIZERS)
    width = min(shutil.get_terminal_size((100, 24)).columns, 100)
    for name in names:
        factory = OPTIMIZERS[name]
        line = signature_line(name, hyperparam_names(factory))
        print(textwrap.fill(line, width, subsequent_indent=" " * (len(name) + 1),
                            break_on_hyphens=False, break_long_words=False))
        print(textwrap.fill(first_sentence(factory.__doc__), width, initial_indent="    ",
                            subsequent_indent="    ", break_on_hyphens=False,
                            break_long_words=False))
    return 0
