"""Shared helpers for the benchmark suites.

The rules (see ``/work/shared/REFERENCE.md``, "Measuring speed honestly"):

* JAX dispatches asynchronously, so every timed block ends with ``jax.block_until_ready``.
* Compile and warm up first, time many repetitions, quote the median; time compilation
  separately (:func:`time_compile`).
* Compare implementations in the same process, on the same inputs, *interleaved* round by
  round (:func:`time_interleaved`), and report ratios: absolute times on shared machines
  drift, ratios measured side by side hold. :func:`paired_ratio` takes the ratio round by
  round, which cancels drift slower than one round.
* Each suite writes its own section of ``benchmarks/RESULTS.md`` with
  :func:`write_results_section`, leaving the other suites' sections alone.
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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import jax
import numpy as np

RESULTS_PATH = Path(__file__).resolve().parent / "RESULTS.md"
_RESULTS_TITLE = (
    "# jaxgd benchmark results\n\n"
    "Each section below is written by one suite in `benchmarks/` and replaced whole when "
    "that suite is re-run with results writing on; the machine, versions and date are in "
    "each section.\n"
)


@dataclass(frozen=True)
class Timing:
    """Seconds per call, one sample per round, and their summary statistics."""

    samples: np.ndarray

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def min(self) -> float:
        return float(np.min(self.samples))

    @property
    def q1(self) -> float:
        return float(np.percentile(self.samples, 25))

    @property
    def q3(self) -> float:
        return float(np.percentile(self.samples, 75))

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    def __str__(self) -> str:
        return (
            f"median {self.median * 1e3:.4g} ms (min {self.min * 1e3:.4g}, "
            f"IQR {self.q1 * 1e3:.4g}-{self.q3 * 1e3:.4g}, n={len(self.samples)})"
        )


def time_interleaved(
    fns: Mapping[str, Callable[[], Any]],
    repeats: int = 30,
    inner: int = 10,
    warmup: int = 2,
    seed: int = 0,
) -> dict[str, Timing]:
    """Time several zero-argument callables side by side.

    Each callable is first called ``warmup`` times (the first call compiles), blocking on
    each result. Then, for ``repeats`` rounds, every callable runs ``inner`` times in a
    row and the clock stops after ``jax.block_until_ready`` on its last result; the order
    of the callables is shuffled each round (seeded) so that none always follows the same
    neighbour. Garbage collection is off while timing.

    Only the last result of each block is waited on, so the ``inner`` calls of a block
    must run one after another on the device. That holds when each call consumes the
    previous one's output (a training step ``params, state = step(params, state, g)``
    kept in a closure), which is also the only safe pattern with donated buffers.

    Returns:
      name -> :class:`Timing` of seconds per call (block time / ``inner``), one sample
      per round, so ``timings[a].samples[i]`` and ``timings[b].samples[i]`` were taken in
      the same round (see :func:`paired_ratio`).
    """
    if repeats < 1 or inner < 1:
        raise ValueError(f"repeats and inner must be >= 1, got {repeats} and {inner}")
    names = list(fns)
    for name in names:
        for _ in range(max(warmup, 1)):
            jax.block_until_ready(fns[name]())
    samples: dict[str, list[float]] = {name: [] for name in names}
    order = list(names)
    rng = random.Random(seed)
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            rng.shuffle(order)
            for name in order:
                fn = fns[name]
                start = time.perf_counter()
                result = None
                for _ in range(inner):
                    result = fn()
                jax.block_until_ready(result)
                samples[name].append((time.perf_counter() - start) / inner)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: Timing(np.asarray(s)) for name, s in samples.items()}


def paired_ratio(timings: Mapping[str, Timing], numerator: str, denominator: str) -> Timing:
    """Round-by-round ratios ``numerator / denominator`` of a :func:`time_interleaved`
    result (a :class:`Timing` of dimensionless ratios; its median is the robust ratio)."""
    return Timing(timings[numerator].samples / timings[denominator].samples)


@dataclass(frozen=True)
class CompileTiming:
    """Seconds to trace and lower, seconds to compile, and the compiled executable."""

    lower_s: float
    compile_s: float
    compiled: Any

    @property
    def total_s(self) -> float:
        return self.lower_s + self.compile_s


def time_compile(fn: Callable, *args: Any, **jit_kwargs: Any) -> CompileTiming:
    """Time ``jax.jit(fn, **jit_kwargs).lower(*args)`` and ``.compile()`` separately.

    A fresh ``jax.jit`` wrapper is made each time; call this before the function has been
    compiled elsewhere in the process, or JAX's in-memory caches may shorten the times.
    Nothing is executed, so donated ``args`` stay valid.
    """
    start = time.perf_counter()
    lowered = jax.jit(fn, **jit_kwargs).lower(*args)
    lowered_at = time.perf_counter()
    compiled = lowered.compile()
    done = time.perf_counter()
    return CompileTiming(lowered_at - start, done - lowered_at, compiled)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _caches() -> str:
    """Per-core cache sizes of CPU 0 from sysfs, e.g. ``L1d 48K, L2 2048K, L3 491520K``."""
    parts = []
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        if kind != "Instruction":
            parts.append(f"L{level}{'d' if kind == 'Data' else ''} {size}")
    return ", ".join(parts)


def machine_info() -> str:
    """A few lines naming the machine, the versions and the date (for results headers)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    devices = jax.devices()
    kinds = sorted({d.device_kind for d in devices})
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"date: {now}",
        f"CPU: {_cpu_model()}, {os.cpu_count()} cores ({usable} usable by this process)"
        + (f"; caches {caches}" if (caches := _caches()) else ""),
        f"python {platform.python_version()}, jax {_version('jax')}, "
        f"jaxlib {_version('jaxlib')}, optax {_version('optax')}, "
        f"jaxgd {_version('jaxgd')}, numpy {np.__version__}",
        f"backend: {jax.default_backend()}, devices: {len(devices)} x {', '.join(kinds)}",
    ]
    xla_flags = os.environ.get("XLA_FLAGS")
    if xla_flags:
        lines.append(f"XLA_FLAGS={xla_flags}")
    return "\n".join(lines)


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None
) -> str:
    """A Markdown table, padded so it also reads well as plain text.

    ``align`` has one character per column, ``l`` or ``r`` (default: first column left,
    the others right).
    """
    align = align or "l" + "r" * (len(headers) - 1)
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        padded = (
            c.ljust(w) if a == "l" else c.rjust(w)
            for c, w, a in zip(row, widths, align, strict=True)
        )
        return "| " + " | ".join(padded) + " |"

    dashes = [
        "-" * (w + 1) + ":" if a == "r" else ":" + "-" * (w + 1)
        for w, a in zip(widths, align, strict=True)
    ]
    rule = "|" + "|".join(dashes) + "|"
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def _markers(name: str) -> tuple[str, str]:
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
        raise ValueError(f"section name {name!r} must be letters, digits, '_', '.', '-'")
    return f"<!-- begin {name} -->", f"<!-- end {name} -->"


