"""``python -m benchmarks --quick``: every suite runs, prints its table, and writes nothing."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # benchmarks/ is a folder of the repository, not installed
SUITES = ["update_step", "many_leaf", "scaling", "fit_loop", "sweep", "sweep_regimes",
          "sharding", "parameter_free"]


# Minutes of one core: alone it would hold the default run past its bound.
@pytest.mark.slow
def test_quick_run_of_every_suite(tmp_path):
    results = tmp_path / "RESULTS.md"
    before = (ROOT / "benchmarks" / "RESULTS.md").read_bytes()
    plots = ROOT / "benchmarks" / "plots"
    plots_before = sorted(plots.glob("*")) if plots.exists() else []
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--results", str(results)],
        cwd=ROOT, capture_output=True, text=True, timeout=1200, env=env,
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


def test_write_section_replaces_only_its_own_and_puts_summary_first(tmp_path):
    from benchmarks import harness

    path = tmp_path / "RESULTS.md"
    harness.write_section("a", "first body", path)
    harness.write_section("b", "other body", path)
    harness.write_section("a", "second body", path)
    harness.write_section("summary", "top", path, first=True)
    text = path.read_text()
    assert text.index("<!-- begin summary -->") < text.index("<!-- begin a -->")
    assert text.index("<!-- begin a -->") < text.index("<!-- begin b -->")
    assert "second body" in text and "first body" not in text and "other body" in text
    assert text.count("<!-- end a -->") == 1


def test_a_target_is_met_only_when_both_estimators_meet_it():
    from benchmarks.harness import Figure, Target

    at_most = Target("suite", "key", "what", "<=", 1.05)
    assert at_most.verdict(Figure((1.0, 1.04), "")) == "met"
    assert at_most.verdict(Figure((1.06, 1.1), "")) == "NOT met"
    assert at_most.verdict(Figure((1.0, 1.1), "")).startswith("unclear")
    assert Target("suite", "key", "what", ">=", 3).verdict(Figure((2.0, 4.0), "")) != "met"
    assert Target("suite", "key", "what").verdict(Figure((), "x")) == "recorded"


def test_every_target_belongs_to_a_suite_and_is_unique():
    from benchmarks.__main__ import SUITES as RUN
    from benchmarks.harness import TARGETS

    assert RUN == SUITES
    assert {t.suite for t in TARGETS} <= set(SUITES)
    assert len({(t.suite, t.key) for t in TARGETS}) == len(TARGETS)


def test_summary_is_one_table_of_every_judged_row_on_top(tmp_path):
    from benchmarks import harness
    from benchmarks.harness import Figure

    path = tmp_path / "RESULTS.md"
    harness.write_section("sweep", "the sweep's own section", path)
    rows = harness.judged("sweep", {"vs_optax": Figure((0.99, 1.01), "0.99 / 1.01", "a note"),
                                    "vs_loop": Figure((2.5, 2.6), "2.5 / 2.6")})
    assert [r["verdict"] for r in rows] == ["unclear (re-run)", "met"]
    harness.summary(rows, ["sharding"], 60.0, path)
    text = path.read_text()
    assert text.index("<!-- begin summary -->") < text.index("<!-- begin sweep -->")
    assert "| sweep / optax vmap scan | <= 1" in text and "a note" in text
    assert "failed in this run: sharding" in text
