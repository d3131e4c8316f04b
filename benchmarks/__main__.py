"""``python -m benchmarks``: every suite of :data:`SUITES`, each in a fresh process (each
also runs alone, ``python -m benchmarks.<suite>``), then the summary. A full run rewrites
each suite's section of ``benchmarks/RESULTS.md`` and the ``summary`` section at its top
(about 25 min on 2 cores); ``--quick`` runs tiny sizes and writes nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import harness

SUITES = ["update_step", "many_leaf", "scaling", "fit_loop", "sweep", "sweep_regimes",
          "sharding", "parameter_free"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes; writes nothing")
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(SUITES))
    parser.add_argument("--results", type=Path, default=harness.RESULTS,
                        help="results file to update")
    args = parser.parse_args(argv)
    suites = [s for s in (args.only or "").split(",") if s] or SUITES
    if unknown := set(suites) - set(SUITES):
        parser.error(f"unknown suites: {sorted(unknown)}")
    flags = ["--results", str(args.results)] + (["--quick"] if args.quick else [])
    start, rows, failed = time.perf_counter(), [], []
    for name in suites:
        print(f"\n=== suite {name} ===", flush=True)
        began = time.perf_counter()
        found, _ = harness.run_child(name, flags)
        seconds = time.perf_counter() - began
        if not found:  # one suite failing must not lose the others' results
            failed.append(name)
            print(f"=== suite {name}: FAILED after {seconds:.0f} s ===", flush=True)
            continue
        rows += found[-1]["rows"]
        print(f"=== suite {name}: done in {seconds:.0f} s ===", flush=True)
    elapsed = time.perf_counter() - start
    print(f"\n{len(suites) - len(failed)} of {len(suites)} suites ran, {elapsed:.0f} s"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""), flush=True)
    if not (args.quick or args.only):
        harness.summary(rows, failed, elapsed, args.results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
