"""Many-leaf trees: ``jaxgd.fit``'s flat fast path against optax's per-leaf loops.

On the CPU an optimizer step costs microseconds per leaf whatever the leaf's size, so a
tree of a thousand small leaves is dominated by per-leaf kernels. ``jaxgd.fit`` holds the
parameters as one vector for flatten-invariant optimizers (``jaxgd/train/flat.py``); this
suite measures what that buys, interleaved with optax in one process:

* **MLP** (the issue's measurement 3): 200 layers of width 64, each ``{"w": (64, 64),
  "b": (64,), "scale": (64,)}`` (600 leaves, 845k params), residual layers ``x +=
  tanh(rmsnorm(x @ w + b) * scale) / sqrt(200)``, mean squared error on a fixed 64 x 64
  batch, Adam. Per step: the public
  ``jaxgd.fit(loss, params, adam, data, max_steps=K)`` (flat path chosen automatically),
  its compiled program alone (``jax.jit`` of the same call), a hand-written optax
  ``lax.scan`` of K steps and a Python loop of K jitted optax steps, once as optax's
  documentation writes the step (nothing donated: the issue's 14.1 ms measurement) and
  once with params and state donated.
* **1000 x 1k tree** (measurement 4): 1000 leaves of 1,000 floats, the loss
  ``vdot(concatenate(leaves), G)`` (its gradient is a fixed random vector, so the step is
  almost all optimizer update), Adam, SGD + momentum and RMSProp: ``fit`` (flat) per step
  against an optax scan of K steps of the same loss, and the public per-leaf update step
  (``update`` + ``apply_updates``, jitted, donated) of jaxgd against optax's.
* **Compile time** (measurement 2): the jitted update step on the 1000-leaf tree (jaxgd,
  optax), and ``fit``'s program on trees of 32 ... 1000 leaves of 1k, flat and per-leaf
  (``jaxgd.lower_fit(..., flat_params=True / False)``), next to the optax scan.

``fit(flat_params=False)`` compiles superlinearly in the leaf count, so its programs are
built in a child process with a time limit (``--cap``); where the leaf-count curve says
the compile would take longer than the cap, it is extrapolated (power law through the two
largest measured points) and not attempted.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.many_leaf            # full run, writes RESULTS.md
    .venv/bin/python -m benchmarks.many_leaf --quick    # seconds, writes nothing

Targets (the issue): MLP fit / optax python loop <= 0.7; 1000 x 1k fit (flat) / optax
update step <= 0.25 (the issue's baselines: its figures are a jitted training step and a
jitted update step called from Python). The update step here is donated, a stronger
baseline than the issue's (about half its time); the MLP's verdict is against the step
as optax's docs write it, with the donated loop's ratio beside it. The ratios to a
hand-written optax ``lax.scan`` are reported too. The per-leaf public update ratio and
the compile times are recorded.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
from benchmarks.ratios import Ratio, Target, low  # noqa: E402
from benchmarks.update_step import Report, Stepper, copy_tree, random_tree  # noqa: E402
from jaxgd.train.flat import FlatLayout  # noqa: E402

SECTION = "many_leaf"
TARGET_MLP = 0.7  # fit / optax scan on the 600-leaf MLP
TARGET_TREE = 0.25  # fit (flat) / optax update step on 1000 x 1k
TARGET_COMPILE = 0.25  # its compile time, fit's first call / the optax update step
ROOT = Path(__file__).resolve().parent.parent
GUARD = "flat scan + fit's guard"


@dataclass(frozen=True)
class Config:
    mlp_layers: int
    mlp_width: int
    mlp_batch: int
    mlp_steps: int
    mlp_repeats: int
    tree_leaves: int
    tree_size: int
    tree_steps: int
    tree_repeats: int
    curve_leaves: tuple[int, ...]  # leaf counts of the compile curve (x tree_size)
    cap: float  # seconds a per-leaf fit compile may take in the child process
    optimizers: tuple[str, ...] = ("adam", "momentum", "rmsprop")


FULL = Config(
    mlp_layers=200, mlp_width=64, mlp_batch=64, mlp_steps=40, mlp_repeats=8,
    tree_leaves=1000, tree_size=1000, tree_steps=30, tree_repeats=8,
    curve_leaves=(32, 64, 128, 256), cap=90.0,
)
QUICK = Config(
    mlp_layers=10, mlp_width=16, mlp_batch=16, mlp_steps=5, mlp_repeats=3,
    tree_leaves=40, tree_size=100, tree_steps=5, tree_repeats=3,
    curve_leaves=(4, 8), cap=30.0, optimizers=("adam",),
)

# name -> (jaxgd factory, optax factory)
OPTIMIZERS: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
    "adam": (lambda: jaxgd.adam(1e-3), lambda: optax.adam(1e-3)),
    "momentum": (lambda: jaxgd.momentum(1e-3, 0.9), lambda: optax.sgd(1e-3, momentum=0.9)),
    "rmsprop": (lambda: jaxgd.rmsprop(1e-3), lambda: optax.rmsprop(1e-3)),
}


# --- the problems -------------------------------------------------------------------


def mlp_problem(cfg: Config, seed: int = 0) -> tuple[Any, Any]:
    """``(params, (X, Y))`` of the MLP: random-normal weights scaled 1/sqrt(width),
    small random biases, scales near 1 (nothing all-zero)."""
    w = cfg.mlp_width
    keys = jax.random.split(jax.random.key(seed), 3 * cfg.mlp_layers + 2)
    params = {}
    for i in range(cfg.mlp_layers):
        kw, kb, ks = keys[3 * i : 3 * i + 3]
        params[f"layer{i:03d}"] = {
            "w": jax.random.normal(kw, (w, w), jnp.float32) / math.sqrt(w),
            "b": 0.1 * jax.random.normal(kb, (w,), jnp.float32),
            "scale": 1.0 + 0.1 * jax.random.normal(ks, (w,), jnp.float32),
        }
    x = jax.random.normal(keys[-2], (cfg.mlp_batch, w), jnp.float32)
    y = jnp.tanh(jax.random.normal(keys[-1], (cfg.mlp_batch, w), jnp.float32))
    return params, (x, y)


def mlp_loss(params: Any, batch: Any) -> jax.Array:
    """Mean squared error of a residual stack ``x += tanh(rmsnorm(x @ w + b) * scale) /
    sqrt(layers)``. The residual form keeps the 200-layer network well conditioned (its
    gradients O(1e-4), Adam trains it; without it the plain stack is chaotic: runs that
    differ by float rounding after one step part by 1e-2 within three)."""
    x, y = batch
    branch = 1.0 / math.sqrt(len(params))
    for name in sorted(params):
        layer = params[name]
        h = x @ layer["w"] + layer["b"]
        h = h * jax.lax.rsqrt(jnp.mean(h * h, axis=-1, keepdims=True) + 1e-5)
        x = x + branch * jnp.tanh(h * layer["scale"])
    return jnp.mean((x - y) ** 2)


def tree_problem(leaves: int, size: int, seed: int = 0) -> tuple[Any, jax.Array]:
    """``(params, G)``: ``leaves`` random-normal leaves of ``size`` floats and the fixed
    gradient vector ``G`` (passed to the loss as its data)."""
    params = random_tree(seed + 100, [(size,)] * leaves)
    g = random_tree(seed + 101, [(leaves * size,)])["w0000"]
    return params, g


def tree_loss(params: Any, g: jax.Array) -> jax.Array:
    """``vdot(concatenate(leaves), G)``: one cheap pass forward, gradient ``G``."""
    return jnp.vdot(jnp.concatenate([x.ravel() for x in jax.tree.leaves(params)]), g)


# --- the timed callables ------------------------------------------------------------


def make_scan(loss_fn: Callable, opt: Any, steps: int) -> Callable:
    """A jitted optax ``lax.scan`` of ``steps`` steps, losses as its outputs."""

    def run(params, state, data):
        def body(carry, _):
            p, s = carry
            loss, grads = jax.value_and_grad(loss_fn)(p, data)
            updates, s = opt.update(grads, s, p)
            return (optax.apply_updates(p, updates), s), loss

        (p, s), losses = jax.lax.scan(body, (params, state), None, length=steps)
        return p, s, losses

    return run


def make_flat_scan(loss_fn: Callable, opt: Any, steps: int, layout: FlatLayout,
                   guarded: bool = False) -> Callable:
    """The optax scan with the params held as one vector (``layout``), as ``fit``'s fast
    path holds them. Called with ``(layout.ravel(params), opt.init(flat), data)``.

    Unguarded: no per-step checks, what flattening alone buys inside a compiled loop.
    ``guarded``: with ``fit``'s non-finite guard as ``jaxgd/train/loop.py`` writes it (the
    flag from the loss and the gradient norm, which ``fit`` records anyway, the update
    inside ``lax.cond``) and the gradient-norm history.
    """

    def flat_loss(flat, data):
        return loss_fn(layout.unravel(flat), data)

    if not guarded:
        return make_scan(flat_loss, opt, steps)

    def run(params, state, data):
        def body(carry, _):
            p, s = carry
            loss, g = jax.value_and_grad(flat_loss)(p, data)
            gnorm = jnp.linalg.norm(g)
            ok = jnp.isfinite(loss) & jnp.isfinite(gnorm)

            def step(p, s):
                u, s2 = opt.update(g, s, p)
                return optax.apply_updates(p, u), s2

            p2, s2 = jax.lax.cond(ok, step, lambda p, s: (p, s), p, s)
            return (p2, s2), (loss, gnorm)

        (p, s), hist = jax.lax.scan(body, (params, state), None, length=steps)
        return p, s, hist

    return run


def make_train_step(loss_fn: Callable, opt: Any) -> Callable:
    def step(params, state, data):
        loss, grads = jax.value_and_grad(loss_fn)(params, data)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    return step


def make_update_step(opt: Any) -> Callable:
    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return step


class Repeat:
    """Call ``fn`` ``times`` times (one timed unit of ``times`` steps)."""

    def __init__(self, fn: Callable[[], Any], times: int):
        self.fn, self.times = fn, times

    def __call__(self) -> Any:
        out = None
        for _ in range(self.times):
            out = self.fn()
        return out


class TrainLoop:
    """A Python loop of a jitted optax training step (``step(params, state, data)``)."""

    def __init__(self, step: Callable, params: Any, state: Any, data: Any, steps: int):
        self.step, self.params, self.state, self.data, self.steps = (
            step, params, state, data, steps)

    def __call__(self) -> Any:
        loss = None
        for _ in range(self.steps):
            self.params, self.state, loss = self.step(self.params, self.state, self.data)
        return loss


# --- the per-leaf fit, in a child process --------------------------------------------


def child_main(kind: str, quick: bool, optimizer: str, leaves: Sequence[int]) -> None:
    """Print ``CHILD {json}`` lines: per-leaf ``fit`` compile times (``curve``), or the
    compile and per-step time of ``fit(flat_params=False)`` against the optax scan
    (``mlp``, ``tree``) interleaved."""
    cfg = QUICK if quick else FULL
    make_ours, make_theirs = OPTIMIZERS[optimizer]
    if kind == "curve":
        for n in leaves:
            params, g = tree_problem(n, cfg.tree_size)
            t0 = time.perf_counter()
            jaxgd.lower_fit(tree_loss, params, make_ours(), g, max_steps=cfg.tree_steps + 1,
                            flat_params=False).compile()
            print("CHILD " + json.dumps({"leaves": n, "compile_s": time.perf_counter() - t0}),
                  flush=True)
        return
    if kind == "mlp":
        params, data = mlp_problem(cfg)
        loss_fn, steps, repeats = mlp_loss, cfg.mlp_steps, cfg.mlp_repeats
    else:
        params, data = tree_problem(cfg.tree_leaves, cfg.tree_size)
        loss_fn, steps, repeats = tree_loss, cfg.tree_steps, cfg.tree_repeats
    ours, theirs = make_ours(), make_theirs()
    t0 = time.perf_counter()
    jaxgd.lower_fit(loss_fn, params, ours, data, max_steps=steps, flat_params=False).compile()
    compile_s = time.perf_counter() - t0
    print("CHILD " + json.dumps({"compile_s": compile_s}), flush=True)
    scan = jax.jit(make_scan(loss_fn, theirs, steps))
    state = theirs.init(params)
    fns = {
        "fit per-leaf": lambda: jaxgd.fit(loss_fn, params, ours, data, max_steps=steps,
                                          flat_params=False).params,
        "optax scan": lambda: scan(params, state, data),
    }
    t = timing.time_interleaved(fns, repeats=repeats, inner=1)
    r = Ratio.of(t, "fit per-leaf", "optax scan")
    print("CHILD " + json.dumps({
        "compile_s": compile_s,
        "fit_low_s": low(t["fit per-leaf"]) / steps,
        "scan_low_s": low(t["optax scan"]) / steps,
        "paired": r.paired.samples.tolist(),
        "low_ratio": r.low,
    }), flush=True)


def run_child(args: Sequence[str], timeout: float) -> tuple[list[dict[str, Any]], bool]:
    """Run ``python -m benchmarks.many_leaf --child ...``; return its ``CHILD`` records
    and whether it ran out of time."""
    cmd = [sys.executable, "-m", "benchmarks.many_leaf", *args]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        out, timed_out = proc.stdout, False
        if proc.returncode != 0:
            print(f"child {args} failed:\n{proc.stderr[-3000:]}", flush=True)
    except subprocess.TimeoutExpired as e:
        raw = e.stdout or b""
        out, timed_out = raw.decode() if isinstance(raw, bytes) else raw, True
    records = [json.loads(line[6:]) for line in out.splitlines() if line.startswith("CHILD ")]
    return records, timed_out


def extrapolate(points: Sequence[tuple[int, float]], n: int) -> float | None:
    """Power law through the two largest measured ``(leaves, seconds)`` points."""
    if len(points) < 2:
        return None
    (n1, t1), (n2, t2) = sorted(points)[-2:]
    if t1 <= 0 or t2 <= 0 or n1 == n2:
        return None
    exponent = math.log(t2 / t1) / math.log(n2 / n1)
    return t2 * (n / n2) ** exponent


@dataclass
class PerLeafFit:
    """``fit(flat_params=False)`` from the child: measured, or why not."""

    compile_s: float | None = None
    step_s: float | None = None  # low-percentile seconds per step
    scan_step_s: float | None = None  # the child's optax scan, same rounds
    ratio: Ratio | None = None  # fit per-leaf / optax scan, in the child
    note: str = ""


def per_leaf_fit(kind: str, quick: bool, optimizer: str, cap: float,
                 predicted: float | None, margin: float) -> PerLeafFit:
    if predicted is not None and predicted > cap:
        return PerLeafFit(note=f"not attempted: compile extrapolated to ~{predicted:.0f} s "
                               f"> the {cap:.0f} s cap")
    args = ["--child", kind, "--optimizer", optimizer] + (["--quick"] if quick else [])
    records, timed_out = run_child(args, cap + margin)
    done = [r for r in records if "paired" in r]
    if done:
        r = done[-1]
        paired = timing.Timing(np.asarray(r["paired"]))
        return PerLeafFit(r["compile_s"], r["fit_low_s"], r["scan_low_s"],
                          Ratio(paired, r["low_ratio"]))
    if records:
        return PerLeafFit(records[-1]["compile_s"], note="compiled, but timing ran out of time")
    return PerLeafFit(note=f"compile > {cap:.0f} s (child stopped)" if timed_out
                      else "child failed")


# --- the measurements ----------------------------------------------------------------


@dataclass
class Case:
    """One problem x optimizer: per-step timings (seconds per step by name), ratios."""

    name: str
    steps: int
    timings: dict[str, timing.Timing]
    compile_s: dict[str, float]
    per_leaf: PerLeafFit
    extra: dict[str, Any] = field(default_factory=dict)

    def step_s(self, name: str) -> float:
        return low(self.timings[name]) / self.steps

    def ratio(self, a: str, b: str) -> Ratio:
        return Ratio.of(self.timings, a, b)


def time_aot(lower: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    lower().compile()
    return time.perf_counter() - t0


def bench_mlp(cfg: Config, quick: bool, cap_prediction: float | None) -> Case:
    params, data = mlp_problem(cfg)
    ours, theirs = jaxgd.adam(1e-3), optax.adam(1e-3)
    k = cfg.mlp_steps
    compile_s = {
        "fit": time_aot(lambda: jaxgd.lower_fit(mlp_loss, params, ours, data, max_steps=k)),
        "optax scan": time_aot(lambda: jax.jit(make_scan(mlp_loss, theirs, k)).lower(
            params, theirs.init(params), data)),
    }
    scan = jax.jit(make_scan(mlp_loss, theirs, k))
    state = theirs.init(params)
    program = jax.jit(lambda p, d: jaxgd.fit(mlp_loss, p, ours, d, max_steps=k).params)
    # The step as optax's documentation writes it (jitted, nothing donated): the issue's
    # measurement of the "full training step" (14.1 ms); the donated copy is faster.
    step = jax.jit(make_train_step(mlp_loss, theirs))
    donated = jax.jit(make_train_step(mlp_loss, theirs), donate_argnums=(0, 1))
    layout = FlatLayout.of(params)
    flat = layout.ravel(params)
    flat_state = theirs.init(flat)
    flat_scan = jax.jit(make_flat_scan(mlp_loss, theirs, k, layout))
    floor = jax.jit(timing.floor_scan(mlp_loss, k))
    fns = {
        "fit": lambda: jaxgd.fit(mlp_loss, params, ours, data, max_steps=k).params,
        "fit program": lambda: program(params, data),
        "optax scan": lambda: scan(params, state, data),
        "python loop": TrainLoop(step, params, state, data, k),
        "python loop, donated": TrainLoop(donated, copy_tree(params),
                                          theirs.init(copy_tree(params)), data, k),
        "flat optax scan": lambda: flat_scan(flat, flat_state, data),
        "loss + gradient floor": lambda: floor(params, data, 1e-3),
    }
    t = timing.time_interleaved(fns, repeats=cfg.mlp_repeats, inner=1)
    res = jaxgd.fit(mlp_loss, params, ours, data, max_steps=k)
    p_scan = scan(params, state, data)[0]
    diff = max(float(jnp.max(jnp.abs(a - b)))
               for a, b in zip(jax.tree.leaves(res.params), jax.tree.leaves(p_scan),
                               strict=True))
    per_leaf = per_leaf_fit("mlp", quick, "adam", cfg.cap, cap_prediction, 120.0)
    n = sum(x.size for x in jax.tree.leaves(params))
    return Case("mlp", k, t, compile_s, per_leaf,
                {"max_diff": diff, "leaves": len(jax.tree.leaves(params)), "params": n})


def bench_tree(cfg: Config, optimizer: str, quick: bool,
               cap_prediction: float | None) -> Case:
    params, g = tree_problem(cfg.tree_leaves, cfg.tree_size)
    make_ours, make_theirs = OPTIMIZERS[optimizer]
    ours, theirs = make_ours(), make_theirs()
    k = cfg.tree_steps
    grads = random_tree(7, [(cfg.tree_size,)] * cfg.tree_leaves)
    grads2 = random_tree(8, [(cfg.tree_size,)] * cfg.tree_leaves)
    # The public call's first call, before anything of it is compiled: trace, compile and
    # run of its loop, and the programs that ravel its params and unflatten its result
    # (jaxgd/train/flat.py).
    start = time.perf_counter()
    jax.block_until_ready(jaxgd.fit(tree_loss, params, ours, g, max_steps=k))
    first_call_s = time.perf_counter() - start
    jax.clear_caches()  # so that the loop alone compiles again below
    compile_s = {
        "fit flat": time_aot(lambda: jaxgd.lower_fit(tree_loss, params, ours, g, max_steps=k)),
        "optax scan": time_aot(lambda: jax.jit(make_scan(tree_loss, theirs, k)).lower(
            params, theirs.init(params), g)),
    }
    steppers = {}
    for lib, opt in (("jaxgd", ours), ("optax", theirs)):
        p0 = copy_tree(params)
        s0 = copy_tree(opt.init(p0))
        ct = timing.time_compile(make_update_step(opt), p0, s0, grads, donate_argnums=(0, 1))
        compile_s[f"{lib} update step"] = ct.total_s
        steppers[lib] = Stepper(ct.compiled, p0, s0, [copy_tree(grads), copy_tree(grads2)])
    scan = jax.jit(make_scan(tree_loss, theirs, k))
    state = theirs.init(params)
    fns = {
        "fit flat": lambda: jaxgd.fit(tree_loss, params, ours, g, max_steps=k).params,
        "optax scan": lambda: scan(params, state, g),
        "jaxgd update step": Repeat(steppers["jaxgd"], k),
        "optax update step": Repeat(steppers["optax"], k),
    }
    if optimizer == "adam":  # the loop alone, without fit's per-call work (one more compile)
        program = jax.jit(lambda p, d: jaxgd.fit(tree_loss, p, ours, d, max_steps=k).params)
        fns["fit flat program"] = lambda: program(params, g)
        layout = FlatLayout.of(params)
        flat = layout.ravel(params)
        flat_state = theirs.init(flat)
        flat_scan = jax.jit(make_flat_scan(tree_loss, theirs, k, layout))
        fns["flat optax scan"] = lambda: flat_scan(flat, flat_state, g)
        guarded = jax.jit(make_flat_scan(tree_loss, theirs, k, layout, guarded=True))
        fns[GUARD] = lambda: guarded(flat, flat_state, g)
    t = timing.time_interleaved(fns, repeats=cfg.tree_repeats, inner=1)
    compile_s["fit flat, first call"] = first_call_s - low(t["fit flat"])
    res = jaxgd.fit(tree_loss, params, ours, g, max_steps=k)
    p_scan = scan(params, state, g)[0]
    diff = max(float(jnp.max(jnp.abs(a - b)))
               for a, b in zip(jax.tree.leaves(res.params), jax.tree.leaves(p_scan),
                               strict=True))
    per_leaf = (per_leaf_fit("tree", quick, optimizer, cfg.cap, cap_prediction, 60.0)
                if optimizer == "adam" else PerLeafFit(note="adam only"))
    return Case(f"{cfg.tree_leaves} x {cfg.tree_size:,} {optimizer}", k, t, compile_s,
                per_leaf, {"max_diff": diff, "optimizer": optimizer})


@dataclass
class CurvePoint:
    leaves: int
    flat_s: float
    per_leaf_s: float | None
    scan_s: float
    step_jaxgd_s: float
    step_optax_s: float


def per_leaf_curve(cfg: Config, quick: bool) -> dict[int, float]:
    """Per-leaf ``fit`` compile seconds by leaf count (leaves x tree_size, Adam), from a
    child process stopped after ``cfg.cap`` seconds (the points it finished)."""
    records, _ = run_child(["--child", "curve", "--optimizer", "adam",
                            "--leaves", ",".join(map(str, cfg.curve_leaves))]
                           + (["--quick"] if quick else []), cfg.cap)
    return {r["leaves"]: r["compile_s"] for r in records}


def bench_curve(cfg: Config, per_leaf: dict[int, float]) -> list[CurvePoint]:
    """Compile time against leaf count (leaves x tree_size, Adam): fit flat, optax scan
    and the update steps, here; fit per-leaf from :func:`per_leaf_curve`."""
    points = []
    for n in cfg.curve_leaves:
        params, g = tree_problem(n, cfg.tree_size)
        ours, theirs = jaxgd.adam(1e-3), optax.adam(1e-3)
        k = cfg.tree_steps + 1  # not the programs timed elsewhere (they would come cached)
        flat_s = time_aot(lambda p=params, g=g, o=ours, k=k: jaxgd.lower_fit(
            tree_loss, p, o, g, max_steps=k))
        scan_s = time_aot(lambda p=params, g=g, o=theirs, k=k: jax.jit(
            make_scan(tree_loss, o, k)).lower(p, o.init(p), g))
        steps = [timing.time_compile(make_update_step(o), params, o.init(params), params
                                     ).total_s for o in (ours, theirs)]
        points.append(CurvePoint(n, flat_s, per_leaf.get(n), scan_s, *steps))
    return points


# --- the report ----------------------------------------------------------------------


def us(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:,.0f}"


def secs(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f}"


def mlp_table(c: Case) -> str:
    rows = []
    base = "optax scan"
    for name, what in [
        ("fit", "`jaxgd.fit(..., max_steps=K)` (flat path, automatic)"),
        ("fit program", "`jax.jit` of the same `fit` call (the loop alone)"),
        ("optax scan", "hand-written optax `lax.scan` of K steps"),
        ("python loop", "K calls of a jitted optax step, as optax's docs write it"),
        ("python loop, donated", "the same step with params and state donated"),
        ("flat optax scan", "the optax scan on params held as one vector, no checks"),
        ("loss + gradient floor", "a scan of `p - lr * grad` per leaf, no optimizer state"),
    ]:
        rows.append([name, what, us(c.step_s(name)), c.ratio(name, base).text(),
                     secs(c.compile_s.get(name))])
    pl = c.per_leaf
    rows.append([
        "fit(flat_params=False)", "per-leaf `fit`, in a child process with its own optax scan",
        us(pl.step_s), pl.ratio.text() if pl.ratio else pl.note, secs(pl.compile_s)])
    return timing.markdown_table(
        ["loop", "what", "us / step", "/ optax scan", "compile s"], rows, align="llrrr")


def tree_table(cases: Sequence[Case]) -> str:
    rows = []
    names = ["fit flat", "fit flat program", "flat optax scan", GUARD, "optax scan",
             "jaxgd update step", "optax update step"]
    for c in cases:
        opt = c.extra["optimizer"]
        for name in names:
            if name not in c.timings:
                continue
            rows.append([opt, name, us(c.step_s(name)), c.ratio(name, "optax scan").text(),
                         c.ratio(name, "optax update step").text(),
                         secs(c.compile_s.get(name))])
        pl = c.per_leaf
        if pl.ratio is not None or pl.note != "adam only":
            rows.append([opt, "fit per-leaf (child)", us(pl.step_s),
                         pl.ratio.text() if pl.ratio else pl.note, "-",
                         secs(pl.compile_s)])
    return timing.markdown_table(
        ["optimizer", "loop", "us / step", "/ optax scan", "/ optax update step",
         "compile s"], rows, align="llrrrr")


def curve_table(points: Sequence[CurvePoint], cap: float, leaves: int,
                extrapolated: float | None, flat_big: float, scan_big: float,
                steps_big: tuple[float, float]) -> str:
    rows = []
    for p in points:
        pl = secs(p.per_leaf_s) if p.per_leaf_s is not None else f"> {cap:.0f} (stopped)"
        rows.append([p.leaves, secs(p.flat_s), pl, secs(p.scan_s), secs(p.step_jaxgd_s),
                     secs(p.step_optax_s)])
    rows.append([leaves, secs(flat_big),
                 f"~{extrapolated:.0f} (extrapolated)" if extrapolated else "-",
                 secs(scan_big), secs(steps_big[0]), secs(steps_big[1])])
    return timing.markdown_table(
        ["leaves", "fit flat s", "fit per-leaf s", "optax scan s",
         "jaxgd update step s", "optax update step s"], rows)


def overhead_line(c: Case, public: str, program: str) -> str:
    per_call = low(c.timings[public]) - low(c.timings[program])
    return (f"{c.name}: the public call costs {per_call * 1e3:+.1f} ms per call over its "
            f"compiled program ({per_call / c.steps * 1e6:+.0f} us per step at K = {c.steps})")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = timing.suite_parser("python -m benchmarks.many_leaf", __doc__, quick="tiny sizes")
    parser.add_argument("--cap", type=float,
                        help="seconds a per-leaf fit compile may take (child process)")
    parser.add_argument("--skip", default="",
                        help="comma-separated parts to skip: mlp, tree, curve")
    parser.add_argument("--child", choices=["curve", "mlp", "tree"], help=argparse.SUPPRESS)
    parser.add_argument("--optimizer", default="adam", help=argparse.SUPPRESS)
    parser.add_argument("--leaves", default="", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> Report:
    cfg = QUICK if args.quick else FULL
    if args.cap:
        cfg = Config(**{**cfg.__dict__, "cap": args.cap})
    skip = set(filter(None, args.skip.split(",")))
    info = timing.machine_info()
    print(info, flush=True)
    start = time.perf_counter()
    found: list[Target] = []
    body: list[str] = []

    # 1. per-leaf fit compile against leaf count (child process): predicts whether the
    # per-leaf fits below can compile within the cap
    predicted_tree = predicted_mlp = None
    per_leaf: dict[int, float] = {}
    measured: list[tuple[int, float]] = []
    if "curve" not in skip:
        t0 = time.perf_counter()
        per_leaf = per_leaf_curve(cfg, args.quick)
        measured = sorted(per_leaf.items())
        predicted_tree = extrapolate(measured, cfg.tree_leaves)
        predicted_mlp = extrapolate(measured, 3 * cfg.mlp_layers)
        print(f"\nper-leaf fit compile, seconds by leaf count: {per_leaf} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)

    # 2. the 600-leaf MLP
    mlp_text = ""
    if "mlp" not in skip:
        t0 = time.perf_counter()
        c = bench_mlp(cfg, args.quick, predicted_mlp)
        # The baseline: its "full training step" (14.1 ms) is a jitted optax step
        # called from Python, nothing donated (our "python loop" reproduces it); the
        # donated loop and the hand-written optax scan are reported beside it.
        r = c.ratio("fit", "python loop")
        r_donated = c.ratio("fit", "python loop, donated")
        mlp_text = mlp_table(c)
        print(f"\nMLP {cfg.mlp_layers} x {cfg.mlp_width} ({c.extra['leaves']} leaves, "
              f"{c.extra['params']:,} params), K = {c.steps} "
              f"({time.perf_counter() - t0:.0f} s)")
        print(mlp_text, flush=True)
        pl = c.per_leaf
        per_leaf_txt = (f"fit(flat_params=False) / optax scan = {pl.ratio.text(iqr=False)}"
                        if pl.ratio else f"fit(flat_params=False): {pl.note}")
        floor = c.ratio("loss + gradient floor", "optax scan")
        note = (
            "Where the time goes: fit's loop alone (jit of the call) is "
            f"{c.ratio('fit program', 'optax scan').text(iqr=False)} of the optax scan; "
            "the same optax scan with the params held flat (no checks) "
            f"{c.ratio('flat optax scan', 'optax scan').text(iqr=False)}; the loss and "
            f"gradient alone (`p - lr * grad` per leaf) {floor.text(iqr=False)}."
        )
        added = (c.ratio("fit program", "optax scan").median
                 - c.ratio("flat optax scan", "optax scan").median)
        note += (f" fit's per-step work beyond the flat update (its guard, stop rules, "
                 f"histories) adds {added:+.2f} of the optax scan's step.")
        for loop in ("python loop", "python loop, donated"):
            floor_vs_loop = c.ratio("loss + gradient floor", loop)
            if floor_vs_loop.worst(larger_is_worse=False) > TARGET_MLP:
                note += (f" The loss and gradient alone are {floor_vs_loop.text(iqr=False)} "
                         f"of the {loop}, above {TARGET_MLP}: no optimizer-side change can "
                         "get under it on this problem.")
        found.append(Target(
            f"MLP {c.extra['leaves']} leaves: fit / optax python loop (Adam, per step)",
            f"<= {TARGET_MLP}",
            f"{r.text(iqr=False)} (the loop as optax's docs write it, the issue's 14.1 ms "
            f"measurement: {us(c.step_s('python loop'))} us / step here); with params and "
            f"state donated {r_donated.text(iqr=False)} "
            f"({r_donated.judge(lambda x: x <= TARGET_MLP)}); fit / optax scan = "
            f"{c.ratio('fit', 'optax scan').text(iqr=False)}; {per_leaf_txt}",
            r.judge(lambda x: x <= TARGET_MLP), note))
        mlp_text += ("\n\n" + overhead_line(c, "fit", "fit program") + "; fit's params vs "
                     f"the optax scan's after K steps: max |diff| = {c.extra['max_diff']:.1e}.")

    # 3. the 1000 x 1k tree
    tree_text = ""
    cases: list[Case] = []
    if "tree" not in skip:
        t0 = time.perf_counter()
        cases = [bench_tree(cfg, o, args.quick, predicted_tree) for o in cfg.optimizers]
        tree_text = tree_table(cases)
        print(f"\n{cfg.tree_leaves} x {cfg.tree_size:,}, K = {cfg.tree_steps} "
              f"({time.perf_counter() - t0:.0f} s)")
        print(tree_text, flush=True)
        # The baseline is optax's jitted per-leaf update step (its 13.2 ms per
        # step); fit's step also computes the loss and gradient, so the comparison is
        # conservative. The ratio to a hand-written optax scan is reported beside it.
        worst = max(cases, key=lambda c: c.ratio("fit flat", "optax update step").worst())
        parts = ", ".join(
            f"{c.extra['optimizer']} "
            f"{c.ratio('fit flat', 'optax update step').text(iqr=False)}"
            for c in cases)
        scans = ", ".join(
            f"{c.extra['optimizer']} {c.ratio('fit flat', 'optax scan').text(iqr=False)}"
            for c in cases)
        note = (f"Each fit step also computes the loss and gradient, which the update step "
                f"is not charged for. Against a hand-written optax `lax.scan` of the same "
                f"training steps (per-leaf update inside one compiled loop): {scans}.")
        adam = next((c for c in cases if "flat optax scan" in c.timings), None)
        if adam is not None:
            note += (
                " Adam, where the time goes: fit's loop alone is "
                f"{adam.ratio('fit flat program', 'optax scan').text(iqr=False)} of the optax "
                "scan; the optax scan on flat params (no checks) "
                f"{adam.ratio('flat optax scan', 'optax scan').text(iqr=False)}, with fit's "
                f"guard {adam.ratio(GUARD, 'optax scan').text(iqr=False)}; fit's per-call "
                f"work: {overhead_line(adam, 'fit flat', 'fit flat program').split(': ', 1)[1]}."
            )
        found.append(Target(
            f"{cfg.tree_leaves} x {cfg.tree_size:,}: fit (flat) / optax update step, per step",
            f"<= {TARGET_TREE}",
            parts,
            worst.ratio("fit flat", "optax update step").judge(lambda x: x <= TARGET_TREE),
            note))
        adam_case = next((c for c in cases if c.extra["optimizer"] == "adam"), None)
        if adam_case is not None:
            ours_s = adam_case.compile_s["fit flat, first call"]
            theirs_s = adam_case.compile_s["optax update step"]
            found.append(Target(
                f"compile, {cfg.tree_leaves} x {cfg.tree_size:,}, Adam: fit (flat; first "
                "call - steady call) / optax update step",
                f"<= {TARGET_COMPILE}",
                f"{ours_s:.2f} s / {theirs_s:.2f} s = {ours_s / theirs_s:.3f}",
                "met" if ours_s / theirs_s <= TARGET_COMPILE else "NOT met",
                "fit's first call compiles its whole loop (loss and gradient included) and "
                "the programs that ravel its params and unflatten its result outside it; the "
                "lowered loop alone (`lower_fit(...).compile()`) takes "
                f"{adam_case.compile_s['fit flat']:.2f} s, the optax scan of the same "
                f"training steps {adam_case.compile_s['optax scan']:.2f} s."))
        parts = ", ".join(
            f"{c.extra['optimizer']} "
            f"{c.ratio('jaxgd update step', 'optax update step').text(iqr=False)}"
            for c in cases)
        found.append(Target(
            f"{cfg.tree_leaves} x {cfg.tree_size:,}: public per-leaf update step jaxgd / optax",
            "recorded",
            parts, "recorded"))
        tree_text += "\n\n" + "\n".join(
            (f"- {overhead_line(c, 'fit flat', 'fit flat program')}; " if
             "fit flat program" in c.timings else f"- {c.name}: ")
            + f"max |p_fit - p_scan| = {c.extra['max_diff']:.1e}" for c in cases)
    # 4. the rest of the compile curve; its last row from the Adam case when it ran
    curve_text = ""
    if "curve" not in skip:
        t0 = time.perf_counter()
        points = bench_curve(cfg, per_leaf)
        big = next((c for c in cases if c.extra["optimizer"] == "adam"), None)
        if big is not None:
            flat_big, scan_big = big.compile_s["fit flat"], big.compile_s["optax scan"]
            steps_big = (big.compile_s["jaxgd update step"], big.compile_s["optax update step"])
        else:
            params, g = tree_problem(cfg.tree_leaves, cfg.tree_size)
            flat_big = time_aot(lambda: jaxgd.lower_fit(
                tree_loss, params, jaxgd.adam(1e-3), g, max_steps=cfg.tree_steps))
            opt = optax.adam(1e-3)
            scan_big = time_aot(lambda: jax.jit(make_scan(tree_loss, opt, cfg.tree_steps)
                                                ).lower(params, opt.init(params), g))
            steps_big = tuple(timing.time_compile(make_update_step(o), params,
                                                  o.init(params), params).total_s
                              for o in (jaxgd.adam(1e-3), optax.adam(1e-3)))
        curve_text = curve_table(points, cfg.cap, cfg.tree_leaves, predicted_tree, flat_big,
                                 scan_big, steps_big)
        print(f"\ncompile time against leaf count ({time.perf_counter() - t0:.0f} s)")
        print(curve_text, flush=True)
        per_leaf_big = (f"~{predicted_tree:.0f} s (extrapolated from {measured[-2][0]} and "
                        f"{measured[-1][0]} leaves)" if predicted_tree else
                        "not measured (the curve stopped at the cap)")
        found.insert(0, Target(
            f"compile, {cfg.tree_leaves} x {cfg.tree_size:,}, fit flat / fit per-leaf",
            "recorded", f"{flat_big:.2f} s / {per_leaf_big}", "recorded"))
        found.insert(0, Target(
            f"compile, {cfg.tree_leaves} x {cfg.tree_size:,}, update step jaxgd / optax",
            "recorded", f"{steps_big[0]:.2f} s / {steps_big[1]:.2f} s "
            f"(ratio {steps_big[0] / steps_big[1]:.2f})", "recorded"))

    elapsed = time.perf_counter() - start
    for t in found:
        print(t.line())
    print(f"({elapsed:.0f} s)", flush=True)

    body = [
        *timing.section_head(
            "many_leaf", "many-leaf trees through `fit`'s flat fast path vs optax per-leaf",
            info, elapsed),
        "All timings interleaved in one process (order shuffled each round), one call per "
        "round of a K-step unit; *us / step* is the 10th percentile of the rounds over K; "
        "ratios are *median of the per-round ratios [IQR] / ratio of the 10th "
        "percentiles*, a target met when both meet it. `fit(flat_params=False)` runs in a "
        f"child process (its compile is superlinear in the leaf count; {cfg.cap:.0f} s cap) "
        "against its own optax scan in the same rounds. Compile: trace + lower + compile "
        "(`jaxgd.lower_fit(...).compile()`, `jax.jit(...).lower(...).compile()`), once.",
        "",
        *(f"**{t.line()}**" for t in found),
    ]
    if mlp_text:
        body += ["", f"### MLP: {cfg.mlp_layers} layers of width {cfg.mlp_width}, Adam, "
                 f"batch {cfg.mlp_batch} x {cfg.mlp_width}, K = {cfg.mlp_steps}", "",
                 "`h = x @ w + b; x = x + tanh(h / rms(h) * scale) / sqrt(layers)`, mean "
                 "squared error to fixed targets; params `{'layer000': {'w', 'b', 'scale'}, "
                 "...}`.", "",
                 mlp_text]
    if tree_text:
        body += ["", f"### {cfg.tree_leaves} leaves x {cfg.tree_size:,}: the update through "
                 f"the fast path, K = {cfg.tree_steps}", "",
                 "Loss `vdot(concatenate(leaves), G)` with `G` a fixed random vector passed "
                 "as data (gradient `G`: the step is almost all optimizer). *jaxgd / optax "
                 "update step*: the public per-leaf `update` + `apply_updates`, jitted with "
                 "params and state donated, K calls per round, fed two fixed gradient trees "
                 "in turn.", "", tree_text]
    if curve_text:
        body += ["", "### Compile time against leaf count (Adam, leaves of 1k floats, "
                 f"K = {cfg.tree_steps})", "",
                 "*fit per-leaf*: `lower_fit(..., flat_params=False).compile()` in a child "
                 f"process stopped after {cfg.cap:.0f} s; the last row is extrapolated from "
                 "the two largest measured points (power law) when not measured.", "",
                 curve_text]
    return Report(found, "\n".join(body), elapsed)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        leaves = [int(x) for x in args.leaves.split(",") if x]
        child_main(args.child, args.quick, args.optimizer, leaves)
        return 0
    write = timing.wants_write(args, subset=bool(args.cap or args.skip))
    report = run(args)
    if write:
        timing.write_section(SECTION, report.body, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
