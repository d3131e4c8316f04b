"""The benchmark harness: timing, ratios, targets, child processes and the results file.

A suite is a module ``benchmarks.<suite>``: its docstring (a title line, then what is
measured and how to read it: its section's text), ``measure(quick) -> M`` (its cases,
timed), ``report(m, plots) -> (figures, blocks)`` (the figures :data:`TARGETS` judges, by
key, and the Markdown blocks of its section; PNGs go to ``plots`` in a full run) and
optionally ``child(part, quick)``, work for a child process (:func:`run_child`), and
``TIMED = False`` where its section reports no times.
:func:`main` runs one suite, ``python -m benchmarks`` all of them.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import import_module, metadata
from pathlib import Path
from typing import Any

import jax
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
LOW_PERCENTILE = 10
CHILD = "CHILD "
READING = ("Interleaved rounds in one process, order shuffled each round. Times: the 10th "
           "percentile of the rounds. Ratios: *median of the per-round ratios [IQR] / ratio of "
           "the 10th percentiles* (the first cancels drift slower than a round, the second "
           "preemption, which only adds time); a target is met when both meet it.")
_TITLE = ("# jaxgd benchmark results\n\nEach section below is written by one suite in "
          "`benchmarks/` and replaced whole when that suite is re-run with results writing "
          "on; the machine, versions and date are in each section.\n")


@dataclass(frozen=True)
class Timing:
    """One sample per round (seconds per call, or a dimensionless ratio)."""

    samples: np.ndarray

    def pct(self, q: float) -> float:
        return float(np.percentile(self.samples, q))

    median = property(lambda self: self.pct(50))
    low = property(lambda self: self.pct(LOW_PERCENTILE))

    def __add__(self, other: Timing) -> Timing:  # rounds of two runs, pooled
        return Timing(np.concatenate([self.samples, other.samples]))


def time_interleaved(fns: Mapping[str, Callable[[], Any]], repeats: int, inner: int = 1,
                     warmup: int = 2, seed: int = 0) -> dict[str, Timing]:
    """Time zero-argument callables side by side: ``warmup`` blocking calls each (the
    first compiles), then ``repeats`` rounds in which each runs ``inner`` times in a row,
    in an order shuffled every round, with the garbage collector off. Only the last result
    of a block is waited on, so the calls of a block must depend on each other (a step
    that consumes the previous one's output) or be synchronous."""
    for fn in fns.values():
        for _ in range(max(warmup, 1)):
            jax.block_until_ready(fn())
    samples: dict[str, list[float]] = {name: [] for name in fns}
    order, rng = list(fns), random.Random(seed)
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            rng.shuffle(order)
            for name in order:
                fn, start = fns[name], time.perf_counter()
                for _ in range(inner):
                    out = fn()
                jax.block_until_ready(out)
                samples[name].append((time.perf_counter() - start) / inner)
    finally:
        if enabled:
            gc.enable()
    return {name: Timing(np.asarray(s)) for name, s in samples.items()}


def time_compile(fn: Callable, *args: Any, **jit_kwargs: Any) -> tuple[float, Any]:
    """``(seconds, executable)`` of ``jax.jit(fn, **jit_kwargs).lower(*args).compile()``
    (a fresh jit: call it before the program is compiled elsewhere in the process)."""
    return time_lowering(lambda: jax.jit(fn, **jit_kwargs).lower(*args))


def time_lowering(lower: Callable[[], Any]) -> tuple[float, Any]:
    """``(seconds, executable)`` of ``lower().compile()`` (trace, lower and compile)."""
    start = time.perf_counter()
    compiled = lower().compile()
    return time.perf_counter() - start, compiled


def cpu_per_wall(fn: Callable[[], Any], calls: int = 3) -> float:
    """Median CPU seconds of this process per wall second of ``fn()``: the cores it kept
    busy."""
    ratios = []
    for _ in range(calls):
        wall, cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn())
        ratios.append((time.process_time() - cpu) / (time.perf_counter() - wall))
    return float(np.median(ratios))


@dataclass(frozen=True)
class Ratio:
    """``a / b`` by both estimators: per-round ratios and the ratio of the low quantiles."""

    paired: Timing
    low: float

    @classmethod
    def of(cls, t: Mapping[str, Timing], a: str, b: str) -> Ratio:
        return cls(Timing(t[a].samples / t[b].samples), t[a].low / t[b].low)

    @property
    def median(self) -> float:
        return self.paired.median

    def scaled(self, factor: float) -> Ratio:
        return Ratio(Timing(self.paired.samples * factor), self.low * factor)

    def worst(self) -> float:
        return max(self.median, self.low)

    def text(self, digits: int = 3, iqr: bool = True) -> str:
        """``median [IQR] / low-quantile ratio``."""
        p = self.paired
        spread = f" [{p.pct(25):.{digits}f}-{p.pct(75):.{digits}f}]" if iqr else ""
        return f"{p.median:.{digits}f}{spread} / {self.low:.{digits}f}"


