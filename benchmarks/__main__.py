"""``python -m benchmarks``: run every benchmark suite, then summarise the targets.

Suites, in order (each also runs alone, ``python -m benchmarks.<suite>``):

* ``update_step``: one jitted update step of every alias with an optax twin, jaxgd vs
  optax, on big-leaf, ResNet-like and many-leaf trees, with the achieved bandwidth against
  a same-size elementwise pass;
* ``many_leaf``: the 600-leaf MLP and the 1000 x 1k tree through ``fit``'s flat fast path
  vs optax's per-leaf loops, and compile times against leaf count;
* ``scaling``: Adam step time against parameter count and leaf count (PNG plots in
  ``benchmarks/plots/``);
* ``fit_loop``: ``jaxgd.fit`` vs a Python loop and a hand-written scan;
* ``sweep``: ``jaxgd.sweep`` vs a hand-written optax vmap;
* ``sweep_regimes``: mini-batch and one-shot (first-call) sweeps vs the hand-written optax
  program, and the time per step against the dataset size (2,400 to 240,000 examples);
* ``sharding``: ``jaxgd.fit`` on params sharded over 4 simulated CPU devices against 1
  device: per-device bytes of params and Adam state, param-sized all-gathers in the
  compiled program, and the time per step.

Each suite runs in a fresh Python process of its own (as a user's program would run it:
the per-call costs that ``fit_loop`` and ``sweep`` measure are not inflated by the
objects and compile caches the suites before it leave behind). The full run rewrites
each suite's section of ``benchmarks/RESULTS.md`` (machine,
versions, date) and the ``summary`` section at its top: each target, the measured
figure, met or not. ``--quick`` runs every suite with tiny sizes (under 90 s on two
cores) and writes nothing.

Run (from the repository root)::

    .venv/bin/python -m benchmarks              # everything, ~20 min on 2 cores
    .venv/bin/python -m benchmarks --quick      # smoke run, writes nothing
    .venv/bin/python -m benchmarks --only update_step,scaling
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from benchmarks import timing
from benchmarks.ratios import Target

SUITES = ["update_step", "many_leaf", "scaling", "fit_loop", "sweep", "sweep_regimes",
          "sharding", "parameter_free"]
OWN = {"update_step", "many_leaf", "scaling"}  # suites that return a Report
SUMMARY = "summary"
DONE = "=== suite {name}: done in {seconds:.0f} s ==="
FAILED = "=== suite {name}: FAILED after {seconds:.0f} s ==="


def run_suite(name: str, quick: bool, write: bool, results: Path) -> list[Target] | None:
    """Run one suite in this process; return its targets (``None`` when it reports them
    only in its own section)."""
    module = importlib.import_module(f"benchmarks.{name}")
    flags = ["--quick"] if quick else []
    if name in OWN:
        argv = [*flags, "--results", str(results)]
        args = module.parse_args(argv)
        kwargs = {"write_plots": write} if name == "scaling" else {}
        report = module.run(args, **kwargs)
        if write:
            timing.write_results_section(module.SECTION, report.body, results)
            print(f"wrote section '{module.SECTION}' of {results}", flush=True)
        return report.targets
    argv = [*flags, "--results", str(results)] + ([] if write else ["--no-write"])
    code = module.main(argv)
    if code:
        raise RuntimeError(f"{name}.main returned {code}")
    return None


def run_suite_in_child(name: str, quick: bool, write: bool,
                       results: Path) -> list[Target] | None:
    """:func:`run_suite` in a fresh ``python -m benchmarks --child-suite`` process; its
    output goes to this process's stdout, its targets come back as JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "targets.json"
        argv = [sys.executable, "-m", "benchmarks", "--child-suite", name,
                "--results", str(results), "--targets-json", str(out)]
        argv += (["--quick"] if quick else []) + ([] if write else ["--no-write"])
        subprocess.run(argv, check=True, cwd=Path(__file__).resolve().parent.parent)
        found = json.loads(out.read_text())
    return None if found is None else [Target(**t) for t in found]


def child_main(args: argparse.Namespace) -> int:
    write = not (args.quick or args.no_write)
    found = run_suite(args.child_suite, args.quick, write, args.results)
    args.targets_json.write_text(json.dumps(
        None if found is None else [dataclasses.asdict(t) for t in found]))
    return 0


def section_text(name: str, path: Path) -> str:
    text = path.read_text() if path.exists() else ""
    m = re.search(rf"<!-- begin {re.escape(name)} -->\n(.*?)<!-- end {re.escape(name)} -->",
                  text, re.DOTALL)
    return m.group(1) if m else ""


