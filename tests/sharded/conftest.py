"""Tests that need 4 devices: run by ``tests/test_sharding.py`` in a child process with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``, or by hand::

    XLA_FLAGS=--xla_force_host_platform_device_count=4 pytest tests/sharded
"""

import jax
import pytest
from jax.sharding import AxisType

if jax.device_count() < 4:  # collected only with 4 devices (see tests/conftest.py)
    raise RuntimeError("tests/sharded needs 4 devices; see this file's docstring.")


@pytest.fixture(params=[AxisType.Auto, AxisType.Explicit], ids=["auto", "explicit"])
def axis_type(request):
    """Both kinds of mesh: shardings found by XLA's propagation, and shardings in types."""
    return request.param
