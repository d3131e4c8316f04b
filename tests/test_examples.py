"""Every example runs to completion (each asserts its own result)."""

import pathlib
import subprocess
import sys

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).parent.parent / "examples").glob("*.py"))
SLOW = {"mlp_digits.py", "lr_sweep.py", "multistart.py"}


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=pytest.mark.slow) if p.name in SLOW else p for p in EXAMPLES],
    ids=lambda p: p.name,
)
def test_example_runs(path):
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          timeout=300, cwd=path.parent)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
