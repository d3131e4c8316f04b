"""The 4-device tests (``tests/sharded``), run in a child process whose CPU is split into
4 devices (``XLA_FLAGS`` must be set before jax starts, and this process has 1 device)."""

import os
import subprocess
import sys
from pathlib import Path

SHARDED = Path(__file__).parent / "sharded"


def test_the_4_device_tests_pass():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         str(SHARDED)], env=env, capture_output=True, text=True, timeout=600,
        cwd=SHARDED.parent.parent)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
