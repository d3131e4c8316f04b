"""Sweeps by data regime: mini-batch and first-call ``jaxgd.sweep`` against the hand-written
optax program, and the time per step against the dataset size.

Logistic regression, Adam, 16 learning rates unless said. *hand-written*:
``jit(vmap(train_one))``, an ``optax.inject_hyperparams(optax.adam)`` scan over each
epoch's batches, one ``jax.random.permutation`` per epoch for all rates; *same shuffle*:
the same program with jaxgd's sort-free ``epoch_permutation`` and the sweep's trial key,
so it sees the sweep's batches. Mini-batch: 24,000 x 20, batch 100, 2 epochs; full batch:
2,000 x 50, 200 steps, 64 rates; *cold*: the first call of a fresh loss object or a fresh
jit (*again*: a second fresh hand-written jit in each round, the A/A control). Dataset
size: batch 100, 480 steps at each size; *vmap(fit)*: ``jit(vmap(lambda lr: fit(...,
batch_size=100, key=0).params))``; *permutation* / *jaxgd shuffle*: one epoch's order.
"""

from __future__ import annotations

import functools
import sys
from collections import namedtuple
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxgd
from benchmarks import harness
from benchmarks import workloads as wl
from benchmarks.harness import Figure, Ratio, Timing
from jaxgd.sweep.run import trial_keys
from jaxgd.train.batching import epoch_permutation

HAND, SAME = "hand-written", "hand-written, same shuffle"


# the mini-batch problem, the full-batch one, the dataset-size curve; rounds steady and
# cold (each cold round traces and compiles every program)
Config = namedtuple("Config", "examples epochs full_steps full_trials sizes curve_steps "
                    "repeats cold_repeats")
FULL = Config(24_000, 2, 200, 64, (2_400, 24_000, 240_000), 480, 15, 9)
QUICK = Config(2_400, 2, 50, 16, (240, 4_800), 48, 3, 1)
FEATURES, BATCH, TRIALS = 20, 100, 16


def random_order(key, epoch, n):
    return jax.random.permutation(jax.random.fold_in(key, epoch), n)


def hand_written(loss_fn: Callable, n: int, steps: int, shuffle=random_order) -> Any:
    """A fresh ``jit(vmap(train_one))``: ``steps`` Adam steps on batches of ``BATCH``,
    epoch ``e`` in the order ``shuffle(key, e, n)``, its last ``n % BATCH`` dropped."""
    per_epoch = n // BATCH
    epochs, rest = divmod(steps, per_epoch)

    def train_one(lr, params, data, key):
        opt = optax.inject_hyperparams(optax.adam)(learning_rate=lr)
        step = wl.train_step(loss_fn, opt)

        def body(carry, idx):
            p, s, loss = step(*carry, jax.tree.map(lambda x: x[idx], data))
            return (p, s), loss

        def epoch(carry, e, num):
            order = shuffle(key, e, n)[: num * BATCH].reshape(num, BATCH)
            return jax.lax.scan(body, carry, order)

        carry, losses = jax.lax.scan(lambda c, e: epoch(c, e, per_epoch),
                                     (params, opt.init(params)), jnp.arange(epochs))
        losses = losses.reshape(-1)
        if rest:
            carry, last = epoch(carry, epochs, rest)
            losses = jnp.concatenate([losses, last])
        return carry[0], losses, loss_fn(carry[0], data)

    return jax.jit(jax.vmap(train_one, in_axes=(0, None, None, None)))


def sweep(loss_fn, params, data, lrs, **kw) -> jaxgd.SweepResult:
    return jaxgd.sweep(loss_fn, params, jaxgd.adam, hyperparams={"learning_rate": lrs},
                       data=data, **kw)


Measured = namedtuple("Measured", "cfg mb cold full curve agreement")


