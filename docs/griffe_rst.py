"""A griffe extension: turn the reST of jaxgd's docstrings into the Markdown mkdocstrings renders.

The docstrings are Google style with reST inside (as optax's and JAX's are):

* ``.. math::`` blocks become ``$$ ... $$`` and ``:math:`x``` becomes ``$x$``, which
  ``pymdownx.arithmatex`` hands to MathJax;
* ``:func:``, ``:class:``, ``:data:``, ``:attr:``, ``:meth:`` and ``:mod:`` roles become code
  that links to the object's entry in the API reference. The link names the object's
  canonical path (where it is defined), so ``:func:`jaxgd.sweep``` reaches the function even
  though griffe's ``jaxgd.sweep`` is the subpackage of that name. Links are *optional*
  autorefs: a role naming something the reference does not render (a private helper, an
  optax function) is shown as code, not as a broken link;
* ```text <url>`_`` links become Markdown links, and a paragraph ending in ``::`` opens a
  code block.
"""

from __future__ import annotations

import html
import re
import sys
import textwrap
from pathlib import Path

import griffe

sys.path.insert(0, str(Path(__file__).parent))
from api_names import resolve  # noqa: E402

_ROLE = re.compile(r":(func|class|data|attr|meth|mod|obj|exc|const):`([^`]+)`")
_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_LINK = re.compile(r"`([^`<]+?)\s*<(https?://[^>]+)>`__?")
_DIRECTIVE = re.compile(r"^(\s*)\.\. math::\s*(.*)$")
_LITERAL = re.compile(r"^(\s*)(.*[^:\s]\s*)?::\s*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block(lines: list[str], start: int, indent: int) -> tuple[list[str], int]:
    """The lines after ``start`` indented deeper than ``indent`` (blank ones included),
    dedented, and the index after them."""
    end = start
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > indent):
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    while start < end and not lines[start].strip():
        start += 1
    return textwrap.dedent("\n".join(lines[start:end])).split("\n"), end


def _blocks(text: str) -> str:
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        line = lines[i]
        math = _DIRECTIVE.match(line)
        literal = None if math else _LITERAL.match(line)
        if math:
            pad = math.group(1)
            body, i = _block(lines, i + 1, len(pad))
            if math.group(2):
                body = [math.group(2), *body]
            # reST separates equations of one directive by blank lines; $$ blocks cannot
            # hold a blank line, so each equation gets its own
            equations = "\n".join(body).strip().split("\n\n")
            for eq in map(_multiline, equations):
                out += [f"{pad}$$", *(f"{pad}{e}" for e in eq.strip().split("\n")), f"{pad}$$", ""]
            if out and out[-1] == "" and i < len(lines) and not lines[i].strip():
                out.pop()
            continue
        if literal and i + 1 < len(lines) and not lines[i + 1].strip():
            pad = literal.group(1)
            body, end = _block(lines, i + 1, len(pad))
            if any(b.strip() for b in body):
                head = (literal.group(2) or "").rstrip()
                if head:
                    out += [f"{pad}{head}:", ""]
                out += [f"{pad}```python", *(f"{pad}{b}" if b else "" for b in body), f"{pad}```"]
                i = end
                continue
        out.append(line)
        i += 1
    return "\n".join(out)


def _multiline(equation: str) -> str:
    """Sphinx sets an equation with ``\\\\`` line breaks in an environment; MathJax needs it
    too (``aligned`` where the lines align on ``&``, else ``gathered``)."""
    if "\\\\" not in equation or "\\begin" in equation:
        return equation
    env = "aligned" if "&" in equation else "gathered"
    return f"\\begin{{{env}}}\n{equation.strip()}\n\\end{{{env}}}"


def _role(match: re.Match, module: str) -> str:
    text = match.group(2).strip()
    title, target = text, text
    explicit = re.fullmatch(r"(.+?)\s*<([^>]+)>", text)
    if explicit:
        title, target = explicit.group(1), explicit.group(2)
    if target.startswith(("~", "!")):
        target = target[1:]
        if not explicit:
            title = target.rsplit(".", 1)[-1]
    target = target.rstrip("()")
    candidates = [target] if target.startswith("jaxgd") else [
        f"{module}.{target}", f"jaxgd.{target}", target]
    canonical = next((c for c in map(resolve, candidates) if c), None)
    code = f"<code>{html.escape(title)}</code>"
    if canonical is None:
        return code
    return f'<autoref identifier="{canonical}" optional>{code}</autoref>'


def _math_role(match: re.Match) -> str:
    return "$" + " ".join(match.group(1).split()) + "$"


def convert(text: str, module: str = "jaxgd") -> str:
    """``text`` (one docstring, reST-ish) as Markdown with arithmatex math."""
    text = _blocks(text)
    text = _MATH_ROLE.sub(_math_role, text)
    text = _ROLE.sub(lambda m: _role(m, module), text)
    return _LINK.sub(r"[\1](\2)", text)


class RstToMarkdown(griffe.Extension):
    """Rewrite every docstring of the loaded package once, before mkdocstrings parses it."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        seen: set[int] = set()
        self._walk(pkg, seen)

    def _walk(self, obj: griffe.Object, seen: set[int]) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if obj.docstring is not None:
            module = obj.module.path if not obj.is_module else obj.path
            obj.docstring.value = convert(obj.docstring.value, module)
        for member in obj.members.values():
            if not member.is_alias:
                self._walk(member, seen)
