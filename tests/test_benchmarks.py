"""``python -m benchmarks --quick``: every suite runs, prints its table, and writes nothing."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUITES = ["update_step", "many_leaf", "scaling", "fit_loop", "sweep", "sweep_regimes",
          "sharding"]


# Over three minutes of one core: alone it would hold the default run past its bound.
@pytest.mark.slow
def test_quick_run_of_every_suite(tmp_path):
    results = tmp_path / "RESULTS.md"
    before = (ROOT / "benchmarks" / "RESULTS.md").read_bytes()
    plots = ROOT / "benchmarks" / "plots"
    plots_before = sorted(plots.glob("*")) if plots.exists() else []
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--results", str(results)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-4000:]
    for name in SUITES:
        assert f"=== suite {name}: done in" in out, f"{name} did not finish:\n{out[-3000:]}"
        start = out.index(f"=== suite {name} ===")
        end = out.index(f"=== suite {name}: done in")
        # each suite printed at least one Markdown table (a header rule such as |:---|---:|)
        assert re.search(r"^\|[:-]+\|", out[start:end], re.MULTILINE), f"{name}: no table"
    assert f"{len(SUITES)} of {len(SUITES)} suites ran" in out
    # a quick run writes nothing: not the results file it was pointed at, not the real
    # one, no plots
    assert not results.exists()
    assert (ROOT / "benchmarks" / "RESULTS.md").read_bytes() == before
    assert (sorted(plots.glob("*")) if plots.exists() else []) == plots_before
