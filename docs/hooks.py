"""mkdocs hooks: the generated parts of the pages.

* Before a build, the figures (``docs/gen_figures.py``) are made if one is missing.
* In a page's Markdown, three markers are expanded (before mkdocstrings reads it):

  - ``<!-- api: MODULE [PREFIX ...] -->``: one ``::: path`` entry for every public name
    of ``MODULE`` (read from its files, see ``api_names.py``) defined under one of the
    ``PREFIX`` es (default: ``MODULE``), grouped by the module that defines them;
  - ``<!-- readme: HEADING -->``: the README's section under that heading (``intro``: the
    text before the first section), its links to repository files mapped to the pages;
  - ``<!-- results: -->``: ``benchmarks/RESULTS.md``, its plots taken from the copies
    ``gen_figures.py`` makes in ``docs/figures/benchmarks/``;
  - ``<!-- cli-help: COMMAND -->``: the ``--help`` text of ``jaxgd COMMAND`` (``-``: of
    ``jaxgd`` itself), run at build time.
"""

from __future__ import annotations

import ast
import logging
import re
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS))

import api_names  # noqa: E402
import gen_figures  # noqa: E402

_log = logging.getLogger("mkdocs.hooks.jaxgd")

_MARKER = re.compile(r"^<!--\s*(api|readme|cli-help|results):\s*(.*?)\s*-->\s*$", re.M)

#: README links to repository files, as pages of the site (others keep their text only)
_README_LINKS = {"benchmarks/RESULTS.md": "benchmarks.md"}
#: README in-page anchors, as the page holding that section
_README_ANCHORS = {
    "#several-devices-and-hosts": "devices.md",
    "#sweeps-jaxgdsweep": "sweeps.md",
    "#training-jaxgdfit": "fit.md",
    "#the-variants": "optimizers.md",
}


def on_pre_build(config, **kwargs) -> None:
    if gen_figures.missing():
        gen_figures.main(log=_log.info)
    else:
        gen_figures.copy_benchmark_plots()


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    depth = page.file.src_uri.count("/")
    rendered: set[str] = set()  # an object twice on a page would give two equal anchors
    return _MARKER.sub(lambda m: _expand(m.group(1), m.group(2), depth, rendered), markdown)


def _expand(kind: str, argument: str, depth: int, rendered: set[str]) -> str:
    if kind == "api":
        module, *prefixes = argument.split()
        return _api(module, prefixes or [module], rendered)
    if kind == "readme":
        return _readme(argument, depth)
    if kind == "results":
        return _results(depth)
    return _cli_help(argument)


def _module_title(module: str) -> str:
    """The first sentence of a module's docstring, as a section title."""
    files = api_names._module_files(module)
    doc = ast.get_docstring(ast.parse(files[0].read_text())) if files else None
    first = (doc or module).strip().split("\n\n")[0].replace("\n", " ")
    return re.split(r"(?<=[^.]\.)\s|:\s", first)[0].rstrip(".")


def _api(module: str, prefixes: list[str], seen: set[str]) -> str:
    groups: dict[str, list[tuple[str, str]]] = {}
    for name in api_names.public_names(module):
        public = f"{module}.{name}"
        canonical = api_names.resolve(public)
        if canonical is None:
            raise ValueError(f"docs: {public} is exported but its definition was not found")
        if api_names.is_module(canonical) or canonical in seen:
            continue
        if not any(canonical == p or canonical.startswith(p + ".") for p in prefixes):
            continue
        seen.add(canonical)
        groups.setdefault(canonical.rpartition(".")[0], []).append((public, canonical))
    if not groups:
        raise ValueError(f"docs: no public name of {module} is defined under {prefixes}")
    out = []
    if prefixes == [module]:  # a subpackage's page opens with its docstring
        out.append(f"::: {module}\n    options:\n      members: false\n"
                   "      show_root_heading: false\n      show_root_toc_entry: false\n")
    for defining, entries in groups.items():
        out.append(f"## {_module_title(defining)}\n")
        out.append(f"<small>`{defining}`</small>\n")
        for public, canonical in entries:
            # the canonical path always resolves in griffe (a public path may name a
            # subpackage that shadows it); the heading shows the name users type
            out.append(f'::: {canonical}\n    options:\n      heading: "{public}"\n'
                       f'      toc_label: "{public.rpartition(".")[2]}"\n')
    return "\n".join(out)


def _readme_sections() -> dict[str, str]:
    sections, heading, lines, fenced = {}, "intro", [], False
    for line in (ROOT / "README.md").read_text().split("\n"):
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and re.match(r"#{1,2} ", line):
            sections[heading] = "\n".join(lines).strip()
            heading, lines = line.lstrip("#").strip(), []
            continue
        lines.append(line)
    sections[heading] = "\n".join(lines).strip()
    return sections


def _readme(heading: str, depth: int) -> str:
    sections = _readme_sections()
    if heading not in sections:
        raise ValueError(f"docs: README.md has no section {heading!r}; it has {list(sections)}")
    up = "../" * depth

    def link(match: re.Match) -> str:
        text, target = match.group(1), match.group(2)
        if re.match(r"[a-z]+://", target):
            return match.group(0)
        if target in _README_LINKS:
            return f"[{text}]({up}{_README_LINKS[target]})"
        if target in _README_ANCHORS:
            return f"[{text}]({up}{_README_ANCHORS[target]})"
        return text

    return re.sub(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)", link, sections[heading])


def _results(depth: int) -> str:
    text = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    text = re.sub(r"^# .*\n", "", text, count=1)  # the page has its own title
    return re.sub(r"\]\(plots/", f"]({'../' * depth}figures/benchmarks/", text)


def _cli_help(command: str) -> str:
    args = [] if command == "-" else [command]
    run = subprocess.run([sys.executable, "-c", "from jaxgd.cli import main; main()", *args,
                          "--help"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    if run.returncode != 0:
        raise RuntimeError(f"docs: `jaxgd {' '.join(args)} --help` failed:\n{run.stderr}")
    return f"```text\n$ jaxgd {' '.join([*args, '--help'])}\n{run.stdout.rstrip()}\n```"
