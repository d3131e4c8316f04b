"""Optimizer paths on the 2-D test functions, each optimizer at a fairly chosen learning rate.

For every function and optimizer, one vectorized :func:`jaxgd.sweep` over a log grid of
learning rates picks the rate (the lowest final loss among the rates that did not
diverge), then one compiled ``lax.scan`` of the optimizer's ``update``, vmapped over the
starts (and rates), records the path. Drawing is :func:`jaxgd.plot.paths`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core.base import accepts_extra_args, apply_updates
from jaxgd.core.hyperparams import hyperparam_names
from jaxgd.optimizers.catalog import OPTIMIZERS
from jaxgd.problems.base import Problem
from jaxgd.problems.functions import FUNCTIONS
from jaxgd.sweep.run import sweep, trial_keys

#: What :func:`optimizer_paths` compares when no optimizers are named.
DEFAULT_OPTIMIZERS = ("sgd", "momentum", "adam")

#: The learning rates each sweep tries: 4 per decade from 1e-4 to 1.
DEFAULT_GRID = tuple(float(r) for r in np.logspace(-4.0, 0.0, 17))

#: A reached minimum is the nearest known one within this fraction of the domain's diagonal.
REACH_TOLERANCE = 0.02


@dataclass(frozen=True)
class Trajectory:
    """One optimizer at one learning rate on one function, from each start.

    Attributes:
      function, optimizer: their names.
      learning_rate: the rate it ran at.
      points: ``(starts, steps + 1, 2)`` the params before the first step and after each
        step; NaN from the first step whose loss, gradient or params were not finite.
      losses: ``(starts, steps + 1)`` the function at ``points`` (NaN there too).
      reached: ``(starts,)`` the index, in the function's ``info["minima"]``, of the
        minimum each start ended at (within :data:`REACH_TOLERANCE`), else -1.
    """

    function: str
    optimizer: str
    learning_rate: float
    points: np.ndarray
    losses: np.ndarray
    reached: np.ndarray

    @property
    def diverged(self) -> np.ndarray:
        """``(starts,)`` bool: the path met a non-finite value."""
        return ~np.isfinite(self.losses[:, -1])


@dataclass(frozen=True)
class PathsResult:
    """What :func:`optimizer_paths` computed.

    Attributes:
      problems: the functions, by name.
      trajectories: one per function, optimizer and rate, in that order.
      starts: per function, the ``(starts, 2)`` start points.
      grid: the learning rates swept, or None when the rates were given.
      grid_loss: per ``(function, optimizer)``, the sweep's score of each grid rate: its
        final loss (the mean over the starts), ``inf`` where a start diverged.
      steps: the steps of every path.
    """

    problems: dict[str, Problem]
    trajectories: tuple[Trajectory, ...]
    starts: dict[str, np.ndarray]
    grid: np.ndarray | None
    grid_loss: dict[tuple[str, str], np.ndarray]
    steps: int

    def of(self, function: str) -> tuple[Trajectory, ...]:
        """The trajectories on one function."""
        return tuple(t for t in self.trajectories if t.function == function)

    def best_rate(self, function: str, optimizer: str) -> float:
        """The grid's rate with the lowest score (see :attr:`grid_loss`)."""
        if self.grid is None:
            raise ValueError("the learning rates were given, not swept: there is no best.")
        return float(self.grid[int(np.argmin(self.grid_loss[(function, optimizer)]))])


def _names_error(kind: str, bad: Any, valid: Sequence[str]) -> ValueError:
    return ValueError(f"unknown {kind} {bad!r}; choose from: {', '.join(valid)}.")


def resolve_functions(functions: Sequence[str | Problem] | None) -> dict[str, Problem]:
    """Names of :data:`jaxgd.problems.FUNCTIONS` (or 2-D problems with
    ``info["domain"]``) -> problems by name; unknown names are a ``ValueError`` listing
    the valid ones."""
    if functions is None:
        functions = tuple(FUNCTIONS)
    if isinstance(functions, (str, Problem)):
        functions = [functions]
    out = {}
    for f in functions:
        if isinstance(f, Problem):
            if np.shape(f.init_params) != (2,) or "domain" not in (f.info or {}):
                raise ValueError(f"problem {f.name!r} is not a 2-D test function: its params "
                                 "must have shape (2,) and its info a 'domain'.")
            out[f.name] = f
        elif isinstance(f, str) and f in FUNCTIONS:
            out[f] = FUNCTIONS[f]()
        else:
            raise _names_error("function", f, list(FUNCTIONS))
    if not out:
        raise ValueError("functions is empty; name at least one.")
    return out