@dataclass(frozen=True)
class Figure:
    """A measured figure: the values a target judges (all must pass), how it reads, and a
    short note for the summary."""

    values: tuple[float, ...]
    text: str
    note: str = ""

    @classmethod
    def ratio(cls, r: Ratio, note: str = "", digits: int = 3) -> Figure:
        return cls((r.median, r.low), r.text(digits, iqr=False), note)


@dataclass(frozen=True)
class Target:
    """One row of the targets table: which suite's figure, what it is, the bound."""

    suite: str
    key: str
    what: str
    op: str = ""  # "<=", ">=", "==", or "" for a figure that is recorded only
    bound: float = 0.0

    @property
    def goal(self) -> str:
        return f"{self.op} {self.bound:g}" if self.op else "recorded"

    def verdict(self, f: Figure) -> str:
        if not self.op:
            return "recorded"
        ok = [{"<=": v <= self.bound, ">=": v >= self.bound, "==": v == self.bound}[self.op]
              for v in f.values]
        return "met" if all(ok) else "NOT met" if not any(ok) else "unclear (re-run)"


#: Every target of the performance issues and every figure the summary records ("-"):
#: suite, figure key, op and bound, what is measured (the summary's row).
_TABLE = """
update_step   ratio         <= 1.05 update step jaxgd/optax, every alias, 1 x 16M and 10 x 1M
update_step   bw_gap        <= 1.3  bandwidth gap (elementwise / optimizer GB/s), big leaves
many_leaf     compile_step  -       compile, 1000 x 1,000, update step jaxgd / optax
many_leaf     compile_fit   -       compile, 1000 x 1,000, fit flat / fit per-leaf
many_leaf     mlp           <= 0.7  MLP 600 leaves: fit / optax python loop (Adam, per step)
many_leaf     tree          <= 0.25 1000 x 1,000: fit (flat) / optax update step, per step
many_leaf     compile_first <= 0.25 compile, 1000 x 1,000, Adam: fit first call / optax step
many_leaf     public_step   -       1000 x 1,000: public per-leaf update step jaxgd / optax
fit_loop      sgd_loop      >= 3    sgd: python loop / fit
fit_loop      sgd_scan      <= 1.1  sgd: fit / optax scan
fit_loop      adam_loop     >= 3    adam: python loop / fit
fit_loop      adam_scan     <= 1.1  adam: fit / optax scan
sweep         vs_optax      <= 1    sweep / optax vmap scan
sweep         vs_loop       >= 2    64 single runs / sweep
sweep         compile       <= 1.3  sweep compile 256 / 1 trials (first call, AOT jit(vmap(fit)))
sweep         devices       -       2-device speedup (first device / all devices)
sweep_regimes mb            <= 1.1  mini-batch sweep / hand-written, steady (24,000 x 20)
sweep_regimes mb_same       <= 1.1  mini-batch sweep / hand-written, same shuffle, steady
sweep_regimes mb_cold       <= 1.5  mini-batch sweep / hand-written, first call
sweep_regimes full_cold     <= 1.2  full-batch sweep / hand-written, first call (2,000 x 50)
sweep_regimes full          -       full-batch sweep / hand-written, steady
sweep_regimes big           <= 1.1  mini-batch sweep / hand-written at 240,000 examples
sweep_regimes big_same      <= 1.1  mini-batch sweep / hand-written, same shuffle, 240,000
sweep_regimes growth_fit    <= 1.5  vmap(fit): time per step, 240,000 / 2,400 examples
sweep_regimes growth_sweep  -       sweep: time per step, 240,000 / 2,400 examples
sweep_regimes growth_hand   -       hand-written: time per step, 240,000 / 2,400 examples
sharding      bytes         <= 0.3  per-device params + Adam state, 4 simulated devices / 1
sharding      gathers       == 0    param-sized all-gathers in jit(fit(...).params), 4 devices
sharding      time          -       time per step, 4 simulated devices / 1 device
"""


def _target(suite: str, key: str, op: str, *words: str) -> Target:
    if op == "-":
        return Target(suite, key, " ".join(words))
    return Target(suite, key, " ".join(words[1:]), op, float(words[0]))


