"""``jaxgd.fit`` against the training loops users write by hand.

Logistic regression 500 x 10, 1,000 full-batch steps, jaxgd's optimizer in fit, optax's
twin in the others, 80 rounds. *fit*: the public call, its program compiled by an earlier
one; *fit program*: ``jax.jit`` of the same call (the loop alone); *python loop*: a jitted
optax step called 1,000 times; *optax scan*: the same step in a jitted ``lax.scan``.
Times in ms per run; compile: trace + lower + compile.
"""

from __future__ import annotations

import sys
from collections import namedtuple
from pathlib import Path

import optax

import jaxgd
from benchmarks import harness
from benchmarks import workloads as wl
from benchmarks.harness import Figure, Ratio

STEPS = 1000
OPTIMIZERS = {"sgd": (lambda: jaxgd.sgd(0.1), lambda: optax.sgd(0.1)),
              "adam": (lambda: jaxgd.adam(0.01), lambda: optax.adam(0.01))}
REPEATS = {False: 80, True: 8}


Case = namedtuple("Case", "name t compile_s diff")


def measure_one(name: str, repeats: int) -> Case:
    loss_fn, params, data = wl.logistic(500, 10)
    opt, theirs = (f() for f in OPTIMIZERS[name])
    fns, compile_s, diff = wl.fit_and_scan(loss_fn, params, opt, theirs, data, STEPS)
    state = theirs.init(params)
    compile_s["python loop"], step = harness.time_compile(wl.train_step(loss_fn, theirs),
                                                          params, state, data)
    fns["python loop"] = wl.Stepper(step, params, state, [data], STEPS)
    return Case(name, harness.time_interleaved(fns, repeats), compile_s, diff)


def measure(quick: bool) -> list[Case]:
    return [measure_one(name, REPEATS[quick]) for name in OPTIMIZERS]


def report(cases: list[Case], plots: Path | None) -> tuple[dict[str, Figure], list[str]]:
    figures, blocks = {}, []
    for c in cases:
        def r(a: str, b: str, c: Case = c) -> Ratio:
            return Ratio.of(c.t, a, b)

        per_call = (c.t["fit"].low - c.t["fit program"].low) * 1e6
        figures[f"{c.name}_loop"] = Figure.ratio(r("python loop", "fit"), digits=2)
        figures[f"{c.name}_scan"] = Figure.ratio(
            r("fit", "optax scan"), f"fit's compiled loop alone: "
            f"{r('fit program', 'optax scan').text(iqr=False)}; fit's per-call work "
            f"{per_call:+.0f} us per call")
        compile_ms = {n: f"{x * 1e3:.0f}" for n, x in c.compile_s.items()}
        blocks.append(f"{c.name} (max |p - p_fit| {c.diff:.1e}):\n\n" + harness.timing_table(
            c.t, "optax scan", compile_ms=compile_ms))
    return figures, blocks


if __name__ == "__main__":
    sys.exit(harness.main("fit_loop"))