def resolve_optimizers(
    optimizers: Sequence[str] | Mapping[str, Callable] | None,
) -> dict[str, Callable]:
    """Names of :data:`jaxgd.OPTIMIZERS` (or a dict of factories) -> factories by name;
    unknown names, and factories without a ``learning_rate``, are a ``ValueError``."""
    if optimizers is None:
        optimizers = DEFAULT_OPTIMIZERS
    if isinstance(optimizers, str):
        optimizers = [optimizers]
    if isinstance(optimizers, Mapping):
        out = dict(optimizers)
    else:
        out = {}
        for name in optimizers:
            if not isinstance(name, str) or name not in OPTIMIZERS:
                raise _names_error("optimizer", name, list(OPTIMIZERS))
            out[name] = OPTIMIZERS[name]
    if not out:
        raise ValueError("optimizers is empty; name at least one.")
    for name, factory in out.items():
        if "learning_rate" not in hyperparam_names(factory):
            raise ValueError(f"optimizer {name!r} takes no learning_rate to sweep; choose "
                             "one that does.")
    return out


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")
    return int(value)


def _rates(name: str, values: Any) -> np.ndarray:
    rates = np.asarray(values, dtype=np.float64)
    if rates.ndim != 1 or rates.size == 0 or not np.all(np.isfinite(rates) & (rates > 0)):
        raise ValueError(f"{name} must be a non-empty 1-D list of positive numbers, "
                         f"got {values!r}.")
    return rates


def _uniform_in(domain) -> Callable[[jax.Array], jax.Array]:
    (x0, x1), (y0, y1) = domain
    low, size = jnp.asarray([x0, y0], jnp.float32), jnp.asarray([x1 - x0, y1 - y0], jnp.float32)
    return lambda key: low + size * jax.random.uniform(key, (2,))


def _scores(problem: Problem, factory: Callable, grid: np.ndarray, steps: int,
            init_fn, seeds: list[int] | None) -> np.ndarray:
    """One sweep of ``factory`` over the grid (times the starts): per rate, the mean
    final loss over the starts, ``inf`` where any start diverged."""
    res = sweep(problem.loss_fn, None if init_fn else problem.init_params, factory,
                hyperparams={"learning_rate": grid.astype(np.float32)}, seeds=seeds,
                init_fn=init_fn, max_steps=steps)
    bad = res.diverged | ~np.isfinite(res.final_loss)
    column = res.hyperparams["learning_rate"]
    out = np.empty(len(grid))
    for i, rate in enumerate(grid.astype(np.float32)):
        lanes = column == rate
        out[i] = np.inf if bad[lanes].any() else np.mean(res.final_loss[lanes])
    return out


def _recorder(loss_fn: Callable, factory: Callable, steps: int):
    """The jitted ``(rates (L,), starts (L, 2)) -> (points (L, steps + 1, 2), losses
    (L, steps + 1))`` of one lane per rate and start."""
    value_and_grad = jax.value_and_grad(loss_fn)

    def one(rate, start):
        opt = factory(learning_rate=rate)
        extra = accepts_extra_args(opt.update)

        def step(carry, _):
            params, state, alive = carry
            loss, grads = value_and_grad(params)
            kwargs = {"value": loss, "grad": grads, "value_fn": loss_fn} if extra else {}
            updates, state = opt.update(grads, state, params, **kwargs)
            new = apply_updates(params, updates)
            new_loss = loss_fn(new)
            # as fit stops a run at its first non-finite value: the path ends there
            alive = (alive & jnp.isfinite(new_loss) & jnp.all(jnp.isfinite(new))
                     & jnp.all(jnp.isfinite(grads)))
            nan = jnp.full_like(new, jnp.nan)
            carry = (jnp.where(alive, new, params), state, alive)
            return carry, (jnp.where(alive, new, nan), jnp.where(alive, new_loss, jnp.nan))

        carry = (start, opt.init(start), jnp.asarray(True))
        _, (points, losses) = jax.lax.scan(step, carry, None, length=steps)
        return (jnp.concatenate([start[None], points]),
                jnp.concatenate([loss_fn(start)[None], losses]))

    return jax.jit(jax.vmap(one))


def _reached(problem: Problem, points: np.ndarray) -> np.ndarray:
    """Per path, the index of the known minimum its last finite point is at, else -1."""
    minima = np.asarray(problem.info.get("minima", [problem.optimum]), np.float64)
    (x0, x1), (y0, y1) = problem.info["domain"]
    tolerance = REACH_TOLERANCE * np.hypot(x1 - x0, y1 - y0)
    out = np.full(len(points), -1)
    for i, path in enumerate(points):
        finite = path[np.all(np.isfinite(path), axis=1)]
        distance = np.linalg.norm(minima - finite[-1], axis=1)
        if distance.min() < tolerance:
            out[i] = int(np.argmin(distance))
    return out


