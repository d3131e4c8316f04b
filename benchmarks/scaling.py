"""Scaling curves: time per Adam step against parameter count and against leaf count.

Four ways to take a step, timed interleaved at every point (one process, same inputs):

* *jaxgd update step*: the public per-leaf ``update`` + ``apply_updates``, jitted, params
  and state donated (no loss);
* *optax update step*: the same with ``optax.adam``;
* *jaxgd fit (flat)*: ``jaxgd.fit(loss, params, jaxgd.adam(1e-3), G, max_steps=K,
  flat_params=True)`` per step (the public call over K; its per-call work included);
* *optax scan*: a hand-written optax ``lax.scan`` of K steps of the same loss.

The loss is ``vdot(concatenate(leaves), G)`` (``benchmarks.many_leaf.tree_loss``): one
cheap pass forward, gradient ``G``, so fit and the scan time the update plus a little.

Curves: one leaf of 1k ... 16M floats; 1M floats split into 1 ... 1000 leaves. Plots go to
``benchmarks/plots/scaling_params.png`` and ``scaling_leaves.png`` (log-log).

Run (from the repository root)::

    .venv/bin/python -m benchmarks.scaling            # full run, writes RESULTS.md + PNGs
    .venv/bin/python -m benchmarks.scaling --quick    # seconds, writes nothing
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax  # noqa: E402
import optax  # noqa: E402

import jaxgd  # noqa: E402
from benchmarks import timing  # noqa: E402
from benchmarks.many_leaf import Repeat, make_scan, make_update_step, tree_loss  # noqa: E402
from benchmarks.ratios import Ratio, low  # noqa: E402
from benchmarks.update_step import Report, Stepper, copy_tree, random_tree  # noqa: E402

SECTION = "scaling"
PLOT_DIR = Path(__file__).resolve().parent / "plots"
LINES = ["jaxgd update step", "optax update step", "jaxgd fit (flat)", "optax scan"]


@dataclass(frozen=True)
class Config:
    sizes: tuple[int, ...]  # one leaf of each size
    total: int  # params of the leaf-count curve
    leaves: tuple[int, ...]
    work: int  # params x steps per timed unit (sets K)
    max_steps: int
    repeats: int


FULL = Config(
    sizes=(1_000, 4_000, 16_000, 64_000, 256_000, 1_000_000, 4_000_000, 16_000_000),
    total=1_000_000,
    leaves=(1, 4, 16, 64, 256, 1000),
    work=40_000_000,
    max_steps=50,
    repeats=5,
)
QUICK = Config(
    sizes=(1_000, 16_000, 256_000), total=20_000, leaves=(1, 10, 100), work=1_000_000,
    max_steps=10, repeats=3,
)


@dataclass
class Point:
    n: int
    leaves: int
    steps: int
    timings: dict[str, timing.Timing]

    def us(self, name: str) -> float:
        return low(self.timings[name]) / self.steps * 1e6

    def ratio(self, a: str, b: str) -> Ratio:
        return Ratio.of(self.timings, a, b)


def measure(n: int, leaves: int, cfg: Config, seed: int = 0) -> Point:
    """All four lines at ``leaves`` leaves of ``n // leaves`` floats."""
    size = n // leaves
    base = seed + 10 * (n + leaves)
    params = random_tree(base, [(size,)] * leaves)
    g = random_tree(base + 1, [(leaves * size,)])["w0000"]
    grads = [random_tree(base + 2 + i, [(size,)] * leaves) for i in range(2)]
    steps = max(2, min(cfg.max_steps, cfg.work // (leaves * size)))
    ours, theirs = jaxgd.adam(1e-3), optax.adam(1e-3)
    fns: dict[str, Any] = {}
    for name, opt in (("jaxgd update step", ours), ("optax update step", theirs)):
        p0 = copy_tree(params)
        s0 = copy_tree(opt.init(p0))
        compiled = timing.time_compile(make_update_step(opt), p0, s0, grads[0],
                                       donate_argnums=(0, 1)).compiled
        fns[name] = Repeat(Stepper(compiled, p0, s0, [copy_tree(x) for x in grads]), steps)
    scan = jax.jit(make_scan(tree_loss, theirs, steps))
    state = theirs.init(params)
    fns["jaxgd fit (flat)"] = lambda: jaxgd.fit(tree_loss, params, ours, g, max_steps=steps,
                                                flat_params=True).params
    fns["optax scan"] = lambda: scan(params, state, g)
    t = timing.time_interleaved(fns, repeats=cfg.repeats, inner=1, seed=seed)
    return Point(leaves * size, leaves, steps, t)


def table(points: Sequence[Point], key: str) -> str:
    headers = [key, "K", *(f"{name} us" for name in LINES), "jaxgd/optax step",
               "fit / optax scan", "fit / optax step"]
    rows = []
    for p in points:
        rows.append([
            f"{p.n:,}" if key == "params" else p.leaves,
            p.steps,
            *(f"{p.us(name):,.1f}" for name in LINES),
            p.ratio("jaxgd update step", "optax update step").text(2, iqr=False),
            p.ratio("jaxgd fit (flat)", "optax scan").text(2, iqr=False),
            p.ratio("jaxgd fit (flat)", "optax update step").text(2, iqr=False),
        ])
    return timing.markdown_table(headers, rows)


def plot(points: Sequence[Point], key: str, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    xs = [p.n if key == "params" else p.leaves for p in points]
    styles = {"jaxgd update step": "o-", "optax update step": "s--",
              "jaxgd fit (flat)": "^-", "optax scan": "v--"}
    for name in LINES:
        ax.plot(xs, [p.us(name) for p in points], styles[name], label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters (one leaf)" if key == "params" else
                  f"leaves ({points[0].n:,} params in all)")
    ax.set_ylabel("us per Adam step (10th percentile)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = timing.suite_parser("python -m benchmarks.scaling", __doc__,
                                 quick="tiny sizes (the PNGs are written with RESULTS.md)")
    parser.add_argument("--plots", type=Path, default=PLOT_DIR, help="folder for the PNGs")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, write_plots: bool) -> Report:
    cfg = QUICK if args.quick else FULL
    info = timing.machine_info()
    print(info, flush=True)
    start = time.perf_counter()
    by_params = []
    for n in cfg.sizes:
        by_params.append(measure(n, 1, cfg))
        print(f"  1 x {n:,}: {time.perf_counter() - start:.0f} s", flush=True)
    by_leaves = []
    for leaves in cfg.leaves:
        by_leaves.append(measure(cfg.total, leaves, cfg))
        print(f"  {leaves} x {cfg.total // leaves:,}: {time.perf_counter() - start:.0f} s",
              flush=True)
    elapsed = time.perf_counter() - start
    t_params, t_leaves = table(by_params, "params"), table(by_leaves, "leaves")
    print("\nAdam, one leaf:")
    print(t_params)
    print(f"\nAdam, {cfg.total:,} params in 1 ... {cfg.leaves[-1]} leaves:")
    print(t_leaves)
    print(f"({elapsed:.0f} s)", flush=True)
    paths = [args.plots / "scaling_params.png", args.plots / "scaling_leaves.png"]
    if write_plots:
        plot(by_params, "params", paths[0], "Adam step time against parameter count (1 leaf)")
        plot(by_leaves, "leaves", paths[1],
             f"Adam step time against leaf count ({cfg.total:,} params)")
        print("wrote " + ", ".join(map(str, paths)))
    rel = [p.relative_to(Path(__file__).resolve().parent) if p.is_relative_to(
        Path(__file__).resolve().parent) else p for p in paths]
    body = "\n".join([
        *timing.section_head(
            "scaling", "Adam step time against parameter count and leaf count",
            info, elapsed),
        "Per point, interleaved in one process: *jaxgd / optax update step* (public "
        "per-leaf `update` + `apply_updates`, jitted, donated, no loss), *jaxgd fit (flat)* "
        "(the public `fit(..., flat_params=True)` call over K steps) and *optax scan* (a "
        "`lax.scan` of K optax steps), the last two on the loss `vdot(concatenate(leaves), "
        "G)`. us per step: 10th percentile of the rounds over K; ratios: *median of the "
        f"per-round ratios / ratio of the 10th percentiles*; {cfg.repeats} rounds. "
        f"Plots: `{rel[0]}`, `{rel[1]}`.",
        "",
        f"![step time against parameter count]({rel[0]})",
        f"![step time against leaf count]({rel[1]})",
        "",
        "One leaf:",
        "",
        t_params,
        "",
        f"{cfg.total:,} params split into leaves:",
        "",
        t_leaves,
    ])
    return Report([], body, elapsed)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    write = timing.wants_write(args)
    report = run(args, write_plots=write)
    if write:
        timing.write_section(SECTION, report.body, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
