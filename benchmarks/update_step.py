"""One jitted optimizer step, jaxgd vs optax.

For every variant in :data:`VARIANTS` and every tree shape, time the jitted step

    params, state = step(params, state, grads)      # step = update + apply_updates

with params and state donated, for jaxgd and for the same optax optimizer, on the same
random-normal inputs, interleaved round by round in one process, next to a same-size
elementwise pass ``p + 1e-3 * g`` over the tree flattened to one array.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.update_step            # full run, writes RESULTS.md
    .venv/bin/python -m benchmarks.update_step --quick    # < 1 minute, writes nothing
    .venv/bin/python benchmarks/update_step.py --help     # also works as a script

The issue's target: jaxgd/optax <= 1.05 for every variant on the 1-leaf and 10-leaf
shapes; the 1000-leaf shape (dominated by per-leaf dispatch) is only recorded.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import jaxgd  # noqa: E402
from benchmarks import timing  # noqa: E402

SECTION = "update_step"
LR = 1e-3
# Gradient trees fed in turn. One constant gradient drives centered RMSProp's variance
# estimate nu - mu^2 to rounding noise, negative for some coordinates (NaN in jaxgd and
# optax alike after ~130 steps); with 4 random trees it stays positive.
N_GRADS = 4
TARGET_RATIO = 1.05


@dataclass(frozen=True)
class Variant:
    """One optimizer, built the same way in jaxgd and in optax."""

    name: str
    jaxgd: Callable[[], Any]
    optax: Callable[[], Any]


# The one list of variants. To benchmark an alias, add a line.
VARIANTS: list[Variant] = [
    Variant("sgd", lambda: jaxgd.sgd(LR), lambda: optax.sgd(LR)),
    Variant("momentum", lambda: jaxgd.momentum(LR, 0.9), lambda: optax.sgd(LR, momentum=0.9)),
    Variant("nesterov", lambda: jaxgd.nesterov(LR, 0.9), lambda: optax.sgd(LR, 0.9, nesterov=True)),
    Variant("adagrad", lambda: jaxgd.adagrad(LR), lambda: optax.adagrad(LR)),
    Variant("rmsprop", lambda: jaxgd.rmsprop(LR), lambda: optax.rmsprop(LR)),
    Variant(
        "rmsprop_centered",
        lambda: jaxgd.rmsprop(LR, centered=True),
        lambda: optax.rmsprop(LR, centered=True),
    ),
    Variant("adam", lambda: jaxgd.adam(LR), lambda: optax.adam(LR)),
]


@dataclass(frozen=True)
class Shape:
    """A tree of ``leaves`` float32 leaves of ``size`` elements each."""

    leaves: int
    size: int
    repeats: int  # timed rounds
    inner: int  # calls per round and callable
    target: bool  # whether the jaxgd/optax <= TARGET_RATIO target applies

    @property
    def label(self) -> str:
        return f"{self.leaves} x {self.size:,}"

    @property
    def n(self) -> int:
        return self.leaves * self.size


FULL_SHAPES = [
    Shape(1, 1_000_000, repeats=100, inner=40, target=True),
    Shape(10, 100_000, repeats=100, inner=40, target=True),
    Shape(1000, 1_000, repeats=60, inner=3, target=False),
]
QUICK_SHAPES = [
    Shape(1, 100_000, repeats=10, inner=10, target=False),
    Shape(10, 10_000, repeats=10, inner=10, target=False),
    Shape(100, 1_000, repeats=5, inner=3, target=False),
]


def make_tree(key: jax.Array, shape: Shape) -> dict[str, jax.Array]:
    """``{"w0000": ..., ...}``: ``shape.leaves`` random-normal float32 arrays."""
    keys = jax.random.split(key, shape.leaves)
    return {
        f"w{i:04d}": jax.random.normal(k, (shape.size,), jnp.float32) for i, k in enumerate(keys)
    }


def make_step(opt) -> Callable:
    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return jaxgd.apply_updates(params, updates), state

    return step


class Stepper:
    """Holds ``(params, state)`` and advances them by one donated step per call, feeding
    the gradient trees of ``grads`` in turn."""

    def __init__(self, step: Callable, params: Any, state: Any, grads: Sequence[Any]):
        self.step, self.params, self.state, self.grads = step, params, state, grads
        self.calls = 0

    def __call__(self) -> Any:
        g = self.grads[self.calls % len(self.grads)]
        self.calls += 1
        self.params, self.state = self.step(self.params, self.state, g)
        return self.params, self.state


def copy_tree(tree: Any) -> Any:
    """Fresh device buffers (donation consumes its inputs)."""
    return jax.tree.map(jnp.copy, tree)


def tree_nbytes(tree: Any) -> int:
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))


def check_agreement(variants: Sequence[Variant], steps: int = 3) -> list[str]:
    """Run each variant a few steps in both libraries on a small tree; return the
    names of the variants whose parameters differ beyond float32 rounding."""
    params = make_tree(jax.random.key(1), Shape(2, 257, 1, 1, False))
    grads = make_tree(jax.random.key(2), Shape(2, 257, 1, 1, False))
    bad = []
    for v in variants:
        finals = []
        for factory in (v.jaxgd, v.optax):
            opt = factory()
            p, s = params, opt.init(params)
            for _ in range(steps):
                u, s = opt.update(grads, s, p)
                p = jaxgd.apply_updates(p, u)
            finals.append(p)
        close = jax.tree.map(lambda a, b: np.allclose(a, b, rtol=1e-5, atol=1e-6), *finals)
        if not all(jax.tree.leaves(close)):
            bad.append(v.name)
    return bad


@dataclass
class Row:
    variant: str
    shape: Shape
    bytes_per_param: float
    jaxgd: timing.Timing
    optax: timing.Timing
    ratio: timing.Timing
    elementwise: timing.Timing
    compile_jaxgd: float
    compile_optax: float
    nonfinite: list[str]  # libraries whose params ended up with inf/nan
    undonated: bool


def bench_shape(
    shape: Shape, variants: Sequence[Variant], seed: int, hlo_dir: Path | None
) -> tuple[list[Row], timing.Timing]:
    kp, *kgs = jax.random.split(jax.random.key(seed), 1 + N_GRADS)
    params0 = make_tree(kp, shape)
    grads = [make_tree(k, shape) for k in kgs]
    fns: dict[str, Callable[[], Any]] = {}
    compile_s: dict[str, float] = {}
    undonated: dict[str, bool] = {}
    bytes_per_param: dict[str, float] = {}
    for v in variants:
        for lib, factory in (("jaxgd", v.jaxgd), ("optax", v.optax)):
            opt = factory()
            params = copy_tree(params0)
            state = opt.init(params)
            step = make_step(opt)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                ct = timing.time_compile(step, params, state, grads[0], donate_argnums=(0, 1))
            key = f"{v.name}/{lib}"
            undonated[key] = any("donated" in str(w.message) for w in caught)
            compile_s[key] = ct.total_s
            # read p, g, state; write p, state (float32 here)
            moved = 2 * tree_nbytes(params) + tree_nbytes(grads[0]) + 2 * tree_nbytes(state)
            bytes_per_param[key] = moved / shape.n
            # private copies: a gradient buffer shared by all the callables would stay
            # hotter in cache than the elementwise pass's own (measured: ~15% on 1M floats)
            fns[key] = Stepper(ct.compiled, params, state, [copy_tree(g) for g in grads])
            if hlo_dir is not None:
                stem = f"{v.name}_{shape.leaves}x{shape.size}_{lib}"
                (hlo_dir / f"{stem}.optimized.hlo.txt").write_text(ct.compiled.as_text())
                lowered = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, grads[0])
                (hlo_dir / f"{stem}.stablehlo.txt").write_text(lowered.as_text())

    flat_p = jnp.concatenate([x.ravel() for x in jax.tree.leaves(params0)])
    flat_gs = [jnp.concatenate([x.ravel() for x in jax.tree.leaves(g)]) for g in grads]
    # called like the steps (a Compiled executable in a Stepper), so the same dispatch path
    elementwise = timing.time_compile(
        lambda p, s, g: (p + 1e-3 * g, s), flat_p, None, flat_gs[0], donate_argnums=(0,)
    ).compiled
    fns["elementwise"] = Stepper(elementwise, flat_p, None, flat_gs)

    t = timing.time_interleaved(fns, repeats=shape.repeats, inner=shape.inner)
    rows = []
    for v in variants:
        a, b = f"{v.name}/jaxgd", f"{v.name}/optax"
        nonfinite = [
            lib
            for lib, k in (("jaxgd", a), ("optax", b))
            if not all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(fns[k].params))
        ]
        rows.append(
            Row(
                variant=v.name,
                shape=shape,
                bytes_per_param=bytes_per_param[a],
                jaxgd=t[a],
                optax=t[b],
                ratio=timing.paired_ratio(t, a, b),
                elementwise=t["elementwise"],
                compile_jaxgd=compile_s[a],
                compile_optax=compile_s[b],
                nonfinite=nonfinite,
                undonated=undonated[a] or undonated[b],
            )
        )
    return rows, t["elementwise"]


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}"


def result_table(rows: Sequence[Row]) -> str:
    headers = [
        "variant",
        "shape",
        "B/param",
        "jaxgd ms",
        "optax ms",
        "jaxgd/optax",
        "ratio IQR",
        "jaxgd GB/s",
        "jaxgd / elementwise",
        "compile ms jaxgd / optax",
    ]
    body = []
    for r in rows:
        flag = ""
        if r.shape.target and r.ratio.median > TARGET_RATIO:
            flag = " **>1.05**"
        if r.nonfinite:
            flag += f" (non-finite: {'+'.join(r.nonfinite)}!)"
        if r.undonated:
            flag += " (buffers not donated!)"
        gbps = r.bytes_per_param * r.shape.n / r.jaxgd.median / 1e9
        body.append(
            [
                r.variant,
                r.shape.label,
                f"{r.bytes_per_param:.0f}",
                ms(r.jaxgd.median),
                ms(r.optax.median),
                f"{r.ratio.median:.3f}{flag}",
                f"{r.ratio.q1:.3f}-{r.ratio.q3:.3f}",
                f"{gbps:.1f}",
                f"{r.jaxgd.median / r.elementwise.median:.2f}",
                f"{r.compile_jaxgd * 1e3:.0f} / {r.compile_optax * 1e3:.0f}",
            ]
        )
    return timing.markdown_table(headers, body, align="ll" + "r" * (len(headers) - 2))


def elementwise_table(baselines: Sequence[tuple[Shape, timing.Timing]]) -> str:
    body = []
    for shape, t in baselines:
        body.append(
            [
                shape.label,
                f"1 x {shape.n:,}",
                ms(t.median),
                f"{ms(t.q1)}-{ms(t.q3)}",
                f"{12 * shape.n / t.median / 1e9:.1f}",
            ]
        )
    headers = ["tree shape", "flattened", "ms", "IQR ms", "GB/s (12 B/param)"]
    return timing.markdown_table(headers, body)


def summary(rows: Sequence[Row]) -> str:
    target = [r for r in rows if r.shape.target]
    over = [r for r in target if r.ratio.median > TARGET_RATIO]
    if not target:
        return "No target shapes were run (the quick shapes are smaller; no verdict)."
    if not over:
        worst = max(target, key=lambda r: r.ratio.median)
        return (
            f"Target met: jaxgd/optax <= {TARGET_RATIO} for every variant on the target "
            f"shapes (worst {worst.ratio.median:.3f}, {worst.variant} on {worst.shape.label})."
        )
    names = ", ".join(f"{r.variant} on {r.shape.label} ({r.ratio.median:.3f})" for r in over)
    return f"Target NOT met: jaxgd/optax > {TARGET_RATIO} for {names}."


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.update_step", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes and repeats; writes nothing unless --write"
    )
    parser.add_argument(
        "--write", action="store_true", help="write the RESULTS.md section even with --quick"
    )
    parser.add_argument("--no-write", action="store_true", help="never write RESULTS.md")
    parser.add_argument(
        "--variants", help="comma-separated subset of: " + ", ".join(v.name for v in VARIANTS)
    )
    parser.add_argument(
        "--shapes", help="comma-separated indexes into the shape list (0, 1, 2), default all"
    )
    parser.add_argument("--repeats", type=int, help="override the rounds of every shape")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--results", type=Path, default=timing.RESULTS_PATH, help="results file to update"
    )
    parser.add_argument(
        "--dump-hlo", type=Path, metavar="DIR", help="write each step's HLO (optimized, StableHLO)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    variants = VARIANTS
    if args.variants:
        wanted = args.variants.split(",")
        unknown = set(wanted) - {v.name for v in VARIANTS}
        if unknown:
            raise SystemExit(f"unknown variants: {sorted(unknown)}")
        variants = [v for v in VARIANTS if v.name in wanted]
    shapes = QUICK_SHAPES if args.quick else FULL_SHAPES
    if args.shapes:
        shapes = [shapes[int(i)] for i in args.shapes.split(",")]
    if args.repeats:
        shapes = [Shape(s.leaves, s.size, args.repeats, s.inner, s.target) for s in shapes]
    if args.dump_hlo:
        args.dump_hlo.mkdir(parents=True, exist_ok=True)
    subset = bool(args.variants or args.shapes or args.repeats)
    write = not args.no_write and (args.write or not (args.quick or subset))

    info = timing.machine_info()
    print(info, flush=True)
    start = time.perf_counter()
    mismatched = check_agreement(variants)
    if mismatched:
        print(f"WARNING: jaxgd and optax disagree for {mismatched}", flush=True)

    rows: list[Row] = []
    baselines = []
    for shape in shapes:
        t0 = time.perf_counter()
        shape_rows, base = bench_shape(shape, variants, args.seed, args.dump_hlo)
        rows += shape_rows
        baselines.append((shape, base))
        print(
            f"\n{shape.label}: {len(variants)} variants, {shape.repeats} rounds x "
            f"{shape.inner} calls, {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        print(result_table(shape_rows), flush=True)
    elapsed = time.perf_counter() - start

    table, base_table = result_table(rows), elementwise_table(baselines)
    verdict = summary(rows)
    print("\nelementwise baseline p + 1e-3 * g (tree flattened to one array)")
    print(base_table)
    print(f"\n{verdict}  ({elapsed:.0f} s)")

    if write:
        command = "python -m benchmarks.update_step" + (" " + " ".join(sys.argv[1:])).rstrip()
        body = "\n".join(
            [
                "## update_step: one jitted optimizer step, jaxgd vs optax",
                "",
                *(f"- {line}" for line in info.splitlines()),
                f"- reproduce (repository root): `.venv/bin/python -m benchmarks.update_step`"
                f" (this run: `{command}`, {elapsed:.0f} s)",
                "",
                "`params, state = step(params, state, grads)` with step = `opt.update` + "
                "`apply_updates`, jitted with params and state donated; float32 random-normal "
                f"params and grads ({N_GRADS} gradient trees fed in turn; each timed callable "
                f"holds its own copies); learning rate {LR}. jaxgd and optax run interleaved in "
                "one process (order shuffled each round); times are medians of per-round means "
                "(ms per step), *jaxgd/optax* is the median of the per-round ratios (IQR "
                "beside it). B/param: bytes a step reads and writes per parameter (p, g, "
                "state in; p, state out). *jaxgd / elementwise*: the step time over that "
                "of `p + 1e-3 * g` on the same number of floats (12 B/param), measured in "
                "the same rounds. Compile: trace + lower + compile, timed once.",
                "",
                f"**{verdict}** (target: <= {TARGET_RATIO} on the 1-leaf and 10-leaf shapes; "
                "the 1000-leaf shape is only recorded.)",
                *([f"**jaxgd and optax disagree for {mismatched}.**"] if mismatched else []),
                "",
                table,
                "",
                "Elementwise baseline `p + 1e-3 * g`, jitted, p donated:",
                "",
                base_table,
            ]
        )
        path = timing.write_results_section(SECTION, body, args.results)
        print(f"wrote section '{SECTION}' of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
