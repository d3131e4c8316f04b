"""Adam step time against parameter count (one leaf) and leaf count (1M params).

At each point, interleaved: the public per-leaf update step of jaxgd and of optax
(jitted, donated, no loss), ``jaxgd.fit(..., flat_params=True)`` over K steps and a
hand-written optax ``lax.scan`` of K steps, the last two on ``vdot(concatenate(leaves),
G)``. Times in us per step, 5 rounds.
"""

from __future__ import annotations

import sys
from collections import namedtuple
from dataclasses import dataclass
from pathlib import Path

import jax
import optax

import jaxgd
from benchmarks import harness
from benchmarks import workloads as wl
from benchmarks.harness import Figure, Ratio, Timing

LINES = ["jaxgd update step", "optax update step", "jaxgd fit (flat)", "optax scan"]


# one leaf of each of sizes; total params in each of leaves; params x steps per call
Config = namedtuple("Config", "sizes total leaves work max_steps repeats")
FULL = Config((1_000, 4_000, 16_000, 64_000, 256_000, 1_000_000, 4_000_000, 16_000_000),
              1_000_000, (1, 4, 16, 64, 256, 1000), 40_000_000, 50, 5)
QUICK = Config((1_000, 16_000, 256_000), 20_000, (1, 10, 100), 1_000_000, 10, 3)


@dataclass
class Point:
    n: int
    leaves: int
    steps: int
    t: dict[str, Timing]

    def us(self, name: str) -> float:
        return self.t[name].low / self.steps * 1e6


def measure_point(n: int, leaves: int, cfg: Config) -> Point:
    size, seed = n // leaves, 10 * (n + leaves)
    params, g = wl.leaves_problem(leaves, size, seed)
    grads = [wl.random_tree(seed + 2 + i, [(size,)] * leaves) for i in range(2)]
    k = max(2, min(cfg.max_steps, cfg.work // (leaves * size)))
    ours, theirs = jaxgd.adam(1e-3), optax.adam(1e-3)
    fns = {f"{lib} update step": wl.stepper(opt, params, grads, times=k)[0]
           for lib, opt in (("jaxgd", ours), ("optax", theirs))}
    scan, state = jax.jit(wl.optax_scan(wl.leaves_loss, theirs, k)), theirs.init(params)
    fns["jaxgd fit (flat)"] = lambda: jaxgd.fit(wl.leaves_loss, params, ours, g, max_steps=k,
                                                flat_params=True).params
    fns["optax scan"] = lambda: scan(params, state, g)
    return Point(leaves * size, leaves, k, harness.time_interleaved(fns, cfg.repeats))


def measure(quick: bool) -> tuple[list[Point], list[Point]]:
    cfg = QUICK if quick else FULL
    return ([measure_point(n, 1, cfg) for n in cfg.sizes],
            [measure_point(cfg.total, n, cfg) for n in cfg.leaves])


def table(points: list[Point], key: str) -> str:
    def ratio(p: Point, a: str, b: str) -> str:
        return Ratio.of(p.t, a, b).text(2, iqr=False)

    return harness.markdown_table(
        [key, "K", *(f"{name} us" for name in LINES), "jaxgd/optax step", "fit / optax scan",
         "fit / optax step"],
        [[f"{p.n:,}" if key == "params" else p.leaves, p.steps,
          *(f"{p.us(name):,.1f}" for name in LINES),
          ratio(p, "jaxgd update step", "optax update step"),
          ratio(p, "jaxgd fit (flat)", "optax scan"),
          ratio(p, "jaxgd fit (flat)", "optax update step")] for p in points])


def report(m: tuple[list[Point], list[Point]],
           plots: Path | None) -> tuple[dict[str, Figure], list[str]]:
    by_params, by_leaves = m
    blocks = []
    if plots is not None:
        for points, name, what, xlabel, xs in (
                (by_params, "params", "parameter count", "parameters (one leaf)",
                 [p.n for p in by_params]),
                (by_leaves, "leaves", "leaf count", f"leaves ({by_leaves[0].n:,} params)",
                 [p.leaves for p in by_leaves])):
            harness.plot(plots / f"scaling_{name}.png", [(
                f"Adam step time against {what}", xlabel,
                {line: (xs, [p.us(line) for p in points]) for line in LINES}, None)],
                "us per Adam step (10th percentile)")
        blocks.append("![step time against parameter count](plots/scaling_params.png)\n"
                      "![step time against leaf count](plots/scaling_leaves.png)")
    return {}, [*blocks, "One leaf:\n\n" + table(by_params, "params"),
                f"{by_leaves[0].n:,} params split into leaves:\n\n"
                + table(by_leaves, "leaves")]


if __name__ == "__main__":
    sys.exit(harness.main("scaling"))
