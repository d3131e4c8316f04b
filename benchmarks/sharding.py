"""Sharded params through ``jaxgd.fit``, 4 simulated CPU devices against 1.

Model: ``layers`` tanh layers, ``width x width`` float32 weights sharded over their first
axis on a 1-D mesh ``("d",)`` of 4 devices, biases and the random-normal ``batch x width``
input replicated; *1 device*: the same arrays on device 0. Both cases run in one child
process started with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``.

1. Bytes on device 0 (``addressable_shards``) of ``fit(...).params`` and ``.opt_state``
   (``jaxgd.adam(1e-3)``), of ``jaxgd.adam(1e-3).init(params)`` and of the reference
   ``optax.adam(1e-3).init(params)``; the per-device ``memory_analysis()`` of the
   compiled ``jit(lambda p, d: fit(loss, p, adam, d, max_steps=K))``. Target: params +
   state, 4 devices / 1 device <= 0.3 (the fit result's or the init's, the larger).
2. ``all-gather`` ops with a result of at least a weight's size in the compiled
   ``jit(lambda p: fit(loss, p, adam, max_steps=5).params)``: target 0.
3. Time per step of the compiled fit, 4 devices / 1 device, interleaved (recorded).

Run (from the repository root)::

    .venv/bin/python -m benchmarks.sharding            # full run, writes RESULTS.md
    .venv/bin/python -m benchmarks.sharding --quick    # tiny sizes, writes nothing
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import jaxgd  # noqa: E402
from benchmarks import timing  # noqa: E402
from benchmarks.ratios import Ratio, Target  # noqa: E402
from benchmarks.sweep import cpu_per_wall  # noqa: E402

SECTION = "sharding"
DEVICES = 4
CASES = ("4 devices", "1 device")
PER_LEAF = "1 device, flat_params=False"
TARGET_BYTES = 0.3  # params + state on device 0, 4 devices / 1 device
MEMORY = ("argument", "output", "temp", "alias")
_GATHER = re.compile(r"=\s*(.*?)\s+all-gather(?:-start)?\(")
_SHAPE = re.compile(r"\w+\[([\d,]*)\]")


@dataclass(frozen=True)
class Config:
    layers: int
    width: int
    batch: int
    steps: int  # steps per timed / measured fit call
    repeats: int


FULL = Config(layers=4, width=1024, batch=32, steps=20, repeats=15)
QUICK = Config(layers=4, width=256, batch=16, steps=5, repeats=3)


def loss(params, x):
    for layer in params:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return jnp.mean(x**2)


def on_device0(tree) -> int:
    """Bytes of the shards of ``tree``'s arrays that live on device 0."""
    d0 = jax.devices()[0]
    return sum(s.data.nbytes for x in jax.tree.leaves(tree) if isinstance(x, jax.Array)
               for s in x.addressable_shards if s.device == d0)


def all_gathers(hlo: str, big: int) -> list[int]:
    """``[all-gather ops, those with a result of >= big elements]`` in compiled HLO."""
    sizes = [max((int(np.prod([int(d) for d in s.split(",") if d])) for s in
                  _SHAPE.findall(m.group(1))), default=0) for m in _GATHER.finditer(hlo)]
    return [len(sizes), sum(n >= big for n in sizes)]


