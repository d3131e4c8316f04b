"""Problems, and the optax programs a careful user writes by hand, that the suites time
jaxgd against: a donated update step, a Python loop of a jitted step, a ``lax.scan``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxgd
from benchmarks.harness import time_compile, time_lowering


def random_tree(seed: int, shapes: Sequence[tuple[int, ...]]) -> dict[str, jax.Array]:
    """``{"w0000": ...}``: random-normal float32 leaves, drawn with numpy (eager
    ``jax.random`` would compile a kernel per distinct shape)."""
    rng = np.random.default_rng(seed)
    return {f"w{i:04d}": jnp.asarray(rng.standard_normal(s, dtype=np.float32))
            for i, s in enumerate(shapes)}


def copy_tree(tree: Any) -> Any:
    """Fresh buffers: donation consumes its inputs, and one state may hold a buffer twice."""
    return jax.tree.map(jnp.copy, tree)


class Stepper:
    """``times`` calls of ``step(params, state, x) -> (params, state, ...)`` per call,
    carrying ``(params, state)`` (donation-safe), feeding the ``inputs`` in turn."""

    def __init__(self, step: Callable, params: Any, state: Any, inputs: Sequence[Any],
                 times: int = 1):
        self.step, self.params, self.state, self.inputs = step, params, state, inputs
        self.times, self.calls = times, 0

    def __call__(self) -> Any:
        for _ in range(self.times):
            out = self.step(self.params, self.state, self.inputs[self.calls % len(self.inputs)])
            self.params, self.state = out[:2]
            self.calls += 1
        return out


def stepper(opt: Any, params: Any, grads: Sequence[Any], times: int = 1,
            **extra: Any) -> tuple[Stepper, float]:
    """A :class:`Stepper` of ``opt``'s donated update step on private copies of the
    inputs (a gradient buffer shared by several timed callables stays hotter in cache),
    and its compile seconds."""
    def step(params, state, grads):
        updates, state = opt.update(grads, state, params, **extra)
        return optax.apply_updates(params, updates), state

    params = copy_tree(params)
    state = copy_tree(opt.init(params))
    seconds, compiled = time_compile(step, params, state, grads[0], donate_argnums=(0, 1))
    return Stepper(compiled, params, state, [copy_tree(g) for g in grads], times), seconds


def train_step(loss_fn: Callable, opt: Any) -> Callable:
    """The user's ``step(params, state, data) -> (params, state, loss)``."""

    def step(params, state, data):
        loss, grads = jax.value_and_grad(loss_fn)(params, data)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    return step


def optax_scan(loss_fn: Callable, opt: Any, steps: int) -> Callable:
    """``run(params, state, data) -> (params, state, losses)``: a ``lax.scan`` of
    ``steps`` training steps."""

    def run(params, state, data):
        def body(carry, _):
            p, s, loss = train_step(loss_fn, opt)(*carry, data)
            return (p, s), loss

        (p, s), losses = jax.lax.scan(body, (params, state), None, length=steps)
        return p, s, losses

    return run


def fit_and_scan(loss_fn: Callable, params: Any, ours: Any, theirs: Any, data: Any,
                 steps: int) -> tuple[dict[str, Callable], dict[str, float], float]:
    """The public ``jaxgd.fit`` call, its compiled program (``jax.jit`` of the call: the
    loop alone) and a hand-written optax scan of the same steps; the compile seconds of
    fit's loop (``lower_fit``) and of the scan; ``max |p_fit - p_scan|``."""
    state = theirs.init(params)
    compile_s = {"fit": time_lowering(lambda: jaxgd.lower_fit(
        loss_fn, params, ours, data, max_steps=steps))[0]}
    compile_s["optax scan"], scan = time_compile(optax_scan(loss_fn, theirs, steps), params,
                                                 state, data)
    program = jax.jit(lambda p, d: jaxgd.fit(loss_fn, p, ours, d, max_steps=steps).params)
    fns = {"fit": lambda: jaxgd.fit(loss_fn, params, ours, data, max_steps=steps).params,
           "fit program": lambda: program(params, data),
           "optax scan": lambda: scan(params, state, data)[0]}
    return fns, compile_s, max_diff(fns["fit"](), fns["optax scan"]())


def floor_scan(loss_fn: Callable, steps: int) -> Callable:
    """``run(params, data, lr) -> (params, losses)``: ``p - lr * grad`` in a scan, the
    loss and gradient with the cheapest update, the floor under any optimizer."""

    def run(params, data, lr):
        def body(p, _):
            loss, grads = jax.value_and_grad(loss_fn)(p, data)
            return jax.tree.map(lambda x, g: x - lr * g, p, grads), loss

        return jax.lax.scan(body, params, None, length=steps)

    return run


def train_one(loss_fn: Callable, steps: int) -> Callable:
    """``train_one(lr, params, data) -> (params, losses, final_loss)``: one optax Adam run
    with the learning rate a traced input (what a hand-written sweep vmaps)."""

    def run(lr, params, data):
        opt = optax.inject_hyperparams(optax.adam)(learning_rate=lr)
        p, _, losses = optax_scan(loss_fn, opt, steps)(params, opt.init(params), data)
        return p, losses, loss_fn(p, data)

    return run


def logistic(n: int, d: int, seed: int = 0) -> tuple[Callable, Any, Any]:
    """``(loss_fn, params, data)``: ``jaxgd.problems.logistic_regression`` from random
    (not all-zero) start params."""
    problem = jaxgd.problems.logistic_regression(n, d, key=seed)
    kw, kb = jax.random.split(jax.random.key(seed + 1))
    params = {"w": 0.1 * jax.random.normal(kw, (d,), jnp.float32),
              "b": 0.1 * jax.random.normal(kb, (), jnp.float32)}
    return problem.loss_fn, params, problem.data


def learning_rates(n: int) -> np.ndarray:
    return np.logspace(-4, 0, n)


def leaves_problem(leaves: int, size: int, seed: int = 0) -> tuple[Any, jax.Array]:
    """``(params, G)`` for :func:`leaves_loss`: ``leaves`` random leaves of ``size``
    floats and a fixed random vector ``G`` (passed as the data)."""
    return (random_tree(seed + 100, [(size,)] * leaves),
            random_tree(seed + 101, [(leaves * size,)])["w0000"])


def leaves_loss(params: Any, g: jax.Array) -> jax.Array:
    """``vdot(concatenate(leaves), G)``: one cheap pass, gradient ``G``, so a training
    step is almost all optimizer update."""
    return jnp.vdot(jnp.concatenate([x.ravel() for x in jax.tree.leaves(params)]), g)


def max_diff(a: Any, b: Any) -> float:
    """``max |a - b|`` over the leaves."""
    return max(float(jnp.max(jnp.abs(x - y)))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def max_rel_diff(a: Any, b: Any, mask: np.ndarray | slice) -> float:
    """``max |a - b| / max |b|`` with each trial (leading axis; those of ``mask``) on its
    own scale: large learning rates drive the weights far out, where float32 rounding
    shows in absolute terms."""
    worst = 0.0
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x)[mask], np.asarray(y)[mask]
        if not len(x):
            continue
        x, y = x.reshape(len(x), -1), y.reshape(len(y), -1)
        scale = np.maximum(np.max(np.abs(y), axis=1), 1e-30)
        worst = max(worst, float(np.max(np.max(np.abs(x - y), axis=1) / scale)))
    return worst
