"""Many-leaf trees: ``jaxgd.fit``'s flat fast path against optax's per-leaf programs.

MLP: 200 residual tanh layers of width 64 (600 leaves), Adam, K = 40 steps per call.
Tree: 1000 leaves x 1,000 floats, loss ``vdot(concatenate(leaves), G)`` (the step is
almost all update), K = 30. *fit*: the public call; *fit program*: ``jax.jit`` of it (the
loop alone); *optax scan*: a ``lax.scan`` of K optax steps; *python loop*: K jitted optax
steps as optax's docs write them, and donated; *update step*: the public per-leaf update,
jitted and donated; *floor*: a scan of ``p - lr * grad``. Times in us per step. Compile:
``lower_fit(...).compile()`` or ``jit(...).lower(...).compile()``; *first call*: fit's
first call minus a steady one. The per-leaf ``fit(flat_params=False)`` compiles
superlinearly in the leaf count: it runs in a child process under a time cap, and its
1000-leaf compile is extrapolated from the curve (power law through its last two points).
"""

from __future__ import annotations

import functools
import math
import sys
import time
from collections import namedtuple
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import optax

import jaxgd
from benchmarks import harness
from benchmarks import workloads as wl
from benchmarks.harness import Figure, Ratio, Timing

# the MLP (layers of width x width, batch rows); the tree (leaves of size floats); the
# leaf counts of the compile curve; seconds the per-leaf fit child may take
Config = namedtuple("Config", "layers width batch mlp_steps leaves size tree_steps repeats "
                    "curve cap optimizers")
FULL = Config(200, 64, 64, 40, 1000, 1000, 30, 8, (32, 64, 128, 256), 90.0,
              ("adam", "momentum", "rmsprop"))
QUICK = Config(10, 16, 16, 5, 40, 100, 5, 3, (4, 8), 30.0, ("adam",))
OPTIMIZERS = {
    "adam": (lambda: jaxgd.adam(1e-3), lambda: optax.adam(1e-3)),
    "momentum": (lambda: jaxgd.momentum(1e-3, 0.9), lambda: optax.sgd(1e-3, momentum=0.9)),
    "rmsprop": (lambda: jaxgd.rmsprop(1e-3), lambda: optax.rmsprop(1e-3)),
}


def mlp_problem(cfg: Config, seed: int = 0) -> tuple[Any, Any]:
    """``(params, (x, y))``: weights scaled 1/sqrt(width), small biases, scales near 1."""
    w = cfg.width
    keys = iter(jax.random.split(jax.random.key(seed), 3 * cfg.layers + 2))
    params = {f"layer{i:03d}": {
        "w": jax.random.normal(next(keys), (w, w)) / math.sqrt(w),
        "b": 0.1 * jax.random.normal(next(keys), (w,)),
        "scale": 1.0 + 0.1 * jax.random.normal(next(keys), (w,))} for i in range(cfg.layers)}
    x = jax.random.normal(next(keys), (cfg.batch, w))
    return params, (x, jnp.tanh(jax.random.normal(next(keys), (cfg.batch, w))))


def mlp_loss(params: Any, batch: Any) -> jax.Array:
    """The residual form keeps 200 layers well conditioned (a plain stack is chaotic:
    runs that differ by rounding part within a few steps)."""
    x, y = batch
    for name in sorted(params):
        layer = params[name]
        h = x @ layer["w"] + layer["b"]
        h = h * jax.lax.rsqrt(jnp.mean(h * h, axis=-1, keepdims=True) + 1e-5)
        x = x + jnp.tanh(h * layer["scale"]) / math.sqrt(len(params))
    return jnp.mean((x - y) ** 2)


@dataclass
class Case:
    name: str
    steps: int
    t: dict[str, Timing]
    compile_s: dict[str, float]
    diff: float

    def ratio(self, a: str, b: str) -> Ratio:
        return Ratio.of(self.t, a, b)


def bench_mlp(cfg: Config) -> Case:
    params, data = mlp_problem(cfg)
    theirs, k = optax.adam(1e-3), cfg.mlp_steps
    fns, compile_s, diff = wl.fit_and_scan(mlp_loss, params, jaxgd.adam(1e-3), theirs, data, k)
    state, floor = theirs.init(params), jax.jit(wl.floor_scan(mlp_loss, k))
    donated = jax.jit(wl.train_step(mlp_loss, theirs), donate_argnums=(0, 1))
    fns |= {"python loop": wl.Stepper(jax.jit(wl.train_step(mlp_loss, theirs)), params,
                                      state, [data], k),
            "python loop, donated": wl.Stepper(donated, wl.copy_tree(params),
                                               theirs.init(wl.copy_tree(params)), [data], k),
            "floor": lambda: floor(params, data, 1e-3)}
    return Case("MLP", k, harness.time_interleaved(fns, cfg.repeats), compile_s, diff)


