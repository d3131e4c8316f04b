"""The public API is the list in ``jaxgd/__init__.pyi``, loaded lazily: every name on it
must resolve, carry a docstring, and be the object its module defines."""

import importlib
import subprocess
import sys

import pytest

import jaxgd


@pytest.mark.parametrize("name", sorted(jaxgd.__all__))
def test_every_listed_name_resolves_to_a_documented_object(name):
    value = getattr(jaxgd, name)
    assert (getattr(value, "__doc__", None) or "").strip(), f"jaxgd.{name} has no docstring"


def test_a_function_named_like_its_subpackage_is_the_function():
    importlib.import_module("jaxgd.sweep.run")  # loads the subpackage jaxgd.sweep first
    assert callable(jaxgd.sweep) and jaxgd.sweep.__module__ == "jaxgd.sweep.run"


def test_importing_jaxgd_imports_no_jax_until_a_name_is_used():
    code = ("import sys, jaxgd; assert 'jax' not in sys.modules; jaxgd.adam; "
            "assert 'jax' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_optimizer"):
        jaxgd.no_such_optimizer  # noqa: B018
