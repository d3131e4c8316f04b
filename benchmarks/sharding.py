"""Sharded params through ``jaxgd.fit``: 4 simulated CPU devices against 1.

In a child process with 4 host devices: 4 tanh layers of 1024 x 1024 weights sharded over
their first axis, the rest replicated; *1 device*: the same arrays on device 0.
``jaxgd.adam(1e-3)``, ``max_steps=20``. Bytes on device 0 (0.25: all of it sharded) of the
params, ``fit``'s result and the Adam states of jaxgd's and optax's ``init``;
``memory_analysis()`` of the compiled fit; ``all-gather`` ops in ``jit(lambda p:
fit(...).params)``; time per step (the simulated devices share the cores: not a scaling
figure).
"""

from __future__ import annotations

import os
import re
import sys
from collections import namedtuple
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxgd
from benchmarks import harness
from benchmarks.harness import Figure, Ratio, Timing

DEVICES = 4
CASES = ("4 devices", "1 device")
PER_LEAF = "1 device, flat_params=False"
MEMORY = ("argument", "output", "temp", "alias")
_GATHER = re.compile(r"=\s*(.*?)\s+all-gather(?:-start)?\(")
_SHAPE = re.compile(r"\w+\[([\d,]*)\]")


Config = namedtuple("Config", "layers width batch steps repeats")
FULL = Config(4, 1024, 32, 20, 15)
QUICK = Config(4, 256, 16, 5, 3)


def loss(params, x):
    for layer in params:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return jnp.mean(x**2)


def on_device0(tree) -> int:
    d0 = jax.devices()[0]
    return sum(s.data.nbytes for x in jax.tree.leaves(tree) if isinstance(x, jax.Array)
               for s in x.addressable_shards if s.device == d0)


def all_gathers(hlo: str, big: int) -> list[int]:
    """``[all-gather ops, those with a result of >= big elements]``."""
    sizes = [max((int(np.prod([int(d) for d in s.split(",") if d])) for s in
                  _SHAPE.findall(m.group(1))), default=0) for m in _GATHER.finditer(hlo)]
    return [len(sizes), sum(n >= big for n in sizes)]


def child(part: str, quick: bool) -> None:
    cfg = QUICK if quick else FULL
    devices = jax.devices()
    mesh = jax.make_mesh((DEVICES,), ("d",), axis_types=(jax.sharding.AxisType.Auto,))
    P, named = jax.sharding.PartitionSpec, jax.sharding.NamedSharding  # noqa: N806
    rows, rep = named(mesh, P("d")), named(mesh, P())
    rng, w = np.random.default_rng(0), cfg.width
    host = [{"w": rng.standard_normal((w, w), np.float32) / np.sqrt(w),
             "b": np.full(w, 0.01, np.float32)} for _ in range(cfg.layers)]
    x = rng.standard_normal((cfg.batch, w), np.float32)
    inputs = {CASES[0]: (jax.device_put(host, [{"w": rows, "b": rep}] * cfg.layers),
                         jax.device_put(x, rep)),
              CASES[1]: (jax.device_put(host, devices[0]), jax.device_put(x, devices[0]))}
    opt = jaxgd.adam(1e-3)
    out: dict = {"info": harness.machine_info(), "bytes": {}, "memory": {}, "gathers": {}}
    fns, finals = {}, []
    for case, (p, d) in inputs.items():
        res = jaxgd.fit(loss, p, opt, d, max_steps=cfg.steps)
        finals.append(res.params)
        b = {k: on_device0(v) for k, v in (
            ("params", p), ("fit params", res.params), ("fit opt_state", res.opt_state),
            ("jaxgd init", jaxgd.adam(1e-3).init(p)), ("optax init", optax.adam(1e-3).init(p)))}
        out["bytes"][case] = b | {f"{u} + {v}": b[u] + b[v] for u, v in (
            ("fit params", "fit opt_state"), ("params", "jaxgd init"), ("params", "optax init"))}
        c = jax.jit(lambda p, d: jaxgd.fit(loss, p, opt, d, max_steps=cfg.steps)).lower(
            p, d).compile()
        mem = {k: getattr(c.memory_analysis(), f"{k}_size_in_bytes") for k in MEMORY}
        out["memory"][case] = mem | {
            "total": mem["argument"] + mem["output"] + mem["temp"] - mem["alias"]}
        nodata = jax.jit(lambda q, d=d: jaxgd.fit(lambda r: loss(r, d), q, opt,
                                                  max_steps=5).params)
        out["gathers"][case] = all_gathers(nodata.lower(p).compile().as_text(), w * w)
        fns[case] = lambda c=c, p=p, d=d: c(p, d).params
    per_leaf = jax.jit(lambda p, d: jaxgd.fit(loss, p, opt, d, max_steps=cfg.steps,
                                              flat_params=False).params)
    fns[PER_LEAF] = lambda: per_leaf(*inputs[CASES[1]])
    out["diff"] = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                      for a, b in zip(*map(jax.tree.leaves, finals), strict=True))
    t = harness.time_interleaved(fns, cfg.repeats)
    out["samples"] = {k: (v.samples / cfg.steps).tolist() for k, v in t.items()}
    out["cores"] = {k: harness.cpu_per_wall(fn) for k, fn in fns.items()}
    harness.emit(out)


def measure(quick: bool) -> dict:
    found, _ = harness.run_child("sharding", ["--child", "all"] + ["--quick"] * quick,
                                 devices=DEVICES)
    if not found:
        raise RuntimeError(f"the {DEVICES}-device child failed")
    return found[-1]


def report(r: dict, plots: Path | None) -> tuple[dict[str, Figure], list[str]]:
    def compare(head: str, one: dict, four: dict) -> str:
        return harness.markdown_table(
            [head, "1 device MiB", f"{DEVICES} devices MiB", "4 / 1"],
            [[k, f"{one[k] / 2**20:.2f}", f"{four[k] / 2**20:.2f}",
              f"{four[k] / max(one[k], 1):.3f}"] for k in four])

    four, one = (r["bytes"][c] for c in CASES)
    ratio = {k: four[k] / one[k] for k in four}
    worst = max(("fit params + fit opt_state", "params + jaxgd init"), key=ratio.get)
    big = r["gathers"][CASES[0]][1]
    t = {k: Timing(np.asarray(v)) for k, v in r["samples"].items()}
    figures = {
        "bytes": Figure((ratio[worst],), f"{ratio[worst]:.3f} ({worst})",
                        f"optax's init: {ratio['params + optax init']:.3f}"),
        "gathers": Figure((big,), str(big)),
        "time": Figure.ratio(Ratio.of(t, *CASES), f"against {PER_LEAF}: "
                             f"{Ratio.of(t, CASES[0], PER_LEAF).text(iqr=False)}; "
                             f"{os.cpu_count()} cores shared: not a scaling figure")}
    times = harness.markdown_table(
        ["params on", "ms / step (10th pct)", "ms / step (median)", "CPU s / wall s"],
        [[k, f"{x.low * 1e3:.2f}", f"{x.median * 1e3:.2f}", f"{r['cores'][k]:.2f}"]
         for k, x in t.items()])
    gathers = harness.markdown_table(["params on", "all-gathers", "of a weight's size"],
                                     [[c, *r["gathers"][c]] for c in CASES])
    memory = compare("memory_analysis, per device", r["memory"][CASES[1]], r["memory"][CASES[0]])
    return figures, [compare("on device 0", one, four), memory, gathers, times,
                     f"Final params of the two within {r['diff']:.1e}."]


if __name__ == "__main__":
    sys.exit(harness.main("sharding"))