def optimizer_paths(
    functions: Sequence[str | Problem] | None = None,
    optimizers: Sequence[str] | Mapping[str, Callable] | None = None,
    steps: int = 200,
    *,
    starts: int = 1,
    grid: Sequence[float] | None = None,
    learning_rates: Sequence[float] | None = None,
    lr_factors: Sequence[float] | None = None,
    seed: int = 0,
) -> PathsResult:
    """The path of each optimizer on each 2-D test function, at a learning rate chosen
    the same way for all.

    Per function and optimizer, one :func:`jaxgd.sweep` runs ``steps`` steps at every
    rate of ``grid`` (from every start) in one compiled program; the rate with the
    lowest final loss (averaged over the starts; a rate where any start diverged is
    excluded) is picked. One more compiled program, a ``lax.scan`` of the optimizer's
    ``update`` vmapped over the starts and rates, records the paths at that rate (or at
    the given ``learning_rates``, or at the picked rate times each of ``lr_factors``:
    the overshoot-and-crawl picture). Optimizers that read ``value`` / ``value_fn`` get
    them, as from :func:`jaxgd.fit`.

    Args:
      functions: names of :data:`jaxgd.problems.FUNCTIONS` (or 2-D problems carrying
        ``info["domain"]``); default all of them.
      optimizers: names of :data:`jaxgd.OPTIMIZERS`, or a dict of factories taking
        ``learning_rate``; default :data:`DEFAULT_OPTIMIZERS`.
      steps: the steps of each run.
      starts: 1 (the function's classic start), or a count of starts drawn uniformly in
        its ``info["domain"]``, those of sweep seeds ``seed, seed + 1, ...``.
      grid: the rates swept; default :data:`DEFAULT_GRID`.
      learning_rates: run every optimizer at each of these rates instead of sweeping.
      lr_factors: run every optimizer at its picked rate times each factor.
      seed: the first seed of the random starts.

    Returns:
      A :class:`PathsResult`.

    Raises:
      ValueError: on an unknown function or optimizer name (the message lists the valid
        ones), or a bad count or rate, before anything is compiled; and when every rate
        of the grid diverges.
    """
    problems = resolve_functions(functions)
    factories = resolve_optimizers(optimizers)
    steps = _positive_int("steps", steps)
    starts = _positive_int("starts", starts)
    grid = _rates("grid", DEFAULT_GRID if grid is None else grid)
    if learning_rates is not None and lr_factors is not None:
        raise ValueError("give learning_rates (fixed rates) or lr_factors (multiples of the "
                         "swept best rate), not both.")
    fixed = None if learning_rates is None else _rates("learning_rates", learning_rates)
    factors = None if lr_factors is None else _rates("lr_factors", lr_factors)
    seeds = None if starts == 1 else list(range(seed, seed + starts))

    trajectories, start_points, grid_loss = [], {}, {}
    for fname, problem in problems.items():
        init_fn = None if starts == 1 else _uniform_in(problem.info["domain"])
        if init_fn is None:
            points0 = jnp.asarray(problem.init_params, jnp.float32)[None]
        else:
            keys = jnp.stack([trial_keys(s)[0] for s in seeds])
            points0 = jax.jit(jax.vmap(init_fn))(keys)
        start_points[fname] = np.asarray(points0)
        for oname, factory in factories.items():
            if fixed is None:
                scores = _scores(problem, factory, grid, steps, init_fn, seeds)
                grid_loss[(fname, oname)] = scores
                if np.all(np.isinf(scores)):
                    raise ValueError(f"{oname} diverged on {fname} at every learning rate of "
                                     f"the grid {grid.tolist()}; give a grid of smaller rates.")
                best = grid[int(np.argmin(scores))]
                rates = np.array([best]) if factors is None else best * factors
            else:
                rates = fixed
            record = _recorder(problem.loss_fn, factory, steps)
            lane_rates = jnp.asarray(np.repeat(rates, len(points0)), jnp.float32)
            lane_starts = jnp.tile(points0, (len(rates), 1))
            points, losses = jax.device_get(record(lane_rates, lane_starts))
            points = points.reshape(len(rates), len(points0), steps + 1, 2)
            losses = losses.reshape(len(rates), len(points0), steps + 1)
            for rate, p, loss in zip(rates, points, losses, strict=True):
                trajectories.append(Trajectory(fname, oname, float(np.float32(rate)), p, loss,
                                               _reached(problem, p)))
    return PathsResult(problems=problems, trajectories=tuple(trajectories),
                       starts=start_points, grid=None if fixed is not None else grid,
                       grid_loss=grid_loss, steps=steps)