def write_results_section(name: str, body: str, path: str | Path = RESULTS_PATH) -> Path:
    """Write or replace the section ``name`` of a results file, keeping the others.

    A section is the text between ``<!-- begin NAME -->`` and ``<!-- end NAME -->``
    lines. An existing section is replaced in place; a new one is appended. The file (with
    a short title) is created if missing. The write is atomic (temporary file + rename).
    """
    path = Path(path)
    begin, end = _markers(name)
    section = f"{begin}\n{body.strip()}\n{end}\n"
    text = path.read_text() if path.exists() else _RESULTS_TITLE
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def suite_parser(prog: str, doc: str, quick: str) -> argparse.ArgumentParser:
    """The command line every suite shares: ``--quick`` (``quick`` says what it shrinks;
    writes nothing unless ``--write``), ``--write``, ``--no-write`` and ``--results``.
    The suite adds its own options to the parser."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{quick}; writes nothing unless --write")
    parser.add_argument("--write", action="store_true",
                        help="write the RESULTS.md section even with --quick or a subset")
    parser.add_argument("--no-write", action="store_true", help="never write RESULTS.md")
    parser.add_argument("--results", type=Path, default=RESULTS_PATH,
                        help="results file to update")
    return parser


def wants_write(args: argparse.Namespace, subset: bool = False) -> bool:
    """Whether a suite's run writes its results: never with ``--no-write``, always with
    ``--write``, otherwise only for a full run (not ``--quick``, not a ``subset`` of the
    suite)."""
    return not args.no_write and (args.write or not (args.quick or subset))


def section_head(suite: str, title: str, info: str, elapsed: float) -> list[str]:
    """The first lines of suite ``benchmarks.<suite>``'s section: its title, the machine
    (``info``, :func:`machine_info`) and how to reproduce the run (its command line)."""
    command = f"python -m benchmarks.{suite}" + (" " + " ".join(sys.argv[1:])).rstrip()
    return [
        f"## {suite}: {title}",
        "",
        *(f"- {line}" for line in info.splitlines()),
        f"- reproduce (repository root): `.venv/bin/python -m benchmarks.{suite}`"
        f" (this run: `{command}`, {elapsed:.0f} s)",
        "",
    ]


def write_section(name: str, body: str, path: str | Path) -> None:
    """:func:`write_results_section`, saying where it wrote."""
    print(f"wrote section '{name}' of {write_results_section(name, body, path)}", flush=True)


def floor_scan(loss_fn: Callable, steps: int) -> Callable:
    """``run(params, data, lr) -> (params, losses)``: ``steps`` steps of ``p - lr * grad``
    per leaf in a ``lax.scan``, no optimizer state: the loss and gradient with the
    cheapest possible update, the floor under any optimizer's program on this loss."""

    def run(params, data, lr):
        def body(p, _):
            loss, grads = jax.value_and_grad(loss_fn)(p, data)
            return jax.tree.map(lambda x, g: x - lr * g, p, grads), loss

        return jax.lax.scan(body, params, None, length=steps)

    return run


def run_on_host_devices(module: str, num_devices: int, args: Sequence[str]) -> dict | None:
    """``python -m benchmarks.<module> *args`` in a child process whose CPU is split into
    ``num_devices`` devices (``XLA_FLAGS`` must be set before jax starts); its last
    stdout line, a JSON object, or None (with its stderr printed) if it failed."""
    env = dict(os.environ)
    flags = re.sub(r"--xla_force_host_platform_device_count=\S*", "", env.get("XLA_FLAGS", ""))
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={num_devices}".strip()
    proc = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *args], env=env,
                          cwd=Path(__file__).resolve().parent.parent, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        print(f"{num_devices}-device child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return None
    return json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
