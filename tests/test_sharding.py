"""The 4-device tests (``tests/sharded``), run in a child process whose CPU is split into
4 devices (``XLA_FLAGS`` must be set before jax starts, and this process has 1 device).
The child runs the default tier, or with ``-m slow`` the slow one."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SHARDED = Path(__file__).parent / "sharded"


def run_sharded_tests(marker):
    flags = os.environ.get("XLA_FLAGS", "")  # the test run's own (see conftest)
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count=4".strip()}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "-m", marker, str(SHARDED)], env=env, capture_output=True, text=True, timeout=600,
        cwd=SHARDED.parent.parent)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def test_the_4_device_tests_pass():
    run_sharded_tests("not slow")


@pytest.mark.slow
def test_the_slow_4_device_tests_pass():
    run_sharded_tests("slow")
