"""Sweeps by data regime: mini-batch and one-shot (cold) ``jaxgd.sweep`` against the
hand-written optax program, and the cost per step against the dataset size.

Logistic regression (random-normal start params), Adam, learning rates logspace(-4, 0),
interleaved round by round in one process. The hand-written program is
``jit(vmap(train_one, in_axes=(0, None, None, None)))``: ``train_one(lr, params, data,
key)`` builds ``optax.inject_hyperparams(optax.adam)(learning_rate=lr)``, draws epoch
``e``'s order as ``jax.random.permutation(fold_in(key, e), n)`` from unbatched inputs (one
for all rates) and scans over its batches; it returns final params, loss curve and
full-data final loss, like a sweep. jaxgd orders an epoch by a sort-free keyed
permutation (``jaxgd.train.batching.epoch_permutation``), so the same program with that
order (*same shuffle*) measures the rest of the loop alone; with the sweep's trial key
(``trial_keys(0)[1]``) it sees the sweep's batches, and their final params agree to
rounding.

1. Mini-batch, 24,000 x 20, ``batch_size=100, num_epochs=2``, 16 rates: sweep /
   hand-written compiled (target <= 1.1) and first call (trace + compile + run, <= 1.5).
   A cold sweep gets a fresh ``functools.partial`` of the loss (``sweep`` keeps programs
   keyed on it), a cold hand-written program a fresh ``jit`` of a fresh closure.
2. One-shot full batch, 2,000 x 50, 200 steps, 64 rates (``benchmarks/sweep.py``'s
   problem): first-call ratio (<= 1.2) and the compiled ratio.
3. Dataset size 2,400 / 24,000 / 240,000, batch 100, ``max_steps=480``: time per step of
   the sweep, the hand-written program and ``jit(vmap(lambda lr: jaxgd.fit(...,
   batch_size=100, max_steps=480, key=0).params))`` (largest / smallest size <= 1.5), and
   of one epoch permutation alone (the cost that grows with the data in any program).

Run (from the repository root)::

    .venv/bin/python -m benchmarks.sweep_regimes            # full run, writes RESULTS.md
    .venv/bin/python -m benchmarks.sweep_regimes --quick    # tiny sizes, writes nothing
"""

from __future__ import annotations

import functools
import sys
import time
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
from benchmarks import sweep as full_batch  # noqa: E402
from benchmarks import timing  # noqa: E402
from benchmarks.ratios import Ratio, Target  # noqa: E402
from benchmarks.sweep import both, max_rel_diff, ms  # noqa: E402
from jaxgd.sweep.run import trial_keys  # noqa: E402
from jaxgd.train.batching import epoch_permutation  # noqa: E402

SECTION = "sweep_regimes"
HAND = "hand-written"
SAME = "hand-written, same shuffle"
TARGET_STEADY = 1.1  # mini-batch sweep / hand-written, compiled
TARGET_COLD_BATCHES = 1.5  # mini-batch sweep / hand-written, first call
TARGET_COLD_FULL = 1.2  # full-batch sweep / hand-written, first call
TARGET_GROWTH = 1.5  # vmap(fit) time per step, largest / smallest dataset
PERMUTATION = "permutation"
SHUFFLE = "jaxgd shuffle"


@dataclass(frozen=True)
class Config:
    examples: int  # the mini-batch problem (1.)
    features: int
    batch: int
    epochs: int
    trials: int
    full_batch: full_batch.Config  # the one-shot full-batch problem (2.)
    sizes: tuple[int, ...]  # the dataset-size curve (3.)
    curve_steps: int
    repeats: int  # steady rounds
    cold_repeats: int  # cold rounds (each one traces and compiles every variant)


FULL = Config(24_000, 20, 100, 2, 16, full_batch.Config(2000, 50, 200, 64, (), 0, 0),
              (2_400, 24_000, 240_000), 480, repeats=15, cold_repeats=5)
QUICK = Config(2_400, 20, 100, 2, 16, full_batch.Config(2000, 50, 50, 16, (), 0, 0),
               (240, 4_800), 48, repeats=3, cold_repeats=1)


def problem(n: int, d: int, seed: int) -> tuple[Callable, Any, Any]:
    return full_batch.make_problem(full_batch.Config(n, d, 0, 0, (), 0, 0), seed)


def random_permutation(key, epoch, n):
    return jax.random.permutation(jax.random.fold_in(key, epoch), n)