TARGETS = [_target(*line.split()) for line in _TABLE.strip().splitlines()]


def judged(suite: str, figures: Mapping[str, Figure]) -> list[dict[str, str]]:
    """The rows of :data:`TARGETS` for ``suite`` that it measured, judged."""
    return [{"measurement": t.what, "target": t.goal, "measured": figures[t.key].text,
             "verdict": t.verdict(figures[t.key]), "note": figures[t.key].note}
            for t in TARGETS if t.suite == suite and t.key in figures]


def emit(record: Any) -> None:
    """Send a JSON-able record from a child process to its parent (:func:`run_child`)."""
    print(CHILD + json.dumps(record), flush=True)


def run_child(module: str, args: Sequence[str] = (), devices: int = 0,
              timeout: float | None = None) -> tuple[list[Any], bool]:
    """Run ``python -m benchmarks.<module> *args`` in a fresh process, its CPU split into
    ``devices`` simulated devices when > 0 (``XLA_FLAGS``, set before jax starts).
    Returns the records it :func:`emit`-ted, and whether it was stopped at ``timeout``
    seconds; its other output lines are echoed as they come."""
    env = dict(os.environ)
    if devices:
        flags = re.sub(r"--xla_force_host_platform_device_count=\S*", "",
                       env.get("XLA_FLAGS", ""))
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
    proc = subprocess.Popen([sys.executable, "-m", f"benchmarks.{module}", *args], env=env,
                            cwd=ROOT, stdout=subprocess.PIPE, text=True, bufsize=1)
    timer = threading.Timer(timeout, proc.kill) if timeout else None
    if timer:
        timer.start()
    records = []
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(CHILD):
            records.append(json.loads(line[len(CHILD):]))
        else:
            print(line, end="", flush=True)
    code = proc.wait()
    stopped = timer is not None and not timer.is_alive() and code != 0
    if timer:
        timer.cancel()
    if code != 0 and not stopped:
        print(f"child benchmarks.{module} {' '.join(args)} failed ({code})", flush=True)
    return records, stopped


def machine_info() -> str:
    """Lines naming the date, the machine, the versions and the devices."""
    info = Path("/proc/cpuinfo")
    cpu = next((line.split(":", 1)[1].strip() for line in info.read_text().splitlines()
                if line.startswith("model name")), "") if info.exists() else ""
    caches = []
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        level, kind, size = ((index / f).read_text().strip() for f in ("level", "type", "size"))
        if kind != "Instruction":
            caches.append(f"L{level}{'d' if kind == 'Data' else ''} {size}")
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    kinds = ", ".join(sorted({d.device_kind for d in jax.devices()}))
    lines = [f"date: {now}",
             f"CPU: {cpu or platform.machine()}, {os.cpu_count()} cores ({usable} usable by "
             "this process)"
             + (f"; caches {', '.join(caches)}" if caches else ""),
             f"python {platform.python_version()}, "
             + ", ".join(f"{d} {metadata.version(d)}" for d in ("jax", "jaxlib", "optax", "jaxgd"))
             + f", numpy {np.__version__}",
             f"backend: {jax.default_backend()}, devices: {len(jax.devices())} x {kinds}"]
    if os.environ.get("XLA_FLAGS"):
        lines.append(f"XLA_FLAGS={os.environ['XLA_FLAGS']}")
    return "\n".join(lines)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
                   align: str | None = None) -> str:
    """A Markdown table padded to read as plain text; ``align``: ``l``/``r`` per column
    (default: the first left, the others right)."""
    align = align or "l" + "r" * (len(headers) - 1)
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if a == "l" else c.rjust(w)
                                 for c, w, a in zip(row, widths, align, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" if a == "r" else ":" + "-" * (w + 1)
                          for w, a in zip(widths, align, strict=True)) + "|"
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def timing_table(t: Mapping[str, Timing], base: str | None = None, unit: str = "ms",
                 scale: float = 1e3, **extra: Mapping[str, Any]) -> str:
    """A row per timed callable: its 10th percentile and median in ``unit`` (seconds x
    ``scale``), its ratio to ``base``, and ``extra`` columns (header -> name -> cell)."""
    heads = ["", f"{unit} (10th pct)", f"{unit} (median)", *([f"/ {base}"] if base else []),
             *(h.replace("_", " ") for h in extra)]
    return markdown_table(heads, [
        [n, f"{x.low * scale:,.2f}", f"{x.median * scale:,.2f}",
         *([Ratio.of(t, n, base).text()] if base else []),
         *(col.get(n, "-") for col in extra.values())] for n, x in t.items()])


