"""Vectorized sweeps: ``jaxgd.sweep`` against a hand-written optax sweep and a loop of runs.

On a logistic regression (2,000 x 50, full batch), sweep 64 Adam learning rates over 200
steps, on the same inputs, interleaved round by round in one process:

* ``sweep``: ``jaxgd.sweep(loss_fn, params, jaxgd.adam, hyperparams={"learning_rate":
  lrs}, data=data, max_steps=200)``, its program already compiled (``sweep`` keeps the
  compiled program of the same static inputs), the whole call timed: trial table, the
  run, the result (it reads the final losses back to the host);
* ``optax vmap scan``: ``jax.jit(jax.vmap(train_one))`` over the learning rates, where
  ``train_one`` builds ``optax.inject_hyperparams(optax.adam)(learning_rate=lr)`` and runs
  a ``lax.scan`` of 200 steps (the same outputs: final params, loss curve, final loss);
* ``64 single runs``: ``jax.jit(train_one)`` compiled once and called 64 times in a row;
* ``64 x jaxgd.fit``: the jaxgd user's loop, ``fit(..., jaxgd.adam(lr), ...)`` per rate;
* ``loss + gradient floor``: the optax program with ``p - lr * grad`` for the optimizer,
  the cost of the loss and gradient alone: how much any optimizer's program can save.

Compile times are measured apart: the optax programs by ``lower`` + ``compile``; the
sweep for 1, 64 and 256 trials as its first call minus its steady call, and as the
``lower`` + ``compile`` of the equivalent public program ``jit(vmap(fit))``.

The 2-device speedup runs this module again in a subprocess (``--devices 2``) with
``XLA_FLAGS=--xla_force_host_platform_device_count=2`` set before jax is imported, and
times ``sweep(..., devices=jax.devices())`` against ``devices=jax.devices()[:1]``.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.sweep            # full run, writes RESULTS.md
    .venv/bin/python -m benchmarks.sweep --quick    # < 1 minute, writes nothing

Targets (the issue): sweep / optax vmap scan <= 1.0; 64 single runs / sweep >= 2;
sweep compile time for 256 trials / for 1 trial <= 1.3. The 2-device speedup is recorded.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
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
from benchmarks.ratios import judge  # noqa: E402

SECTION = "sweep"
LOW_PERCENTILE = 10
TARGET_VS_OPTAX = 1.0  # sweep / optax vmap scan <= this
TARGET_VS_LOOP = 2.0  # 64 single runs / sweep >= this
TARGET_COMPILE = 1.3  # sweep compile, 256 trials / 1 trial <= this
FLOOR = "loss + gradient floor"  # vmap of a scan of p - lr * grad, no optimizer state
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Config:
    num_examples: int
    num_features: int
    steps: int
    trials: int
    compile_trials: tuple[int, ...]  # trial counts whose sweep compile is timed
    repeats: int
    device_repeats: int


FULL = Config(2000, 50, 200, 64, (1, 64, 256), repeats=25, device_repeats=20)
QUICK = Config(2000, 50, 50, 16, (1, 32), repeats=4, device_repeats=4)


def learning_rates(n: int) -> np.ndarray:
    return np.logspace(-4, 0, n)


def make_problem(cfg: Config, seed: int) -> tuple[Callable, Any, Any]:
    """The loss, random (not all-zero) start params and the data ``(X, y)``."""
    problem = jaxgd.problems.logistic_regression(cfg.num_examples, cfg.num_features, key=seed)
    kw, kb = jax.random.split(jax.random.key(seed + 1))
    params = {
        "w": 0.1 * jax.random.normal(kw, (cfg.num_features,), jnp.float32),
        "b": 0.1 * jax.random.normal(kb, (), jnp.float32),
    }
    return problem.loss_fn, params, problem.data


def make_train_one(loss_fn: Callable, steps: int) -> Callable:
    """``train_one(lr, params, data) -> (params, losses, final_loss)``: one optax Adam run
    of ``steps`` full-batch steps, the learning rate a traced input."""

    def train_one(lr, params, data):
        opt = optax.inject_hyperparams(optax.adam)(learning_rate=lr)

        def body(carry, _):
            p, s = carry
            loss, grads = jax.value_and_grad(loss_fn)(p, data)
            updates, s = opt.update(grads, s, p)
            return (optax.apply_updates(p, updates), s), loss

        (p, _), losses = jax.lax.scan(body, (params, opt.init(params)), None, length=steps)
        return p, losses, loss_fn(p, data)

    return train_one


def run_sweep(loss_fn, params, data, lrs, steps, devices=None) -> jaxgd.SweepResult:
    return jaxgd.sweep(
        loss_fn,
        params,
        jaxgd.adam,
        hyperparams={"learning_rate": lrs},
        data=data,
        max_steps=steps,
        devices=devices,
    )


def low(t: timing.Timing) -> float:
    """The 10th percentile of the per-round times: preemption by the other processes on
    this shared machine only adds time, so the low quantile is the uncontended estimate."""
    return float(np.percentile(t.samples, LOW_PERCENTILE))


def both(timings: dict[str, timing.Timing], a: str, b: str, digits: int = 3) -> str:
    """``median of paired ratios [IQR] / ratio of 10th percentiles`` of ``a / b``."""
    paired = timing.paired_ratio(timings, a, b)
    return (
        f"{paired.median:.{digits}f} [{paired.q1:.{digits}f}-{paired.q3:.{digits}f}] / "
        f"{low(timings[a]) / low(timings[b]):.{digits}f}"
    )


@dataclass
class CompileTimes:
    """Sweep compile seconds per trial count, two ways."""

    first_minus_steady: dict[int, float] = field(default_factory=dict)
    steady: dict[int, float] = field(default_factory=dict)
    aot: dict[int, float] = field(default_factory=dict)  # lower + compile of jit(vmap(fit))
    optax_vmap: float = 0.0
    optax_single: float = 0.0


def time_sweep_compile(cfg: Config, loss_fn, params, data, n: int) -> tuple[float, float]:
    """``(first call - steady call, steady call)`` seconds of a sweep of ``n`` trials.

    A fresh ``functools.partial`` of the loss is a new static input, so the first call
    traces and compiles; the steady time is the fastest of three calls after it."""
    fresh = functools.partial(loss_fn)
    lrs = learning_rates(n)
    start = time.perf_counter()
    jax.block_until_ready(run_sweep(fresh, params, data, lrs, cfg.steps).fit.params)
    first = time.perf_counter() - start
    steady = []
    for _ in range(3):
        start = time.perf_counter()
        jax.block_until_ready(run_sweep(fresh, params, data, lrs, cfg.steps).fit.params)
        steady.append(time.perf_counter() - start)
    return first - min(steady), min(steady)


def time_aot_compile(cfg: Config, loss_fn, params, data, n: int) -> float:
    """``lower`` + ``compile`` seconds of ``jit(vmap(fit))`` over ``n`` learning rates,
    the program a sweep runs, built from public API."""
    fresh = functools.partial(loss_fn)

    def all_trials(lrs, params, data):
        def one(lr):
            res = jaxgd.fit(fresh, params, jaxgd.adam(lr), data, max_steps=cfg.steps)
            return res, fresh(res.params, data)

        return jax.vmap(one)(lrs)

    lrs = jnp.asarray(learning_rates(n), jnp.float32)
    return timing.time_compile(all_trials, lrs, params, data).total_s


def max_rel_diff(a: Any, b: Any) -> float:
    """``max |a - b| / max |b|`` over the leaves, each trial (leading axis) on its own
    scale: the large learning rates drive the weights far out, where float32 rounding
    (e.g. another matmul blocking) shows in absolute terms."""
    worst = 0.0
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x).reshape(len(x), -1), np.asarray(y).reshape(len(y), -1)
        scale = np.maximum(np.max(np.abs(y), axis=1), 1e-30)
        worst = max(worst, float(np.max(np.max(np.abs(x - y), axis=1) / scale)))
    return worst


@dataclass
class Result:
    timings: dict[str, timing.Timing]
    compile: CompileTimes
    # max relative |p_sweep - p| over trials and leaves: (lr <= 0.1, lr > 0.1)
    max_diff_optax: tuple[float, float]
    max_diff_single: tuple[float, float]
    max_final_loss_diff: float  # max |final loss of sweep - of the optax vmap|
    num_steps_ok: bool  # every sweep trial ran all the steps (equal work)
    diverged: int
    cpu_per_wall: dict[str, float] = field(default_factory=dict)  # cores each one used
    control: tuple[float, float] = (0.0, 0.0)  # two numpy threads, before / after the rounds


def bench(cfg: Config, seed: int) -> Result:
    loss_fn, params, data = make_problem(cfg, seed)
    lrs = learning_rates(cfg.trials)
    lrs_device = jnp.asarray(lrs, jnp.float32)
    lr_scalars = [jnp.asarray(lr, jnp.float32) for lr in lrs]
    train_one = make_train_one(loss_fn, cfg.steps)
    ct = CompileTimes()

    # Compile times first: sweep (1, 64, 256 trials), then the optax programs.
    # One throwaway sweep compile first, so that every timed one finds the same warm caches.
    # Two passes, in opposite orders, keeping each count's fastest (compile times drift
    # with the load like everything else; the fastest is the least disturbed).
    time_sweep_compile(cfg, loss_fn, params, data, 2)
    counts = list(cfg.compile_trials)
    for n in counts + counts[::-1]:
        call, steady = time_sweep_compile(cfg, loss_fn, params, data, n)
        aot = time_aot_compile(cfg, loss_fn, params, data, n)
        if n not in ct.aot or call < ct.first_minus_steady[n]:
            ct.first_minus_steady[n], ct.steady[n] = call, steady
        ct.aot[n] = min(aot, ct.aot.get(n, aot))
    for n in counts:
        print(
            f"sweep compile, {n} trials: first - steady call {ct.first_minus_steady[n]:.2f} s "
            f"(steady {ct.steady[n]:.3f} s); lower + compile of jit(vmap(fit)) "
            f"{ct.aot[n]:.2f} s",
            flush=True,
        )
    vmapped = timing.time_compile(jax.vmap(train_one, in_axes=(0, None, None)), lrs_device,
                                  params, data)
    single = timing.time_compile(train_one, lr_scalars[0], params, data)
    ct.optax_vmap, ct.optax_single = vmapped.total_s, single.total_s

    def singles():
        return [single.compiled(lr, params, data)[0] for lr in lr_scalars]

    def fits():
        return [
            jaxgd.fit(loss_fn, params, jaxgd.adam(lr), data, max_steps=cfg.steps).params
            for lr in lrs
        ]

    floor_scan = timing.floor_scan(loss_fn, cfg.steps)

    def floor_one(lr, params, data):  # the same outputs as train_one
        p, losses = floor_scan(params, data, lr)
        return p, losses, loss_fn(p, data)

    floor = jax.jit(jax.vmap(floor_one, in_axes=(0, None, None)))
    fns: dict[str, Callable[[], Any]] = {
        "sweep": lambda: run_sweep(loss_fn, params, data, lrs, cfg.steps).fit.params,
        "optax vmap scan": lambda: vmapped.compiled(lrs_device, params, data)[0],
        f"{cfg.trials} single runs": singles,
        f"{cfg.trials} x jaxgd.fit": fits,
        FLOOR: lambda: floor(lrs_device, params, data)[0],
    }

    # Same answers: every lane of the sweep against the optax programs.
    res = run_sweep(loss_fn, params, data, lrs, cfg.steps)
    swept = res.fit.params
    by_vmap, _, by_vmap_loss = vmapped.compiled(lrs_device, params, data)
    by_single = jax.tree.map(lambda *xs: jnp.stack(xs), *singles())

    small = lrs <= 0.1  # above, Adam rattles around the optimum and rounding is amplified

    def max_diff(a, b):
        def pick(mask):
            return jax.tree.map(lambda x: np.asarray(x)[mask], (a, b))

        return (max_rel_diff(*pick(small)), max_rel_diff(*pick(~small)) if (~small).any()
                else 0.0)

    result = Result(
        timings={},
        compile=ct,
        max_diff_optax=max_diff(swept, by_vmap),
        max_diff_single=max_diff(swept, by_single),
        max_final_loss_diff=float(np.max(np.abs(res.final_loss - np.asarray(by_vmap_loss)))),
        num_steps_ok=bool(np.all(res.num_steps == cfg.steps)),
        diverged=int(np.sum(res.diverged)),
    )
    control_before = two_thread_control()
    result.timings = timing.time_interleaved(fns, repeats=cfg.repeats, inner=1, seed=seed)
    result.cpu_per_wall = {name: cpu_per_wall(fn, 3) for name, fn in fns.items()}
    result.control = (control_before, two_thread_control())
    return result


# ---------------------------------------------------------------- 2 devices (subprocess)


def device_child(cfg: Config, seed: int) -> dict[str, Any]:
    """In the subprocess: time the sweep on all devices against the first one alone."""
    devices = jax.devices()
    if len(devices) < 2:
        raise SystemExit(f"--devices needs 2+ devices, got {devices}; set XLA_FLAGS first")
    loss_fn, params, data = make_problem(cfg, seed)
    lrs = learning_rates(cfg.trials)
    fns = {
        "all devices": lambda: run_sweep(loss_fn, params, data, lrs, cfg.steps, devices).fit.params,
        "first device": lambda: run_sweep(
            loss_fn, params, data, lrs, cfg.steps, devices[:1]
        ).fit.params,
    }
    a = run_sweep(loss_fn, params, data, lrs, cfg.steps, devices).fit.params
    b = run_sweep(loss_fn, params, data, lrs, cfg.steps, devices[:1]).fit.params
    control_before = two_thread_control()
    t = timing.time_interleaved(fns, repeats=cfg.device_repeats, inner=1, seed=seed)
    # CPU seconds per wall second of each: ~2 if the two devices' halves ran at once
    cores = {name: cpu_per_wall(fn) for name, fn in fns.items()}
    return {
        "devices": len(devices),
        "control_cpu_per_wall": [control_before, two_thread_control()],
        "samples": {k: v.samples.tolist() for k, v in t.items()},
        "cpu_per_wall": cores,
        "loadavg": os.getloadavg()[0],
        "max_diff": max_rel_diff(a, b),
    }


def cpu_per_wall(fn: Callable[[], Any], calls: int = 5) -> float:
    """Median CPU seconds (all threads of this process) per wall second of ``fn()``."""
    ratios = []
    for _ in range(calls):
        wall, cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn())
        ratios.append((time.process_time() - cpu) / (time.perf_counter() - wall))
    return float(np.median(ratios))


def two_thread_control() -> float:
    """CPU seconds per wall second of two Python threads doing numpy matmuls (which
    release the GIL; BLAS held to one thread each): how many cores this process gets now."""
    import threading

    a = np.random.default_rng(0).standard_normal((500, 500)).astype(np.float32)

    def work():
        for _ in range(40):
            a @ a

    ratios = []
    for _ in range(5):
        threads = [threading.Thread(target=work) for _ in range(2)]
        wall, cpu = time.perf_counter(), time.process_time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ratios.append((time.process_time() - cpu) / (time.perf_counter() - wall))
    return float(np.median(ratios))


def run_device_child(num_devices: int, quick: bool, seed: int) -> dict[str, Any] | None:
    out = timing.run_on_host_devices(
        "sweep", num_devices,
        ["--devices", str(num_devices), "--seed", str(seed)] + (["--quick"] if quick else []))
    if out is not None:
        out["timings"] = {k: timing.Timing(np.asarray(v)) for k, v in out["samples"].items()}
    return out


# ---------------------------------------------------------------- report


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def speed_table(cfg: Config, r: Result) -> str:
    t = r.timings
    headers = [
        "variant",
        "ms (10th pct)",
        "ms (median)",
        "/ sweep: paired median [IQR] / p10",
        "CPU s / wall s",
    ]
    body = [
        [name, ms(low(t[name])), ms(t[name].median), both(t, name, "sweep"),
         f"{r.cpu_per_wall[name]:.2f}"]
        for name in t
    ]
    return timing.markdown_table(headers, body)


def compile_table(r: Result) -> str:
    ct = r.compile
    counts = sorted(ct.first_minus_steady)
    headers = ["sweep trials", "first - steady call s", "steady call s", "jit(vmap(fit)) AOT s"]
    body = [
        [n, f"{ct.first_minus_steady[n]:.2f}", f"{ct.steady[n]:.3f}", f"{ct.aot[n]:.2f}"]
        for n in counts
    ]
    return timing.markdown_table(headers, body)


def summary(cfg: Config, r: Result, dev: dict[str, Any] | None) -> list[str]:
    t = r.timings
    loop = f"{cfg.trials} single runs"
    vs_optax = timing.paired_ratio(t, "sweep", "optax vmap scan").median
    vs_optax_low = low(t["sweep"]) / low(t["optax vmap scan"])
    vs_loop = timing.paired_ratio(t, loop, "sweep").median
    vs_loop_low = low(t[loop]) / low(t["sweep"])
    ceiling = timing.paired_ratio(t, loop, "optax vmap scan").median
    ceiling_low = low(t[loop]) / low(t["optax vmap scan"])
    floor = timing.paired_ratio(t, FLOOR, "optax vmap scan").median
    floor_low = low(t[FLOOR]) / low(t["optax vmap scan"])
    lines = [
        f"sweep / optax vmap scan = {vs_optax:.3f} / {vs_optax_low:.3f} "
        f"({judge(vs_optax, vs_optax_low, lambda x: x <= TARGET_VS_OPTAX)}, target <= "
        f"{TARGET_VS_OPTAX:g}; the {FLOOR}, `p - lr * grad` with no optimizer state, is "
        f"{floor:.3f} / {floor_low:.3f} of the optax program: its whole Adam costs "
        f"{1 - floor:.1%} / {1 - floor_low:.1%} of it, the sweep's work beyond the floor "
        f"(Adam, the non-finite guard, gradient norms, per-trial stop codes, histories) "
        f"{vs_optax - floor:.1%} / {vs_optax_low - floor_low:.1%})",
        f"{loop} / sweep = {vs_loop:.2f} / {vs_loop_low:.2f} "
        f"({judge(vs_loop, vs_loop_low, lambda x: x >= TARGET_VS_LOOP)}, target >= "
        f"{TARGET_VS_LOOP:g}; the hand-written optax vmap gets {ceiling:.2f} / "
        f"{ceiling_low:.2f} over the same loop)",
    ]
    ct = r.compile
    lo, hi = min(ct.first_minus_steady), max(ct.first_minus_steady)
    c_call = ct.first_minus_steady[hi] / ct.first_minus_steady[lo]
    c_aot = ct.aot[hi] / ct.aot[lo]
    lines.append(
        f"sweep compile {hi} / {lo} trials = {c_call:.2f} (first - steady call) / {c_aot:.2f} "
        f"(AOT jit(vmap(fit))) ({judge(c_call, c_aot, lambda x: x <= TARGET_COMPILE)}, "
        f"target <= {TARGET_COMPILE:g})"
    )
    if dev is not None:
        dt = dev["timings"]
        speedup = timing.paired_ratio(dt, "first device", "all devices").median
        speedup_low = low(dt["first device"]) / low(dt["all devices"])
        cpw, control = dev["cpu_per_wall"], dev["control_cpu_per_wall"]
        lines.append(
            f"{dev['devices']}-device speedup (first device / all devices) = {speedup:.2f} / "
            f"{speedup_low:.2f} (recorded; CPU s per wall s: all devices "
            f"{cpw['all devices']:.2f}, first device {cpw['first device']:.2f}; two numpy "
            f"threads before / after {control[0]:.2f} / {control[1]:.2f}; load average "
            f"{dev['loadavg']:.1f} on {os.cpu_count()} cores)"
        )
    else:
        lines.append("2-device run: failed or skipped")
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = timing.suite_parser("python -m benchmarks.sweep", __doc__, quick="smaller run")
    parser.add_argument("--repeats", type=int, help="override the number of rounds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--devices",
        type=int,
        metavar="N",
        help="(internal) time the sweep over N forced host devices and print JSON; needs "
        "XLA_FLAGS=--xla_force_host_platform_device_count=N set before starting",
    )
    parser.add_argument("--no-devices", action="store_true", help="skip the 2-device run")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if args.repeats:
        cfg = Config(**{**cfg.__dict__, "repeats": args.repeats, "device_repeats": args.repeats})
    if args.devices:
        print(json.dumps(device_child(cfg, args.seed)))
        return 0
    write = timing.wants_write(args, subset=bool(args.repeats))

    info = timing.machine_info()
    print(info, flush=True)
    start = time.perf_counter()
    r = bench(cfg, args.seed)
    print(f"\n{cfg.repeats} rounds, {time.perf_counter() - start:.0f} s", flush=True)
    table, ctable = speed_table(cfg, r), compile_table(r)
    print(table)
    print(ctable, flush=True)
    dev = None
    if not args.no_devices:
        t0 = time.perf_counter()
        dev = run_device_child(2, args.quick, args.seed)
        print(f"2-device subprocess: {time.perf_counter() - t0:.0f} s", flush=True)
    elapsed = time.perf_counter() - start
    lines = summary(cfg, r, dev)
    agreement = (
        f"final params, max |p_sweep - p| / max |p| per trial, lr <= 0.1 / lr > 0.1 (where "
        f"Adam rattles around the optimum and rounding differences grow): "
        f"{r.max_diff_optax[0]:.1e} / {r.max_diff_optax[1]:.1e} (optax vmap), "
        f"{r.max_diff_single[0]:.1e} / {r.max_diff_single[1]:.1e} (single runs); final losses "
        f"within {r.max_final_loss_diff:.1e} of the optax vmap's; every trial ran {cfg.steps} "
        f"steps: {r.num_steps_ok}; diverged: {r.diverged}"
        + (f"; 2 devices vs 1: {dev['max_diff']:.1e}" if dev else "")
    )
    print("\n".join(lines))
    print(f"agreement: {agreement}  ({elapsed:.0f} s)")

    if write:
        ct = r.compile
        body = [
            *timing.section_head(
                "sweep", "`jaxgd.sweep` vs a hand-written optax vmap + scan vs a loop of runs",
                info, elapsed),
            f"Logistic regression {cfg.num_examples:,} x {cfg.num_features} "
            f"(`jaxgd.problems.logistic_regression`, random-normal start params), "
            f"{cfg.steps} full-batch Adam steps, {cfg.trials} learning rates "
            "(logspace 1e-4..1). *sweep*: the whole `jaxgd.sweep(loss_fn, params, jaxgd.adam, "
            "hyperparams={'learning_rate': lrs}, data=data, max_steps=...)` call, its program "
            "compiled by an earlier call. *optax vmap scan*: `jit(vmap(train_one))`, "
            "`train_one` = `optax.inject_hyperparams(optax.adam)(learning_rate=lr)` in a "
            "`lax.scan`, returning final params, loss curve and final loss like the sweep. "
            f"*{cfg.trials} single runs*: `jit(train_one)` compiled once, called "
            f"{cfg.trials} times in a row. *{cfg.trials} x jaxgd.fit*: `fit(..., "
            f"jaxgd.adam(lr), ...)` per rate (one compiled program). *{FLOOR}*: "
            "`jit(vmap(floor_one))`, a `lax.scan` of `p - lr * grad` per leaf (no optimizer "
            "state), the cost of the loss and gradient alone. Interleaved in one "
            f"process ({cfg.repeats} rounds, order shuffled each round); each ratio is "
            f"*median of the per-round ratios [IQR] / ratio of the {LOW_PERCENTILE}th "
            "percentiles* (this 2-core machine is shared with other busy processes; "
            "preemption only adds time, so the low percentile is the uncontended estimate; "
            f"a target counts as met when both meet it). Same answers: {agreement}.",
            "",
            *(f"**{line}.**" for line in lines),
            "",
            table,
            "",
            "*CPU s / wall s*: how many cores each variant kept busy (process CPU time over "
            "wall time, 3 calls after the rounds). The batched programs (sweep, optax vmap) "
            "spread their larger kernels over both cores when the machine has one to spare; "
            "the single runs' small kernels stay on one. Control: two Python threads doing "
            f"numpy matmuls got {r.control[0]:.2f} / {r.control[1]:.2f} CPU s per wall s "
            "just before / after the rounds. So the loop / sweep ratio depends on how many "
            "cores the other workers leave free.",
            "",
            f"Compile (seconds): optax vmap program {ct.optax_vmap:.2f}, optax single-run "
            f"program {ct.optax_single:.2f}. Sweep, by trial count: its first call minus its "
            "steady call (a fresh `functools.partial` of the loss makes the first call trace "
            "and compile; `sweep` keeps the compiled program for later calls with the same "
            "static inputs), and the `lower` + `compile` of the equivalent public program "
            "`jit(vmap(lambda lr: fit(loss_fn, params, jaxgd.adam(lr), data, ...)))`:",
            "",
            ctable,
        ]
        if dev is not None:
            dt = dev["timings"]
            body += [
                "",
                "2 devices: the same sweep in a subprocess started with "
                "`XLA_FLAGS=--xla_force_host_platform_device_count=2` (`python -m "
                "benchmarks.sweep --devices 2`), `devices=jax.devices()` (the trials sharded "
                "over both) against `devices=jax.devices()[:1]`, interleaved "
                f"({cfg.device_repeats} rounds); both host devices share this machine's 2 "
                "cores, which the single-device program's own threads can already use:",
                "",
                timing.markdown_table(
                    ["sweep on", "ms (10th pct)", "ms (median)", "/ all devices",
                     "CPU s / wall s"],
                    [
                        [name, ms(low(dt[name])), ms(dt[name].median),
                         both(dt, name, "all devices", 2), f"{dev['cpu_per_wall'][name]:.2f}"]
                        for name in ("all devices", "first device")
                    ],
                ),
                "",
                f"Load average (1 min) at the end of the 2-device run: {dev['loadavg']:.1f} on "
                f"{os.cpu_count()} cores. *CPU s / wall s* near 2 would mean the two halves "
                "ran at once; near 1, they did not. Control, just before and just after the "
                "timed rounds: two Python threads doing numpy matmuls got "
                f"{dev['control_cpu_per_wall'][0]:.2f} / {dev['control_cpu_per_wall'][1]:.2f} "
                "CPU s per wall s in the same process: how much of a second core the machine "
                "had to spare then. The other workers' load comes and goes, so the 2-device "
                "speedup on this machine moves from run to run with it.",
            ]
        timing.write_section(SECTION, "\n".join(body), args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