def make_train_one(loss_fn: Callable, n: int, batch: int, steps: int,
                   shuffle: Callable = random_permutation) -> Callable:
    """The careful user's ``train_one(lr, params, data, key) -> (params, losses,
    final_loss)``: ``steps`` Adam steps on batches of ``batch`` examples, epoch ``e`` in
    the order ``shuffle(key, e, n)``, its last ``n % batch`` dropped."""
    per_epoch = n // batch
    epochs, rest = divmod(steps, per_epoch)

    def train_one(lr, params, data, key):
        opt = optax.inject_hyperparams(optax.adam)(learning_rate=lr)

        def step(carry, idx):
            p, s = carry
            loss, grads = jax.value_and_grad(loss_fn)(p, jax.tree.map(lambda x: x[idx], data))
            updates, s = opt.update(grads, s, p)
            return (optax.apply_updates(p, updates), s), loss

        def epoch(carry, e, num):
            order = shuffle(key, e, n)
            return jax.lax.scan(step, carry, order[: num * batch].reshape(num, batch))

        carry, losses = jax.lax.scan(lambda c, e: epoch(c, e, per_epoch),
                                     (params, opt.init(params)), jnp.arange(epochs))
        losses = losses.reshape(-1)
        if rest:
            carry, last = epoch(carry, epochs, rest)
            losses = jnp.concatenate([losses, last])
        return carry[0], losses, loss_fn(carry[0], data)

    return train_one


def hand_written(loss_fn, n, batch, steps, shuffle=random_permutation) -> Callable:
    """A fresh jitted program: every new one traces and compiles on its first call."""
    return jax.jit(jax.vmap(make_train_one(loss_fn, n, batch, steps, shuffle),
                            in_axes=(0, None, None, None)))


def vmapped_fit(loss_fn, batch, steps) -> Callable:
    return jax.jit(jax.vmap(lambda lr, params, data: jaxgd.fit(
        loss_fn, params, jaxgd.adam(lr), data, batch_size=batch, max_steps=steps, key=0
    ).params, in_axes=(0, None, None)))


def minibatch_sweep(loss_fn, params, data, lrs, batch, **steps) -> jaxgd.SweepResult:
    return jaxgd.sweep(loss_fn, params, jaxgd.adam, hyperparams={"learning_rate": lrs},
                       data=data, batch_size=batch, **steps)


def at(name: str, n: int) -> str:
    return f"{name} @ {n:,}"