def measure(quick: bool) -> Measured:
    cfg = QUICK if quick else FULL
    lrs, key = wl.learning_rates(TRIALS), trial_keys(0)[1]
    lrs_dev = jnp.asarray(lrs, jnp.float32)
    loss_fn, params, data = wl.logistic(cfg.examples, FEATURES)
    steps = cfg.epochs * (cfg.examples // BATCH)
    hand, same = (hand_written(loss_fn, cfg.examples, steps, s)
                  for s in (random_order, epoch_permutation))

    def mb(loss=loss_fn):
        return sweep(loss, params, data, lrs, batch_size=BATCH, num_epochs=cfg.epochs)

    res, (p, _, final) = mb(), same(lrs_dev, params, data, key)
    small = lrs <= 0.1
    agreement = (f"mini-batch sweep against the {SAME} program, max |p_sweep - p| / max |p| "
                 f"per trial: {wl.max_rel_diff(res.fit.params, p, small):.1e} (lr <= 0.1) / "
                 f"{wl.max_rel_diff(res.fit.params, p, ~small):.1e}; final losses within "
                 f"{np.max(np.abs(res.final_loss - np.asarray(final))):.1e}")
    steady = harness.time_interleaved(
        {"sweep": lambda: mb().fit.params, HAND: lambda: hand(lrs_dev, params, data, key)[0],
         SAME: lambda: same(lrs_dev, params, data, key)[0]}, cfg.repeats)
    cold = harness.time_interleaved(
        {"sweep": lambda: mb(functools.partial(loss_fn)).fit.params,
         HAND: lambda: hand_written(loss_fn, cfg.examples, steps)(lrs_dev, params, data,
                                                                  key)[0]},
        cfg.cold_repeats, warmup=1)

    f_loss, f_params, f_data = wl.logistic(2000, 50)
    f_lrs = wl.learning_rates(cfg.full_trials)

    def program():  # a fresh jit of a fresh closure
        return jax.jit(jax.vmap(wl.train_one(f_loss, cfg.full_steps), in_axes=(0, None, None)))

    compiled, f_lrs_dev = program(), jnp.asarray(f_lrs, jnp.float32)
    full = harness.time_interleaved({
        "sweep, cold": lambda: sweep(functools.partial(f_loss), f_params, f_data, f_lrs,
                                     max_steps=cfg.full_steps).fit.params,
        f"{HAND}, cold": lambda: program()(f_lrs_dev, f_params, f_data)[0],
        f"{HAND}, cold, again": lambda: program()(f_lrs_dev, f_params, f_data)[0],
        "sweep": lambda: sweep(f_loss, f_params, f_data, f_lrs,
                               max_steps=cfg.full_steps).fit.params,
        HAND: lambda: compiled(f_lrs_dev, f_params, f_data)[0]}, cfg.cold_repeats, warmup=1)

    fns: dict[str, Any] = {}
    k = cfg.curve_steps
    for n in cfg.sizes:
        loss_n, params_n, data_n = wl.logistic(n, FEATURES)
        args = (lrs_dev, params_n, data_n, key)
        fit_n = jax.jit(jax.vmap(lambda lr, p, d, loss=loss_n: jaxgd.fit(
            loss, p, jaxgd.adam(lr), d, batch_size=BATCH, max_steps=k, key=0).params,
            in_axes=(0, None, None)))
        fns |= {
            f"sweep @ {n}": functools.partial(
                lambda *a: sweep(*a, batch_size=BATCH, max_steps=k).fit.params,
                loss_n, params_n, data_n, lrs),
            f"{HAND} @ {n}": functools.partial(
                lambda f, a: f(*a)[0], hand_written(loss_n, n, k), args),
            f"{SAME} @ {n}": functools.partial(
                lambda f, a: f(*a)[0], hand_written(loss_n, n, k, epoch_permutation), args),
            f"vmap(fit) @ {n}": functools.partial(fit_n, lrs_dev, params_n, data_n),
            f"permutation @ {n}": functools.partial(
                jax.jit(functools.partial(jax.random.permutation, x=n)), key),
            f"jaxgd shuffle @ {n}": functools.partial(
                jax.jit(functools.partial(epoch_permutation, epoch=0, n=n)), key),
        }
    curve = harness.time_interleaved(fns, cfg.repeats)
    return Measured(cfg, steady, cold, full, curve, agreement)


def report(m: Measured, plots: Path | None) -> tuple[dict[str, Figure], list[str]]:
    cfg, c = m.cfg, m.curve
    lo, hi = cfg.sizes[0], cfg.sizes[-1]
    epochs = -(-cfg.curve_steps // (hi // BATCH))  # epochs started at the largest size
    per_step = epochs * c[f"permutation @ {hi}"].low / cfg.curve_steps * 1e6

    def fig(t: dict[str, Timing], a: str, b: str, note: str = "") -> Figure:
        return Figure.ratio(Ratio.of(t, a, b), note)

    figures = {
        "mb": fig(m.mb, "sweep", HAND), "mb_same": fig(m.mb, "sweep", SAME),
        "mb_cold": fig(m.cold, "sweep", HAND),
        "full_cold": fig(m.full, "sweep, cold", f"{HAND}, cold",
                         "A/A control (a second fresh hand-written program, same rounds): "
                         + Ratio.of(m.full, f"{HAND}, cold, again", f"{HAND}, cold").text()),
        "full": fig(m.full, "sweep", HAND),
        "big": fig(c, f"sweep @ {hi}", f"{HAND} @ {hi}"),
        "big_same": fig(c, f"sweep @ {hi}", f"{SAME} @ {hi}"),
        "growth_fit": fig(c, f"vmap(fit) @ {hi}", f"vmap(fit) @ {lo}",
                          f"the {HAND} program's epoch permutations alone cost "
                          f"{per_step:.0f} us per step at {hi:,} examples"),
        "growth_sweep": fig(c, f"sweep @ {hi}", f"sweep @ {lo}"),
        "growth_hand": fig(c, f"{HAND} @ {hi}", f"{HAND} @ {lo}"),
    }
    times = harness.markdown_table(
        ["variant", "ms (10th pct)", "ms (median)"],
        [[f"{label} {name}", f"{t.low * 1e3:.1f}", f"{t.median * 1e3:.1f}"]
         for label, d in (("mini-batch", m.mb), ("mini-batch, cold:", m.cold),
                          ("full-batch", m.full)) for name, t in d.items()])

    def us(name: str, n: int) -> str:
        t = c[f"{name} @ {n}"]
        return f"{t.low / cfg.curve_steps * 1e6:.1f} / {t.median / cfg.curve_steps * 1e6:.1f}"

    curve = harness.markdown_table(
        ["examples", "sweep us/step (p10 / median)", f"{HAND} us/step", f"{SAME} us/step",
         "vmap(fit) us/step", "permutation ms", "jaxgd shuffle ms", f"sweep / {HAND}",
         f"sweep / {SAME}"],
        [[f"{n:,}", *(us(name, n) for name in ("sweep", HAND, SAME, "vmap(fit)")),
          *(f"{c[f'{name} @ {n}'].low * 1e3:.1f}" for name in ("permutation", "jaxgd shuffle")),
          *(Ratio.of(c, f"sweep @ {n}", f"{b} @ {n}").text() for b in (HAND, SAME))]
         for n in cfg.sizes])
    return figures, [times, f"Same answers: {m.agreement}.", curve]


if __name__ == "__main__":
    sys.exit(harness.main("sweep_regimes"))