def child(cfg: Config, seed: int) -> dict:
    """In the 4-device subprocess: every measurement of both cases, as JSON-able data."""
    if len(devices := jax.devices()) < DEVICES:
        raise SystemExit(f"needs {DEVICES} devices, got {devices}; set XLA_FLAGS first")
    mesh = jax.make_mesh((DEVICES,), ("d",), axis_types=(jax.sharding.AxisType.Auto,))
    P, shard = jax.sharding.PartitionSpec, jax.sharding.NamedSharding  # noqa: N806
    rows, rep = shard(mesh, P("d")), shard(mesh, P())
    rng, w = np.random.default_rng(seed), cfg.width
    host = [{"w": rng.standard_normal((w, w), np.float32) / np.sqrt(w),
             "b": np.full(w, 0.01, np.float32)} for _ in range(cfg.layers)]
    x = rng.standard_normal((cfg.batch, w), np.float32)
    inputs = {CASES[0]: (jax.device_put(host, [{"w": rows, "b": rep}] * cfg.layers),
                         jax.device_put(x, rep)),
              CASES[1]: (jax.device_put(host, devices[0]), jax.device_put(x, devices[0]))}
    opt = jaxgd.adam(1e-3)
    out: dict = {"info": timing.machine_info(), "bytes": {}, "memory": {}, "gathers": {},
                 "changed": {}}
    fns, finals = {}, {}
    for case, (p, d) in inputs.items():
        res = jaxgd.fit(loss, p, opt, d, max_steps=cfg.steps)
        finals[case] = res.params
        out["changed"][case] = sum(jax.tree.leaves(jax.tree.map(
            lambda a, b: not a.sharding.is_equivalent_to(b.sharding, b.ndim), res.params, p)))
        out["bytes"][case] = {k: on_device0(v) for k, v in (
            ("params", p), ("fit params", res.params), ("fit opt_state", res.opt_state),
            ("jaxgd init", jaxgd.adam(1e-3).init(p)), ("optax init", optax.adam(1e-3).init(p)))}
        c = jax.jit(lambda p, d: jaxgd.fit(loss, p, opt, d, max_steps=cfg.steps)).lower(
            p, d).compile()
        m = c.memory_analysis()
        out["memory"][case] = {k: getattr(m, f"{k}_size_in_bytes") for k in MEMORY}
        nodata = jax.jit(lambda q, d=d: jaxgd.fit(lambda r: loss(r, d), q, opt,
                                                  max_steps=5).params)
        out["gathers"][case] = all_gathers(nodata.lower(p).compile().as_text(), w * w)
        fns[case] = lambda c=c, p=p, d=d: c(p, d).params
    per_leaf = jax.jit(lambda p, d: jaxgd.fit(loss, p, opt, d, max_steps=cfg.steps,
                                              flat_params=False).params)
    fns[PER_LEAF] = lambda: per_leaf(*inputs[CASES[1]])
    out["max_diff"] = max(jax.tree.leaves(jax.tree.map(
        lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b)))), *finals.values())))
    t = timing.time_interleaved(fns, repeats=cfg.repeats, inner=1, seed=seed)
    out["samples"] = {k: (v.samples / cfg.steps).tolist() for k, v in t.items()}
    out["cpu_per_wall"] = {k: cpu_per_wall(fn, 3) for k, fn in fns.items()}
    return out


def run_child(quick: bool, seed: int) -> dict:
    """:func:`child` in ``python -m benchmarks.sharding --child`` with 4 host devices."""
    out = timing.run_on_host_devices(
        "sharding", DEVICES, ["--child", "--seed", str(seed)] + (["--quick"] if quick else []))
    if out is None:
        raise RuntimeError("the 4-device child failed (its stderr is above)")
    return out


def compare(head: str, one: dict, four: dict) -> str:
    return timing.markdown_table([head, "1 device MiB", f"{DEVICES} devices MiB", "4 / 1"], [
        [k, f"{one[k] / 2**20:.2f}", f"{four[k] / 2**20:.2f}", f"{four[k] / max(one[k], 1):.3f}"]
        for k in four])


def report(cfg: Config, r: dict) -> tuple[list[Target], list[str]]:
    """The targets and the tables (bytes, compiled memory, all-gathers, time)."""
    four, one = (r["bytes"][c] for c in CASES)
    for b in (four, one):
        b.update({f"{u} + {v}": b[u] + b[v] for u, v in (
            ("fit params", "fit opt_state"), ("params", "jaxgd init"), ("params", "optax init"))})
    ratio = {k: four[k] / one[k] for k in four}
    m4, m1 = ({**m, "total": m["argument"] + m["output"] + m["temp"] - m["alias"]}
              for m in (r["memory"][c] for c in CASES))
    gather_table = timing.markdown_table(
        ["params on", "all-gathers", f"of >= {cfg.width**2:,} elements"],
        [[c, *r["gathers"][c]] for c in CASES])
    t = {c: timing.Timing(np.asarray(v)) for c, v in r["samples"].items()}
    time_table = timing.markdown_table(
        ["params on", "ms / step (10th pct)", "ms / step (median)", "CPU s / wall s"],
        [[c, f"{np.percentile(t[c].samples, 10) * 1e3:.2f}", f"{t[c].median * 1e3:.2f}",
          f"{r['cpu_per_wall'][c]:.2f}"] for c in t])
    worst = max(("fit params + fit opt_state", "params + jaxgd init"), key=ratio.get)
    big = r["gathers"][CASES[0]][1]
    targets = [
        Target(f"per-device params + Adam state, {DEVICES} devices / 1 device",
               f"<= {TARGET_BYTES}", f"{ratio[worst]:.3f} ({worst})",
               "met" if ratio[worst] <= TARGET_BYTES else "NOT met",
               "; ".join(f"{k} {ratio[k]:.3f}" for k in list(ratio)[-3:])),
        Target("param-sized all-gathers in jit(fit(...).params), sharded params", "0",
               str(big), "met" if big == 0 else "NOT met"),
        Target(f"time per step, {DEVICES} simulated devices / 1 device", "recorded",
               Ratio.of(t, *CASES).text(), "recorded",
               f"against {PER_LEAF}: {Ratio.of(t, CASES[0], PER_LEAF).text()}; the "
               f"simulated devices share the {os.cpu_count()} cores: not a scaling figure"),
    ]
    return targets, [compare("on device 0", one, four),
                     compare("memory_analysis, per device", m1, m4), gather_table, time_table]