def bench_tree(cfg: Config, name: str) -> Case:
    params, g = wl.leaves_problem(cfg.leaves, cfg.size)
    ours, theirs = (f() for f in OPTIMIZERS[name])
    start = time.perf_counter()  # before anything of fit is compiled
    jax.block_until_ready(jaxgd.fit(wl.leaves_loss, params, ours, g, max_steps=cfg.tree_steps))
    first = time.perf_counter() - start
    jax.clear_caches()  # so that the loop alone compiles again
    fns, compile_s, diff = wl.fit_and_scan(wl.leaves_loss, params, ours, theirs, g,
                                           cfg.tree_steps)
    grads = [wl.random_tree(7 + i, [(cfg.size,)] * cfg.leaves) for i in range(2)]
    for lib, opt in (("jaxgd", ours), ("optax", theirs)):
        fns[f"{lib} update step"], compile_s[f"{lib} update step"] = wl.stepper(
            opt, params, grads, times=cfg.tree_steps)
    t = harness.time_interleaved(fns, cfg.repeats)
    compile_s["first call"] = first - t["fit"].low
    return Case(name, cfg.tree_steps, t, compile_s, diff)


def child(part: str, quick: bool) -> None:
    """``mlp``: compile and time ``fit(flat_params=False)`` against the optax scan;
    ``curve``: its compile time on the leaf counts of the curve, one record each."""
    cfg = QUICK if quick else FULL
    ours, theirs = jaxgd.adam(1e-3), optax.adam(1e-3)
    if part in ("measures on", "measures off"):  # what the XLA:CPU measures buy
        if part == "measures off":  # the plain path other backends take
            from jaxgd.train import flat
            flat.COMPILE_TIME_MEASURES = frozenset()
        for name, loss, (params, data), k in (
                ("MLP", mlp_loss, mlp_problem(cfg), cfg.mlp_steps),
                ("tree", wl.leaves_loss, wl.leaves_problem(cfg.leaves, cfg.size), cfg.tree_steps)):
            def run(params=params, data=data, loss=loss, k=k):
                return jax.block_until_ready(jaxgd.fit(loss, params, ours, data, max_steps=k))
            seconds = [time.perf_counter(), run(), time.perf_counter(), *(run() for _ in range(5)),
                       time.perf_counter()]
            harness.emit([name, seconds[2] - seconds[0], (seconds[-1] - seconds[2]) / 5 / k])
        return
    if part == "curve":
        for n in cfg.curve:
            params, g = wl.leaves_problem(n, cfg.size)
            harness.emit({"leaves": n, "compile_s": harness.time_lowering(
                lambda p=params, g=g: jaxgd.lower_fit(wl.leaves_loss, p, ours, g,
                                                      max_steps=cfg.tree_steps + 1,
                                                      flat_params=False))[0]})
        return
    params, data = mlp_problem(cfg)
    k, state = cfg.mlp_steps, theirs.init(params)
    seconds, _ = harness.time_lowering(lambda: jaxgd.lower_fit(
        mlp_loss, params, ours, data, max_steps=k, flat_params=False))
    scan = jax.jit(wl.optax_scan(mlp_loss, theirs, k))
    t = harness.time_interleaved({
        "fit": lambda: jaxgd.fit(mlp_loss, params, ours, data, max_steps=k,
                                 flat_params=False).params,
        "optax scan": lambda: scan(params, state, data)}, cfg.repeats)
    harness.emit({"compile_s": seconds, "us": t["fit"].low / k * 1e6,
                  "ratio": Ratio.of(t, "fit", "optax scan").text()})


def extrapolate(points: dict[int, float], n: int) -> float | None:
    """Power law through the two largest measured points."""
    if len(points) < 2:
        return None
    (n1, t1), (n2, t2) = sorted(points.items())[-2:]
    return t2 * (n / n2) ** (math.log(t2 / t1) / math.log(n2 / n1))


Measured = namedtuple("Measured", "cfg mlp per_leaf trees curve per_leaf_curve measures")


def measure(quick: bool) -> Measured:
    cfg = QUICK if quick else FULL
    flags = ["--quick"] if quick else []
    found, _ = harness.run_child("many_leaf", ["--child", "curve", *flags], timeout=cfg.cap)
    per_leaf_curve = {r["leaves"]: r["compile_s"] for r in found}
    mlp = bench_mlp(cfg)
    predicted = extrapolate(per_leaf_curve, 3 * cfg.layers)
    if predicted and predicted > cfg.cap:
        per_leaf = {"note": f"not attempted: compile extrapolated to ~{predicted:.0f} s"}
    else:
        found, _ = harness.run_child("many_leaf", ["--child", "mlp", *flags],
                                     timeout=cfg.cap + 120)
        per_leaf = found[-1] if found else {"note": "child stopped or failed"}
    trees = [bench_tree(cfg, name) for name in cfg.optimizers]
    curve = []
    for n in cfg.curve:  # K + 1 steps: not the programs timed above (they come cached)
        params, g = wl.leaves_problem(n, cfg.size)
        ours, theirs, k = jaxgd.adam(1e-3), optax.adam(1e-3), cfg.tree_steps + 1
        curve.append([n, harness.time_lowering(functools.partial(
            jaxgd.lower_fit, wl.leaves_loss, params, ours, g, max_steps=k))[0],
            per_leaf_curve.get(n),
            harness.time_compile(wl.optax_scan(wl.leaves_loss, theirs, k), params,
                                 theirs.init(params), g)[0],
            *(wl.stepper(o, params, [params])[1] for o in (ours, theirs))])
    measures = [harness.run_child("many_leaf", ["--child", part, *flags], timeout=600)[0]
                for part in ("measures on", "measures off")]
    return Measured(cfg, mlp, per_leaf, trees, curve, per_leaf_curve, measures)


