"""The README's Python examples run, in order, in one namespace as a reader would run
them; those that need several devices or processes are run by tests/sharded and
tests/test_multihost.py instead, and the mesh one is skipped here."""

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
SEVERAL_DEVICES = ("jax.distributed", "make_mesh")


def test_the_readme_examples_run(tmp_path):
    pytest.importorskip("flax")
    pytest.importorskip("orbax.checkpoint")
    from flax import nnx

    rng = np.random.RandomState(0)
    namespace = {  # what the text around the fragments says they use
        "nnx": nnx, "path": tmp_path / "checkpoint",
        "X_val": rng.randn(64, 3).astype(np.float32), "y_val": rng.randn(64).astype(np.float32),
    }
    ran = 0
    for block in BLOCKS:
        if any(word in block for word in SEVERAL_DEVICES):
            continue
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
        ran += 1
    assert ran >= 7, ran
