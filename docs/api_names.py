"""Where each public name of jaxgd is defined, read from the source files without importing.

The API reference and the cross-references of the docstrings need, for a name such as
``jaxgd.sweep``, the object it means at run time (the function ``jaxgd.sweep.run.sweep``,
not the subpackage of the same name that griffe, reading files, would pick). Reading the
files statically keeps this true whether ``jaxgd/__init__.py`` imports its names or loads
them lazily from a ``__init__.pyi`` stub: both files are read and their bindings merged.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "jaxgd"


def _module_files(module: str) -> list[Path]:
    base = ROOT.joinpath(*module.split("."))
    files = [base / "__init__.py", base / "__init__.pyi"] if base.is_dir() else [
        base.with_suffix(".py"), base.with_suffix(".pyi")]
    return [f for f in files if f.is_file()]


def is_module(module: str) -> bool:
    return bool(_module_files(module))


def _statements(body: list[ast.stmt]):
    """The module-level statements, those under ``if`` / ``try`` / ``with`` included."""
    for node in body:
        yield node
        for field in ("body", "orelse", "finalbody"):
            if isinstance(node, (ast.If, ast.Try, ast.With)) and hasattr(node, field):
                yield from _statements(getattr(node, field))
        for handler in getattr(node, "handlers", []):
            yield from _statements(handler.body)


@functools.cache
def bindings(module: str) -> dict[str, tuple]:
    """``name -> ("def", canonical path)`` or ``("import", (source module, name there))``."""
    found: dict[str, tuple] = {}
    package = module if (ROOT.joinpath(*module.split(".")) / "__init__.py").exists() or (
        ROOT.joinpath(*module.split(".")) / "__init__.pyi").exists() else module.rpartition(".")[0]
    for path in _module_files(module):
        for node in _statements(ast.parse(path.read_text()).body):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found[node.name] = ("def", f"{module}.{node.name}")
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        found[target.id] = ("def", f"{module}.{target.id}")
            elif isinstance(node, ast.ImportFrom):
                source = node.module or ""
                if node.level:
                    parts = package.split(".")
                    prefix = ".".join(parts[: len(parts) - node.level + 1])
                    source = f"{prefix}.{source}" if source else prefix
                for alias in node.names:
                    found[alias.asname or alias.name] = ("import", (source, alias.name))
    return found


def public_names(module: str) -> list[str]:
    """The names ``module`` exports: its ``__all__`` if it has one, else every name it
    binds by ``from x import y as y`` or defines, without a leading underscore."""
    for path in _module_files(module):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
                try:
                    return list(ast.literal_eval(node.value))
                except ValueError:
                    continue
    names = []
    for name, (kind, _) in bindings(module).items():
        if name.startswith("_") or name.isupper() and kind == "def":
            continue
        names.append(name)
    return names


def _lookup(module: str, name: str, seen: frozenset = frozenset()) -> str | None:
    """The canonical path of ``module.name`` as Python sees it at run time: a name the
    module binds (by definition or import) hides a submodule of the same name."""
    if (module, name) in seen:
        return None
    binding = bindings(module).get(name)
    if binding is not None and binding[0] == "def":
        return binding[1]
    if binding is not None:
        source, original = binding[1]
        if (source, original) != (module, name):
            return _lookup(source, original, seen | {(module, name)})
    return f"{module}.{name}" if is_module(f"{module}.{name}") else None


@functools.cache
def resolve(dotted: str) -> str | None:
    """The canonical path of ``dotted`` (a module, a definition, or a member of a class),
    following re-exports as Python does at run time; ``None`` when it is not in jaxgd."""
    parts = dotted.split(".")
    if parts[0] != PACKAGE:
        return None
    current = PACKAGE
    for k, name in enumerate(parts[1:], start=1):
        target = _lookup(current, name)
        if k + 1 < len(parts) and is_module(f"{current}.{name}") and not (
                target and is_module(target)):
            # ``jaxgd.sweep.optimizer_paths``: the subpackage, not the function it exports
            target = f"{current}.{name}"
        if target is None:
            return None
        if not is_module(target):
            # a definition: what follows is one of its members
            return ".".join([target, *parts[k + 1:]])
        current = target
    return current