def write_section(name: str, body: str, path: Path = RESULTS, first: bool = False) -> None:
    """Replace the text between ``<!-- begin NAME -->`` and ``<!-- end NAME -->`` in
    ``path``, keeping the other sections; a new section is appended (or put before the
    first section, ``first``). Atomic: a temporary file, renamed."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    section = f"{begin}\n{body.strip()}\n{end}\n"
    text = path.read_text() if path.exists() else _TITLE
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text, count=1)
    elif first and "<!-- begin " in text:
        at = text.index("<!-- begin ")
        text = text[:at] + section + "\n" + text[at:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    print(f"wrote section '{name}' of {path}", flush=True)


def head(name: str, title: str, info: str, elapsed: float, command: str) -> list[str]:
    return [f"## {name}: {title}", "", *(f"- {line}" for line in info.splitlines()),
            f"- reproduce (repository root): `.venv/bin/python -m {command}` "
            f"({elapsed / 60:.1f} min)", ""]


def verdict_line(row: Mapping[str, str]) -> str:
    goal = "" if row["target"] == "recorded" else f", target {row['target']}"
    note = f" {row['note']}" if row["note"] else ""
    return f"**{row['measurement']}: {row['measured']} ({row['verdict']}{goal}).{note}**"


def plot(path: Path, panels: Sequence[tuple[str, str, Mapping[str, Any], float | None]],
         ylabel: str) -> None:
    """Log-log curves, one panel per ``(title, xlabel, {label: (xs, ys)}, top of y)``."""
    from jaxgd.plot.figure import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels) + 1, 4), squeeze=False)
    for ax, (title, xlabel, curves, top) in zip(axes[0], panels, strict=True):
        for label, (xs, ys) in curves.items():
            ax.loglog(xs, ys, marker=".", label=label)
        if top is not None:
            ax.set_ylim(top=top)
        ax.set_title(title, fontsize="small")
        ax.set_xlabel(xlabel)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(suite: str, argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.<suite>``: measure, print, write the section (a full run, or
    ``--write``) and the plots, and emit the judged target rows."""
    module = import_module(f"benchmarks.{suite}")
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{suite}")
    parser.add_argument("--quick", action="store_true", help="tiny sizes; writes nothing")
    parser.add_argument("--write", action="store_true", help="write, even with --quick")
    parser.add_argument("--results", type=Path, default=RESULTS, help="results file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        module.child(args.child, args.quick)
        return 0
    start = time.perf_counter()
    measured = module.measure(args.quick)
    write = args.write or not args.quick
    plots = args.results.parent / "plots" if write else None
    if plots is not None:
        plots.mkdir(parents=True, exist_ok=True)
    figures, blocks = module.report(measured, plots)
    elapsed = time.perf_counter() - start
    rows = judged(suite, figures)
    lines = [verdict_line(r) for r in rows]
    print("\n\n".join([*blocks, "\n".join(lines)]), flush=True)
    if write:
        # a suite measured in a child process reports the child's machine and devices
        info = (measured.get("info") if isinstance(measured, dict) else None) or machine_info()
        title, about = module.__doc__.replace("``", "`").split("\n\n", 1)
        about = "\n\n".join(" ".join(p.split()) for p in about.split("\n\n"))
        parts = [about, *([READING] if getattr(module, "TIMED", True) else []),
                 *(["\n".join(lines)] if lines else []), *blocks]
        title = " ".join(title.split()).rstrip(".")
        write_section(suite, "\n".join(head(suite, title, info, elapsed, f"benchmarks.{suite}"))
                      + "\n" + "\n\n".join(parts), args.results)
    emit({"suite": suite, "rows": rows})
    return 0


def summary(rows: Sequence[Mapping[str, str]], failed: Sequence[str], elapsed: float,
            path: Path) -> None:
    """Write the ``summary`` section (first in the file) from every suite's judged rows."""
    table = markdown_table(["measurement", "target", "measured", "verdict", "notes"],
                           [[r[k] for k in ("measurement", "target", "measured", "verdict",
                                            "note")] for r in rows], align="lllll")
    body = [*head("Summary", "every target of the performance issues", machine_info(),
                  elapsed, "benchmarks"), READING + " Each suite's section below has its tables.",
            "", table]
    if failed:
        body += ["", f"**Suites that failed in this run: {', '.join(failed)}.**"]
    write_section("summary", "\n".join(body), path, first=True)
