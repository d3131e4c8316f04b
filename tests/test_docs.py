"""The docs site: the docstring converter (reST math and roles to Markdown), the static
reading of the public API, and (slow) the strict build that CI runs."""

import importlib
import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "docs"))

import api_names  # noqa: E402


def _runtime_path(obj):
    if inspect.ismodule(obj):
        return obj.__name__
    obj = inspect.unwrap(obj)
    return f"{obj.__module__}.{obj.__qualname__}"


@pytest.mark.parametrize("module", ["jaxgd", "jaxgd.schedules", "jaxgd.losses",
                                    "jaxgd.problems", "jaxgd.plot", "jaxgd.sweep"])
def test_static_names_are_those_python_imports(module):
    """What the API pages list, read from the files without importing, is what the
    import gives: the same names, each at the module and name it is defined with."""
    pytest.importorskip("matplotlib")
    imported = importlib.import_module(module)
    names = api_names.public_names(module)
    assert names, module
    checked = 0
    for name in names:
        obj = getattr(imported, name)  # an exported name that does not import fails here
        if not (inspect.ismodule(obj) or inspect.isfunction(inspect.unwrap(obj))
                or inspect.isclass(obj)) or not _runtime_path(obj).startswith("jaxgd"):
            continue  # type aliases (``OptState = Any``) and optax's classes
        assert api_names.resolve(f"{module}.{name}") == _runtime_path(obj), name
        checked += 1
    assert checked > 0


def test_a_name_hides_its_subpackage_as_at_run_time():
    import jaxgd

    assert api_names.resolve("jaxgd.sweep") == _runtime_path(jaxgd.sweep)
    assert api_names.resolve("jaxgd.fit") == _runtime_path(jaxgd.fit)
    # a path that goes on past the function means the subpackage
    assert api_names.resolve("jaxgd.sweep.SweepResult") == _runtime_path(jaxgd.SweepResult)
    assert api_names.resolve("jaxgd.FitResult.losses") == (
        _runtime_path(jaxgd.FitResult) + ".losses")
    assert api_names.resolve("jaxgd.no_such_name") is None
    assert api_names.resolve("optax.adam") is None


def test_a_lazy_stub_is_read_like_the_imports(tmp_path, monkeypatch):
    """With ``__init__.py`` loading lazily from ``__init__.pyi``, the names come from the stub."""
    package = tmp_path / "jaxgd"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text(
        "import lazy_loader as _lazy\n"
        "__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)\n")
    (package / "__init__.pyi").write_text("from .sub.impl import run as run\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "impl.py").write_text("def run():\n    pass\n")
    monkeypatch.setattr(api_names, "ROOT", tmp_path)
    api_names.bindings.cache_clear()
    api_names.resolve.cache_clear()
    try:
        assert api_names.public_names("jaxgd") == ["run"]
        assert api_names.resolve("jaxgd.run") == "jaxgd.sub.impl.run"
    finally:
        api_names.bindings.cache_clear()
        api_names.resolve.cache_clear()


def test_math_becomes_arithmatex():
    griffe_rst = pytest.importorskip("griffe_rst", exc_type=ImportError)
    text = ("Adam.\n\n.. math::\n   m_t = \\beta_1 m_{t-1}\n\n   v_t = v\n\nArgs:\n"
            "  b1: :math:`\\beta_1\n    \\in [0, 1)`.\n")
    out = griffe_rst.convert(text)
    assert "$$\nm_t = \\beta_1 m_{t-1}\n$$\n\n$$\nv_t = v\n$$\n\nArgs:" in out
    assert "b1: $\\beta_1 \\in [0, 1)$." in out
    lines = griffe_rst.convert(".. math::\n   a &= b \\\\\n   c &= d\n")
    assert "\\begin{aligned}\na &= b \\\\\nc &= d\n\\end{aligned}" in lines


def test_roles_link_to_where_the_object_is_defined():
    griffe_rst = pytest.importorskip("griffe_rst", exc_type=ImportError)
    import jaxgd

    out = griffe_rst.convert("See :func:`jaxgd.sweep` and :class:`~jaxgd.FitResult`.")
    assert f'identifier="{_runtime_path(jaxgd.sweep)}" optional><code>jaxgd.sweep</code>' in out
    assert f'identifier="{_runtime_path(jaxgd.FitResult)}" optional><code>FitResult</code>' in out
    # relative to the docstring's module, and outside jaxgd: code without a link
    out = griffe_rst.convert(":func:`fit` or :func:`optax.adam`", "jaxgd.train")
    assert f'identifier="{_runtime_path(jaxgd.fit)}"' in out
    assert out.endswith(" or <code>optax.adam</code>")
    assert griffe_rst.convert("`Paper <https://arxiv.org/abs/1>`_, 2017") == (
        "[Paper](https://arxiv.org/abs/1), 2017")


@pytest.mark.slow
def test_the_docs_build_strictly(tmp_path):
    """``mkdocs build --strict`` (as CI runs it): no warning from any page or docstring."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or "mkdocs"
    run = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    page = (tmp_path / "site" / "api" / "transforms" / "index.html").read_text()
    assert '<div class="arithmatex">' in page and ":math:" not in page
    assert 'id="jaxgd.transforms.rms.scale_by_adagrad"' in page
    assert (tmp_path / "site" / "figures" / "paths.png").is_file()