def verdict_lines(name: str, path: Path) -> list[str]:
    """The bold verdict lines a suite wrote in its own section (``**...**``)."""
    return [line.strip().strip("*").strip() for line in section_text(name, path).splitlines()
            if line.startswith("**") and line.rstrip().endswith("**")]


def ensure_summary_on_top(path: Path) -> None:
    """Put an empty ``summary`` section right after the file's title, once, so that
    :func:`timing.write_results_section` replaces it in place (it appends new ones)."""
    begin = f"<!-- begin {SUMMARY} -->"
    text = path.read_text() if path.exists() else ""
    if begin in text:
        return
    block = f"{begin}\n(summary pending)\n<!-- end {SUMMARY} -->\n"
    first = text.find("<!-- begin ")
    if not text:
        timing.write_results_section(SUMMARY, "(summary pending)", path)
        return
    text = text + "\n" + block if first < 0 else text[:first] + block + "\n" + text[first:]
    tmp = path.with_name(f".{path.name}.summary.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def summary_body(targets: dict[str, list[Target]], others: dict[str, list[str]],
                 failed: Sequence[str], elapsed: float, info: str, command: str) -> str:
    rows = [[t.name, t.target, t.measured, t.verdict, t.note or ""]
            for suite in SUITES for t in targets.get(suite, [])]
    lines = [
        "## Summary: every target of the performance issue",
        "",
        *(f"- {line}" for line in info.splitlines()),
        f"- reproduce (repository root): `.venv/bin/python -m benchmarks` (this run: "
        f"`{command}`, {elapsed / 60:.1f} min for every suite)",
        "",
        "Ratios are jaxgd / optax (or fit / optax loop) measured interleaved in one "
        "process, given as *median of the per-round ratios / ratio of the 10th "
        "percentiles*; a target is met when both estimators meet it. Details, tables and "
        "the analysis of every figure are in the sections below.",
        "",
        timing.markdown_table(["measurement", "target", "measured", "verdict", "why / notes"],
                              rows, align="lllll"),
    ]
    for suite, found in others.items():
        if found:
            lines += ["", f"`{suite}` (its own verdicts, as written in its section below):", ""]
            lines += [f"- {line}" for line in found]
    if failed:
        lines += ["", f"**Suites that failed in this run: {', '.join(failed)}.**"]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="every suite with tiny sizes (< 90 s); writes nothing")
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(SUITES))
    parser.add_argument("--no-write", action="store_true", help="write nothing")
    parser.add_argument("--results", type=Path, default=timing.RESULTS_PATH,
                        help="results file to update")
    parser.add_argument("--child-suite", choices=SUITES, help=argparse.SUPPRESS)
    parser.add_argument("--targets-json", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_suite:
        return child_main(args)
    suites = SUITES
    if args.only:
        suites = [s for s in args.only.split(",") if s]
        unknown = set(suites) - set(SUITES)
        if unknown:
            raise SystemExit(f"unknown suites: {sorted(unknown)}")
    write = not (args.quick or args.no_write)
    start = time.perf_counter()
    targets: dict[str, list[Target]] = {}
    others: dict[str, list[str]] = {}
    failed: list[str] = []
    for name in suites:
        print(f"\n=== suite {name} ===", flush=True)
        t0 = time.perf_counter()
        try:
            found = run_suite_in_child(name, args.quick, write, args.results)
        except Exception:  # one suite failing must not lose the others' results
            traceback.print_exc()
            failed.append(name)
            print(FAILED.format(name=name, seconds=time.perf_counter() - t0), flush=True)
            continue
        if found is None:
            others[name] = verdict_lines(name, args.results) if write else []
        else:
            targets[name] = found
        print(DONE.format(name=name, seconds=time.perf_counter() - t0), flush=True)
    elapsed = time.perf_counter() - start

    print("\n=== summary ===")
    for suite in suites:
        for t in targets.get(suite, []):
            print(f"{suite}: {t.line()}")
    print(f"{len(suites) - len(failed)} of {len(suites)} suites ran, {elapsed:.0f} s"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""), flush=True)
    if write and not args.only:
        command = "python -m benchmarks" + (" " + " ".join(sys.argv[1:])).rstrip()
        ensure_summary_on_top(args.results)
        body = summary_body(targets, others, failed, elapsed, timing.machine_info(), command)
        timing.write_results_section(SUMMARY, body, args.results)
        print(f"wrote section '{SUMMARY}' of {args.results}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