def parse_args(argv: Sequence[str] | None):
    parser = timing.suite_parser("python -m benchmarks.sharding", __doc__,
                                 quick="a 4 x 256 x 256 model, under a minute")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", action="store_true",
                        help="(internal) measure here (needs 4 devices), print JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if args.child:
        print(json.dumps(child(cfg, args.seed)))
        return 0
    start = time.perf_counter()
    r = run_child(args.quick, args.seed)
    elapsed = time.perf_counter() - start
    print(r["info"], flush=True)
    found, tables = report(cfg, r)
    print("\n\n".join(tables))
    print("\n" + "\n".join(t.line() for t in found))
    print(f"max |params, 4 devices - 1 device| after {cfg.steps} steps: {r['max_diff']:.1e}; "
          f"leaves whose sharding fit changed: {r['changed']} ({elapsed:.0f} s)")
    if timing.wants_write(args):
        body = [
            *timing.section_head(SECTION, "sharded params through `jaxgd.fit`, "
                                 f"{DEVICES} simulated devices vs 1", r["info"], elapsed),
            f"{cfg.layers} tanh layers, {cfg.width} x {cfg.width} float32 weights sharded "
            f"over their first axis on a mesh `('d',)` of {DEVICES} simulated CPU devices, "
            f"biases and the {cfg.batch} x {cfg.width} input replicated; *1 device*: the "
            f"same arrays on device 0. `jaxgd.adam(1e-3)`, `max_steps={cfg.steps}`. Final "
            f"params of the two within {r['max_diff']:.1e}; leaves whose sharding `fit` "
            f"changed: {r['changed']}.",
            "", *(f"**{t.line()}**" for t in found), "",
            "Bytes on device 0 (`addressable_shards`) of the input params, of `fit(...)`'s "
            "`.params` and `.opt_state`, and of `jaxgd.adam(1e-3).init(params)` and the "
            "reference `optax.adam(1e-3).init(params)`; 0.25 is all of it sharded, 1.0 none "
            "of it:", "", tables[0], "",
            "`memory_analysis()` of the compiled `jit(lambda p, d: jaxgd.fit(loss, p, "
            f"jaxgd.adam(1e-3), d, max_steps={cfg.steps}))` (per device; total = argument "
            "+ output + temp - alias):", "", tables[1], "",
            "`all-gather` ops in the compiled HLO of `jit(lambda p: jaxgd.fit(loss, p, "
            "jaxgd.adam(1e-3), max_steps=5).params)`, and those whose result has at least "
            "as many elements as one weight matrix:", "", tables[2], "",
            f"Time per step of the compiled fit above, interleaved, {cfg.repeats} rounds "
            "(bold line: median of the per-round ratios [IQR] / ratio of the 10th "
            f"percentiles). The {DEVICES} simulated devices share this machine's "
            f"{os.cpu_count()} cores: no speed-up from more hardware is possible. A ratio "
            "above 1 is the sharded program's overhead (collectives, smaller kernels); one "
            "below 1 only means it keeps more of the same cores busy (*CPU s / wall s*). "
            "Neither predicts scaling on real devices. *1 device* is `fit`'s default, "
            "which may hold this tree as one flat vector (`jaxgd.train.flat`); *"
            f"{PER_LEAF}* is the per-leaf loop, the layout sharded params need.", "",
            tables[3],
        ]
        timing.write_section(SECTION, "\n".join(body), args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