def secs(s: float | None) -> str:
    return "-" if s is None else f"{s:.2f}"


def report(m: Measured, plots: Path | None) -> tuple[dict[str, Figure], list[str]]:
    cfg, c, pl = m.cfg, m.mlp, m.per_leaf

    def table(case: Case, **extra: dict) -> str:
        return harness.timing_table(case.t, "optax scan", "us / step", 1e6 / case.steps,
                                    compile_s={n: secs(x) for n, x in case.compile_s.items()},
                                    **extra)

    per_leaf = (f"{pl['ratio']} ({pl['us']:,.0f} us / step, compile {pl['compile_s']:.2f} s)"
                if "ratio" in pl else pl["note"])
    figures = {"mlp": Figure.ratio(c.ratio("fit", "python loop"), "Donated loop "
                                   f"{c.ratio('fit', 'python loop, donated').text(iqr=False)}; "
                                   f"fit(flat_params=False) / optax scan {per_leaf}")}
    blocks = [f"MLP, Adam, K = {c.steps}:\n\n{table(c)}\n\nfit(flat_params=False), in a "
              f"child process, / optax scan: {per_leaf}."]
    for tc in m.trees:
        vs_step = {n: tc.ratio(n, "optax update step").text() for n in tc.t}
        blocks.append(f"{cfg.leaves} x {cfg.size:,}, {tc.name}, K = {tc.steps}:\n\n"
                      + table(tc, per_optax_update_step=vs_step))
    worst = [max(v) for v in zip(*((r.median, r.low) for r in (
        tc.ratio("fit", "optax update step") for tc in m.trees)), strict=True)]
    figures["tree"] = Figure(tuple(worst), ", ".join(
        f"{tc.name} {tc.ratio('fit', 'optax update step').text(iqr=False)}" for tc in m.trees),
        "Against the optax scan: " + ", ".join(
            f"{tc.name} {tc.ratio('fit', 'optax scan').text(iqr=False)}" for tc in m.trees))
    figures["public_step"] = Figure((), ", ".join(
        f"{tc.name} {tc.ratio('jaxgd update step', 'optax update step').text(iqr=False)}"
        for tc in m.trees))
    adam = m.trees[0].compile_s
    first, step = adam["first call"], adam["optax update step"]
    figures["compile_first"] = Figure(
        (first / step,), f"{first:.2f} s / {step:.2f} s = {first / step:.3f}",
        f"the loop alone compiles in {adam['fit']:.2f} s, the optax scan in "
        f"{adam['optax scan']:.2f} s")
    figures["compile_step"] = Figure((), f"{adam['jaxgd update step']:.2f} s / {step:.2f} s")
    big = extrapolate(m.per_leaf_curve, cfg.leaves)
    big_text = f"~{big:.0f} (extrapolated)" if big else "-"
    figures["compile_fit"] = Figure((), f"{adam['fit']:.2f} s / {big_text} s")
    curve = harness.markdown_table(
        ["leaves", "fit flat s", "fit per-leaf s", "optax scan s", "jaxgd update step s",
         "optax update step s"],
        [[r[0], *map(secs, r[1:])] for r in m.curve] + [[cfg.leaves, secs(adam["fit"]), big_text,
         *map(secs, (adam["optax scan"], adam["jaxgd update step"], step))]])
    diffs = "; ".join(f"{x.name} {x.diff:.1e}" for x in [c, *m.trees])
    measures = harness.markdown_table(
        ["Adam", "first call s: on / off", "us / step: on / off"],
        [[on[0], f"{on[1]:.2f} / {off[1]:.2f}", f"{on[2] * 1e6:,.0f} / {off[2] * 1e6:,.0f}"]
         for on, off in zip(*m.measures, strict=True)])
    blocks.append("fit with its XLA:CPU compile-time measures *on* (conversions outside the "
                  "loop's program, leaves cut at input offsets) and *off* (`jaxgd.train.flat."
                  f"COMPILE_TIME_MEASURES` emptied), fresh processes:\n\n{measures}")
    return figures, [*blocks, f"Compile time against leaf count (Adam, leaves of {cfg.size:,} "
                     f"floats):\n\n{curve}", f"max |p_fit - p_scan| after K steps: {diffs}."]


if __name__ == "__main__":
    sys.exit(harness.main("many_leaf"))
