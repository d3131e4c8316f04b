"""``jaxgd.sweep`` against a hand-written optax vmap and loops of single runs.

Logistic regression 2,000 x 50, 200 full-batch Adam steps, 64 learning rates. *sweep*:
the whole ``jaxgd.sweep(...)`` call, compiled by an earlier one; *optax vmap scan*:
``jit(vmap(train_one))``, ``train_one`` an ``optax.inject_hyperparams(optax.adam)`` scan
returning what the sweep returns; *single runs*: ``jit(train_one)`` per rate; *x
jaxgd.fit*: ``fit`` per rate; *floor*: the vmapped scan of ``p - lr * grad``. *CPU s per
wall s*: the cores each kept busy. Compile by trial count: the sweep's first call minus a
steady one (a fresh ``functools.partial`` of the loss), and ``lower`` + ``compile`` of
``jit(vmap(lambda lr: fit(...)))``, each the faster of two passes. 2 devices: a child
process with 2 simulated CPU devices, ``devices=jax.devices()`` against the first alone.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections import namedtuple
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxgd
from benchmarks import harness
from benchmarks import workloads as wl
from benchmarks.harness import Figure, Ratio, Timing

Config = namedtuple("Config", "steps trials compile_trials repeats")
FULL = Config(200, 64, (1, 64, 256), 25)
QUICK = Config(50, 16, (1, 32), 4)


def run_sweep(loss_fn, params, data, lrs, steps, devices=None) -> jaxgd.SweepResult:
    return jaxgd.sweep(loss_fn, params, jaxgd.adam, hyperparams={"learning_rate": lrs},
                       data=data, max_steps=steps, devices=devices)


def compile_times(cfg: Config, loss_fn, params, data, n: int) -> tuple[float, float]:
    """``(first call - steady call, lower + compile of jit(vmap(fit)))`` for ``n`` trials."""
    fresh, lrs = functools.partial(loss_fn), wl.learning_rates(n)
    calls = []
    for _ in range(4):
        start = time.perf_counter()
        jax.block_until_ready(run_sweep(fresh, params, data, lrs, cfg.steps).fit.params)
        calls.append(time.perf_counter() - start)

    def trials(lrs, params, data):
        return jax.vmap(lambda lr: jaxgd.fit(fresh, params, jaxgd.adam(lr), data,
                                             max_steps=cfg.steps))(lrs)

    aot, _ = harness.time_compile(trials, jnp.asarray(lrs, jnp.float32), params, data)
    return calls[0] - min(calls[1:]), aot


Measured = namedtuple("Measured", "t cores compile agreement devices")


def measure(quick: bool) -> Measured:
    cfg = QUICK if quick else FULL
    loss_fn, params, data = wl.logistic(2000, 50)
    compile_times(cfg, loss_fn, params, data, 2)  # warms the caches every later one finds
    compiled: dict[int, tuple[float, float]] = {}
    for n in [*cfg.compile_trials, *cfg.compile_trials[::-1]]:
        now = compile_times(cfg, loss_fn, params, data, n)
        compiled[n] = tuple(map(min, zip(compiled.get(n, now), now, strict=True)))
    lrs = wl.learning_rates(cfg.trials)
    lrs_dev = jnp.asarray(lrs, jnp.float32)
    one = wl.train_one(loss_fn, cfg.steps)
    vmapped = jax.jit(jax.vmap(one, in_axes=(0, None, None)))
    single = jax.jit(one)
    floor = jax.jit(jax.vmap(wl.floor_scan(loss_fn, cfg.steps), in_axes=(None, None, 0)))
    fns = {
        "sweep": lambda: run_sweep(loss_fn, params, data, lrs, cfg.steps).fit.params,
        "optax vmap scan": lambda: vmapped(lrs_dev, params, data)[0],
        f"{cfg.trials} single runs": lambda: [single(lr, params, data)[0] for lr in lrs_dev],
        f"{cfg.trials} x jaxgd.fit": lambda: [jaxgd.fit(
            loss_fn, params, jaxgd.adam(lr), data, max_steps=cfg.steps).params for lr in lrs],
        "floor": lambda: floor(params, data, lrs_dev)[0],
    }
    res = run_sweep(loss_fn, params, data, lrs, cfg.steps)
    p, _, final = vmapped(lrs_dev, params, data)
    small = lrs <= 0.1  # above, Adam rattles around the optimum and rounding grows
    agreement = (
        "final params, max |p_sweep - p| / max |p| per trial against the optax vmap, "
        f"lr <= 0.1 / lr > 0.1: {wl.max_rel_diff(res.fit.params, p, small):.1e} / "
        f"{wl.max_rel_diff(res.fit.params, p, ~small):.1e}; final losses within "
        f"{np.max(np.abs(res.final_loss - np.asarray(final))):.1e}; every trial ran "
        f"{cfg.steps} steps: {bool(np.all(res.num_steps == cfg.steps))}")
    t = harness.time_interleaved(fns, cfg.repeats)
    cores = {name: harness.cpu_per_wall(fn) for name, fn in fns.items()}
    found, _ = harness.run_child("sweep", ["--child", "devices"] + (["--quick"] * quick),
                                 devices=2)
    return Measured(t, cores, compiled, agreement, found[-1] if found else None)


def child(part: str, quick: bool) -> None:
    """On 2 simulated devices: the sweep over both against the first alone."""
    cfg = QUICK if quick else FULL
    loss_fn, params, data = wl.logistic(2000, 50)
    lrs, devices = wl.learning_rates(cfg.trials), jax.devices()
    fns = {"all devices": lambda: run_sweep(loss_fn, params, data, lrs, cfg.steps,
                                            devices).fit.params,
           "first device": lambda: run_sweep(loss_fn, params, data, lrs, cfg.steps,
                                             devices[:1]).fit.params}
    diff = wl.max_rel_diff(fns["all devices"](), fns["first device"](), slice(None))
    t = harness.time_interleaved(fns, max(cfg.repeats - 5, 4))
    harness.emit({"samples": {k: v.samples.tolist() for k, v in t.items()},
                  "cores": {k: harness.cpu_per_wall(fn) for k, fn in fns.items()},
                  "diff": diff, "load": os.getloadavg()[0]})


def report(m: Measured, plots: Path | None) -> tuple[dict[str, Figure], list[str]]:
    loop = next(name for name in m.t if name.endswith("single runs"))
    vs_optax, floor = Ratio.of(m.t, "sweep", "optax vmap scan"), Ratio.of(
        m.t, "floor", "optax vmap scan")
    figures = {
        "vs_optax": Figure.ratio(vs_optax, f"the floor is {floor.text(iqr=False)} of the "
                                 "optax program"),
        "vs_loop": Figure.ratio(Ratio.of(m.t, loop, "sweep"), "the optax vmap gets "
                                f"{Ratio.of(m.t, loop, 'optax vmap scan').text(iqr=False)}",
                                digits=2)}
    lo, hi = min(m.compile), max(m.compile)
    growth = [m.compile[hi][i] / m.compile[lo][i] for i in range(2)]
    figures["compile"] = Figure(tuple(growth), f"{growth[0]:.2f} / {growth[1]:.2f}")
    cores = {n: f"{x:.2f}" for n, x in m.cores.items()}
    blocks = [harness.timing_table(m.t, "sweep", CPU_s_per_wall_s=cores),
              f"Same answers: {m.agreement}.",
              harness.markdown_table(
                  ["sweep trials", "first - steady call s", "jit(vmap(fit)) AOT s"],
                  [[n, f"{a:.2f}", f"{b:.2f}"] for n, (a, b) in sorted(m.compile.items())])]
    if m.devices:
        d = m.devices
        t = {k: Timing(np.asarray(v)) for k, v in d["samples"].items()}
        figures["devices"] = Figure.ratio(
            Ratio.of(t, "first device", "all devices"),
            f"CPU s / wall s: all {d['cores']['all devices']:.2f}, first "
            f"{d['cores']['first device']:.2f}; load {d['load']:.1f} on {os.cpu_count()} "
            "cores", digits=2)
        cores = {n: f"{x:.2f}" for n, x in d["cores"].items()}
        blocks.append(harness.timing_table(t, "all devices", CPU_s_per_wall_s=cores)
                      + f"\n\n2 devices vs 1: max relative diff {d['diff']:.1e}.")
    return figures, blocks


if __name__ == "__main__":
    sys.exit(harness.main("sweep"))