def bench_minibatch(cfg: Config, seed: int) -> tuple[dict, dict, str]:
    """Compiled and cold timings of the mini-batch sweep and hand-written program, and
    how far apart their final params are."""
    loss_fn, params, data = problem(cfg.examples, cfg.features, seed)
    lrs, key = full_batch.learning_rates(cfg.trials), trial_keys(0)[1]
    steps = cfg.epochs * (cfg.examples // cfg.batch)

    compiled = hand_written(loss_fn, cfg.examples, cfg.batch, steps)
    same = hand_written(loss_fn, cfg.examples, cfg.batch, steps, epoch_permutation)

    def sweep(loss=loss_fn):
        return minibatch_sweep(loss, params, data, lrs, cfg.batch, num_epochs=cfg.epochs)

    def hand(prog=compiled):
        return prog(jnp.asarray(lrs, jnp.float32), params, data, key)

    res, (p, _, final) = sweep(), hand(same)
    small = lrs <= 0.1
    diff = [max_rel_diff(*jax.tree.map(lambda x, m=m: np.asarray(x)[m], (res.fit.params, p)))
            if m.any() else 0.0 for m in (small, ~small)]
    agreement = (f"final params of the mini-batch sweep against the {HAND} program (same "
                 f"permutations), max |p_sweep - p| / max |p| per trial: {diff[0]:.1e} "
                 f"(lr <= 0.1) / {diff[1]:.1e} (lr > 0.1); final losses within "
                 f"{np.max(np.abs(res.final_loss - np.asarray(final))):.1e}")
    print(agreement, flush=True)
    steady = timing.time_interleaved(
        {"sweep": lambda: sweep().fit.params, HAND: lambda: hand()[0],
         SAME: lambda: hand(same)[0]},
        repeats=cfg.repeats, inner=1, seed=seed)
    cold = timing.time_interleaved(
        {"sweep": lambda: sweep(functools.partial(loss_fn)).fit.params,
         HAND: lambda: hand(hand_written(loss_fn, cfg.examples, cfg.batch, steps))[0]},
        repeats=cfg.cold_repeats, inner=1, warmup=1, seed=seed)
    return steady, cold, agreement


def bench_full_batch(cfg: Config, seed: int) -> dict[str, timing.Timing]:
    """Cold and compiled, the full-batch sweep and hand-written program interleaved."""
    fb = cfg.full_batch
    loss_fn, params, data = full_batch.make_problem(fb, seed)
    lrs = full_batch.learning_rates(fb.trials)

    def program():  # a fresh jit of a fresh closure
        return jax.jit(jax.vmap(full_batch.make_train_one(loss_fn, fb.steps),
                                in_axes=(0, None, None)))

    def sweep(loss=loss_fn):
        return full_batch.run_sweep(loss, params, data, lrs, fb.steps).fit.params

    def hand(prog):
        return prog(jnp.asarray(lrs, jnp.float32), params, data)[0]

    compiled = program()
    return timing.time_interleaved(
        {"sweep, cold": lambda: sweep(functools.partial(loss_fn)),
         f"{HAND}, cold": lambda: hand(program()),
         "sweep": sweep, HAND: lambda: hand(compiled)},
        repeats=cfg.cold_repeats, inner=1, warmup=1, seed=seed)


def bench_curve(cfg: Config, seed: int) -> dict[str, timing.Timing]:
    """Every size's sweep, hand-written program, ``vmap(fit)`` and one epoch permutation
    of its ``n`` examples, all interleaved."""
    fns: dict[str, Callable[[], Any]] = {}
    lrs, key = full_batch.learning_rates(cfg.trials), trial_keys(0)[1]
    lrs_dev = jnp.asarray(lrs, jnp.float32)
    for n in cfg.sizes:
        loss_fn, params, data = problem(n, cfg.features, seed)
        program = hand_written(loss_fn, n, cfg.batch, cfg.curve_steps)
        same = hand_written(loss_fn, n, cfg.batch, cfg.curve_steps, epoch_permutation)
        fit_program = vmapped_fit(loss_fn, cfg.batch, cfg.curve_steps)
        order = jax.jit(functools.partial(jax.random.permutation, x=n))
        shuffle = jax.jit(functools.partial(epoch_permutation, epoch=0, n=n))
        fns |= {
            at("sweep", n): functools.partial(
                lambda *a: minibatch_sweep(*a, max_steps=cfg.curve_steps).fit.params,
                loss_fn, params, data, lrs, cfg.batch),
            at(HAND, n): functools.partial(
                lambda prog, *a: prog(*a)[0], program, lrs_dev, params, data, key),
            at(SAME, n): functools.partial(
                lambda prog, *a: prog(*a)[0], same, lrs_dev, params, data, key),
            at("vmap(fit)", n): functools.partial(fit_program, lrs_dev, params, data),
            at(PERMUTATION, n): functools.partial(order, key),
            at(SHUFFLE, n): functools.partial(shuffle, key),
        }
    return timing.time_interleaved(fns, repeats=cfg.repeats, inner=1, seed=seed)


def targets(cfg: Config, mb_steady, mb_cold, full, curve) -> list[Target]:
    def target(name, timings, a, b, bound, note=""):
        ratio = Ratio.of(timings, a, b)
        verdict = ratio.judge(lambda x: x <= bound) if bound else "recorded"
        return Target(name, f"<= {bound:g}" if bound else "recorded", ratio.text(), verdict,
                      note)

    lo, hi, fb = cfg.sizes[0], cfg.sizes[-1], cfg.full_batch
    mb = f"mini-batch sweep ({cfg.examples:,} x {cfg.features}, batch {cfg.batch})"
    one_shot = (f"full-batch sweep ({fb.num_examples:,} x {fb.num_features}, {fb.steps} "
                f"steps, {fb.trials} rates)")
    epochs = -(-cfg.curve_steps // (hi // cfg.batch))  # epochs started, each one permutes
    per_step = epochs * full_batch.low(curve[at(PERMUTATION, hi)]) / cfg.curve_steps
    floor = (f"The {HAND} program's own growth is the floor: at {hi:,} examples its "
             f"{epochs} epoch permutation(s) alone cost {per_step * 1e6:.0f} us per step")
    return [
        target(f"{mb} / {HAND}, steady", mb_steady, "sweep", HAND, TARGET_STEADY),
        target(f"{mb} / {SAME}, steady", mb_steady, "sweep", SAME, TARGET_STEADY),
        target(f"{mb} / {HAND}, first call", mb_cold, "sweep", HAND, TARGET_COLD_BATCHES),
        target(f"{one_shot} / {HAND}, first call", full, "sweep, cold", f"{HAND}, cold",
               TARGET_COLD_FULL),
        target(f"{one_shot} / {HAND}, steady", full, "sweep", HAND, 0),
        target(f"mini-batch sweep / {HAND} at {hi:,} examples, {cfg.curve_steps} steps",
               curve, at("sweep", hi), at(HAND, hi), TARGET_STEADY),
        target(f"mini-batch sweep / {SAME} at {hi:,} examples, {cfg.curve_steps} steps",
               curve, at("sweep", hi), at(SAME, hi), TARGET_STEADY),
        *(target(f"{name}: time per step, {hi:,} / {lo:,} examples", curve, at(name, hi),
                 at(name, lo), bound, floor if bound else "")
          for name, bound in (("vmap(fit)", TARGET_GROWTH), ("sweep", 0), (HAND, 0))),
    ]


def curve_table(cfg: Config, curve: dict[str, timing.Timing]) -> str:
    def us(name, n):
        t = curve[at(name, n)]
        return (f"{full_batch.low(t) / cfg.curve_steps * 1e6:.1f} / "
                f"{t.median / cfg.curve_steps * 1e6:.1f}")

    return timing.markdown_table(
        ["examples", "sweep us/step (p10 / median)", f"{HAND} us/step", f"{SAME} us/step",
         "vmap(fit) us/step", "jax.random.permutation ms (p10)", f"{SHUFFLE} ms (p10)",
         f"sweep / {HAND}", f"sweep / {SAME}"],
        [[f"{n:,}", us("sweep", n), us(HAND, n), us(SAME, n), us("vmap(fit)", n),
          ms(full_batch.low(curve[at(PERMUTATION, n)])),
          ms(full_batch.low(curve[at(SHUFFLE, n)])),
          both(curve, at("sweep", n), at(HAND, n)),
          both(curve, at("sweep", n), at(SAME, n))] for n in cfg.sizes])


def times_table(timings: dict[str, timing.Timing]) -> str:
    return timing.markdown_table(
        ["variant", "ms (10th pct)", "ms (median)"],
        [[name, ms(full_batch.low(t)), ms(t.median)] for name, t in timings.items()])


def parse_args(argv: Sequence[str] | None):
    parser = timing.suite_parser("python -m benchmarks.sweep_regimes", __doc__,
                                 quick="tiny sizes, under a minute")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = QUICK if args.quick else FULL
    info = timing.machine_info()
    print(info, flush=True)
    start = time.perf_counter()
    steady, cold, agreement = bench_minibatch(cfg, args.seed)
    print(f"mini-batch done, {time.perf_counter() - start:.0f} s", flush=True)
    full = bench_full_batch(cfg, args.seed)
    print(f"full batch done, {time.perf_counter() - start:.0f} s", flush=True)
    curve = bench_curve(cfg, args.seed)
    elapsed = time.perf_counter() - start
    found = targets(cfg, steady, cold, full, curve)
    tables = [times_table({**{f"mini-batch {k}": v for k, v in steady.items()},
                           **{f"mini-batch {k}, cold": v for k, v in cold.items()},
                           **{f"full-batch {k}": v for k, v in full.items()}}),
              curve_table(cfg, curve)]
    print("\n\n".join(tables))
    print("\n" + "\n".join(t.line() for t in found))
    print(f"agreement: {agreement} ({elapsed:.0f} s)")
    if timing.wants_write(args):
        fb = cfg.full_batch
        body = [
            *timing.section_head(
                "sweep_regimes", "mini-batch and one-shot sweeps, and the dataset-size curve",
                info, elapsed),
            f"Logistic regression, random-normal start params, Adam, {cfg.trials} learning "
            "rates (logspace 1e-4..1) unless said. *sweep*: `jaxgd.sweep(loss_fn, params, "
            "jaxgd.adam, hyperparams={'learning_rate': lrs}, data=data, batch_size=...)`. "
            f"*{HAND}*: `jit(vmap(train_one))` with `optax.inject_hyperparams(optax.adam)`, "
            "one `permutation(fold_in(key, epoch), n)` per epoch shared by all rates and a "
            f"`lax.scan` over the batches. Mini-batch: {cfg.examples:,} x {cfg.features}, "
            f"batch {cfg.batch}, {cfg.epochs} epochs. Full batch: {fb.num_examples:,} x "
            f"{fb.num_features}, {fb.steps} steps, {fb.trials} rates. *cold*: the first call "
            "(trace, compile, run) of a fresh loss object / a fresh jit of a fresh closure, "
            f"{cfg.cold_repeats} rounds after a throwaway one; compiled: {cfg.repeats} "
            "rounds. Ratios: *median of the per-round ratios [IQR] / ratio of the 10th "
            f"percentiles*, met when both meet the target. Same answers: {agreement}.",
            "",
            *(f"**{t.line()}**" for t in found),
            "",
            tables[0],
            "",
            f"Dataset size: batch {cfg.batch}, `max_steps={cfg.curve_steps}` at every size, "
            "all programs interleaved; *vmap(fit)* = `jit(vmap(lambda lr: jaxgd.fit(loss_fn, "
            "params, jaxgd.adam(lr), data, batch_size=..., max_steps=..., key=0).params))`; "
            "*jax.random.permutation* / *jaxgd shuffle*: one epoch's order of the n examples "
            "by a sort (what the hand-written program pays once per epoch started) / by "
            "jaxgd's sort-free keyed permutation (what the sweep and the *same shuffle* "
            f"program pay). Microseconds per step of {cfg.trials} "
            "trials:",
            "",
            tables[1],
        ]
        timing.write_section(SECTION, "\n".join(body), args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
