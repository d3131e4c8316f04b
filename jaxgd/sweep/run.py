"""``jaxgd.sweep``: many trials of :func:`jaxgd.fit` as one vmapped, sharded program."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding

from jaxgd.core.base import Params
from jaxgd.core.cache import BoundedCache
from jaxgd.core.tree import as_traced
from jaxgd.sweep.placement import (
    Placement,
    check_data_split,
    check_same_grid_everywhere,
    gather_trials,
    moved_onto,
    placement_of,
)
from jaxgd.sweep.result import SweepResult
from jaxgd.sweep.trials import Program, Trials, as_columns, make_trials
from jaxgd.train.fit import finish, fit, fit_traced, program_inputs
from jaxgd.train.result import FitResult


def trial_keys(seed: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(init_key, fit_key)`` of the trial with this seed: a separate
    ``fit(..., key=fit_key)`` from ``init_fn(init_key)`` reproduces the trial."""
    init_key, fit_key = jax.random.split(jax.random.PRNGKey(seed))
    return init_key, fit_key


#: The name of the vmapped trial axis: fit's loop runs its epochs while any trial runs,
#: so that trials of one seed share each epoch's permutation (see jaxgd.train.loop).
TRIAL_AXIS = "trials"


#: fit's keywords that sweep sets itself, for every trial.
_SET_BY_SWEEP = ("key", "opt_state")


def _check_fit_kwargs(fit_kwargs: dict) -> None:
    """Names in ``fit_kwargs`` that :func:`jaxgd.fit` does not take are a ``TypeError``
    naming ``sweep`` and the keywords it takes (fit would name its own internals)."""
    fit_names = [name for name, p in inspect.signature(fit).parameters.items()
                 if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in _SET_BY_SWEEP]
    unknown = sorted(set(fit_kwargs) - set(fit_names) - set(_SET_BY_SWEEP))
    if unknown:
        own = [name for name, p in inspect.signature(sweep).parameters.items()
               if p.kind is inspect.Parameter.KEYWORD_ONLY]
        raise TypeError(
            f"sweep() got unexpected keyword argument(s) {unknown}. It takes {own}, and "
            f"passes on to jaxgd.fit {fit_names}."
        )


def _trial_program(loss_fn, factory, static: dict, init_fn, fit_kwargs: dict,
                   shared_seed: bool):
    """The function of one trial, vmapped over the trial axis: its :func:`fit_traced`
    result (converted after the program by :func:`jaxgd.train.fit.finish`), and its
    loss on the whole training data and on the validation data at the params it returns.

    ``static`` holds the arguments of ``factory`` that cannot be traced (flags,
    schedules): fixed in this program, with the numeric ones vmapped. With a
    ``shared_seed`` (one seed for all trials) the seed is not vmapped: the trials share
    their start and their data order, and each epoch's permutation is drawn once."""
    has_aux = fit_kwargs.get("has_aux", False)

    def one_trial(hyperparams, seed, params, data, val_data, caller_inputs):
        init_key, fit_key = trial_keys(seed)
        start = params if init_fn is None else init_fn(init_key)
        result, loss_at = fit_traced(loss_fn, start, factory(**static, **hyperparams), data,
                                     key=fit_key, val_data=val_data,
                                     caller_inputs=caller_inputs, trial_axis=TRIAL_AXIS,
                                     **fit_kwargs)

        def value(*batch):
            out = loss_at(*batch)
            return out[0] if has_aux else out

        final = result.final_loss  # the loop's own, where it evaluates it
        if final is None:
            final = value() if data is None else value(data)
        val = None if val_data is None else value(val_data)
        return result, final, val

    seed_axis = None if shared_seed else 0
    return jax.vmap(one_trial, in_axes=(0, seed_axis, None, None, None, None),
                    axis_name=TRIAL_AXIS)


def _start_of_seed(init_fn, seed):
    return init_fn(trial_keys(seed)[0])


#: The default bound on the programs one sweep compiles (see ``max_programs``).
MAX_PROGRAMS = 64

_PROGRAMS = BoundedCache(MAX_PROGRAMS)


def _static_key(static: dict) -> tuple:
    # the type too: True == 1.0 would otherwise share a program
    return tuple((name, type(v), v) for name, v in sorted(static.items()))


def _compiled_program(loss_fn, factory, static: dict, init_fn, fit_kwargs: dict,
                      placement: Placement, shared_seed: bool, data: Any, val_data: Any):
    """The jitted sweep program (see :func:`_trial_program`); reused by later sweeps
    with the same static inputs, so a second sweep over other numeric values (or other
    data of the same shapes) does not recompile. The trials are split
    over the placement's trial axis, the data's examples over its data axes; the start
    params are replicated."""
    def build():
        program = _trial_program(loss_fn, factory, static, init_fn, fit_kwargs, shared_seed)
        if placement.mesh.size == 1:
            return jax.jit(program)
        lanes = placement.sharding(placement.trial_axis)
        replicated = placement.sharding()
        seeds = replicated if shared_seed else lanes
        in_shardings = (lanes, seeds, replicated, placement.data_sharding(data),
                        placement.data_sharding(val_data), replicated)
        jitted = jax.jit(program, in_shardings=in_shardings, out_shardings=lanes)

        def on_the_mesh(*args):
            # Over several processes each one places its part of the same host inputs
            # (jit takes no host input split over other processes' devices), and gets
            # every trial's small results back.
            if placement.mesh.is_multi_process:
                return gather_trials(*jitted(*jax.device_put(args, in_shardings)))
            return jitted(*jax.tree.map(
                lambda sharding, part: jax.tree.map(lambda x: moved_onto(x, sharding), part),
                in_shardings, args, is_leaf=lambda s: isinstance(s, NamedSharding)))

        return on_the_mesh

    key = (loss_fn, factory, _static_key(static), init_fn, tuple(sorted(fit_kwargs.items())),
           placement, shared_seed, jax.tree.structure((data, val_data)))
    return _PROGRAMS.get(key, build)


def _run_program(trials: Trials, program: Program, loss_fn, init_fn, fit_kwargs: dict,
                 placement: Placement, max_parallel: int | None, pad: bool, inputs: tuple):
    """``(FitResult, final losses, validation losses)`` of one program's trials, in the
    order of ``program.rows``, run in chunks of at most ``max_parallel`` trials (rounded
    up to a multiple of the trial axis's size), the last one padded."""
    count, lanes = len(program.rows), placement.lanes
    if not pad and count % lanes:
        raise ValueError(
            f"{count} trials do not split evenly over the {lanes} devices of the trial "
            f"axis {placement.trial_axis!r}, and pad=False; sweep a multiple of {lanes} "
            "trials, or let pad=True fill the last devices with copies.")
    chunk = count if max_parallel is None else max_parallel
    chunk = math.ceil(min(chunk, count) / lanes) * lanes
    num_chunks = math.ceil(count / chunk)
    columns, seeds = as_columns(trials, program, num_chunks * chunk)
    shared_seed = bool(np.all(seeds == seeds[0]))
    params, data, val_data, caller_inputs = inputs
    run = _compiled_program(loss_fn, program.factory, program.static, init_fn,
                            fit_kwargs, placement, shared_seed, data, val_data)
    outputs = []
    for i in range(num_chunks):
        rows = slice(i * chunk, (i + 1) * chunk)
        outputs.append(run({n: v[rows] for n, v in columns.items()},
                           seeds[0] if shared_seed else seeds[rows], params, data, val_data,
                           caller_inputs))
    out = outputs[0] if num_chunks == 1 else jax.tree.map(
        lambda *xs: jnp.concatenate(xs), *outputs)
    if num_chunks * chunk != count:  # drop the padding lanes
        out = jax.tree.map(lambda x: x[:count], out)
    results, finals, vals = out
    return finish(results), finals, vals


def _same_structure(trees: list) -> bool:
    """Whether the trees have one structure and leaves of one shape past the trial axis
    and one dtype, so that their trials can be concatenated."""
    def layout(tree):
        return jax.tree.structure(tree), [(x.shape[1:], x.dtype) for x in jax.tree.leaves(tree)]
    first = layout(trees[0])
    return all(layout(t) == first for t in trees[1:])


def _merge(parts: list[tuple], rows: list[np.ndarray]) -> tuple:
    """The programs' ``(FitResult, finals, vals)`` as one table, trial ``i`` at row ``i``;
    a field whose layout differs between programs (the states of different optimizers)
    is None."""
    if len(parts) == 1:
        return parts[0]
    where = np.argsort(np.concatenate(rows))

    def merge(fields: list):
        if not _same_structure(fields):
            return None
        def rows(*xs):  # records stay on the host (see SweepResult.fit)
            xp = np if all(isinstance(x, np.ndarray) for x in xs) else jnp
            return xp.concatenate(xs)[where]

        return jax.tree.map(rows, *fields)

    results = [part[0] for part in parts]
    fit = FitResult(*(merge([r[k] for r in results]) for k in range(len(FitResult._fields))))
    return fit, merge([part[1] for part in parts]), merge([part[2] for part in parts])


def sweep(
    loss_fn: Callable,
    params: Params | None,
    optimizer: Callable | Mapping[str, Callable],
    *,
    hyperparams: Mapping[str, Any],
    mode: str = "grid",
    seeds: int | Sequence[int] | None = None,
    init_fn: Callable[[jax.Array], Params] | None = None,
    data: Any = None,
    max_parallel: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    max_programs: int = MAX_PROGRAMS,
    mesh: Mesh | None = None,
    trial_axis: str = TRIAL_AXIS,
    pad: bool = True,
    **fit_kwargs: Any,
) -> SweepResult:
    """Train many trials at once: every numeric hyperparameter setting (and seed, and
    start) is a lane of one ``jax.vmap`` of :func:`jaxgd.fit`, compiled once.

    Compile time does not grow with the number of trials. Values that cannot be traced
    (flags such as ``nesterov``, strings, schedules, ``None``) are compiled in: one
    program per optimizer and combination of them, each vmapped over its numeric
    values, all merged into one table. With several devices the trials are sharded over
    them (a 1-D mesh over the trial axis, padded when the count does not divide), the
    data and start params replicated; on a ``mesh`` with more axes the data's examples
    are split over the others. Multi-host: call ``jax.distributed.initialize()`` on
    every host first; every host then makes the same ``sweep`` call, with the same host
    arrays (or global ones), over all hosts' devices (the default). Every host gets the
    whole table; the trials' params stay split over the hosts (:attr:`SweepResult.fit`),
    and :attr:`SweepResult.best_params` copies the best trial's to every host.

    A diverging trial (NaN/Inf loss or gradient) stops on its own, returns the last
    params whose loss and gradient were finite (see :func:`jaxgd.fit`) and is flagged in
    :attr:`SweepResult.diverged`; the other lanes are unaffected. Trials of one seed share
    their data order: each epoch's permutation is computed once for all of them.

    Args:
      loss_fn: as for :func:`jaxgd.fit`.
      params: the start params shared by all trials (``None`` with ``init_fn``).
      optimizer: an optimizer *factory*, e.g. ``jaxgd.adam``, or any function of the swept
        arguments returning a transformation (fix the others with ``functools.partial``);
        or a dict of them, ``{"adam": jaxgd.adam, "sgd": jaxgd.sgd}``, to compare
        optimizers: each runs the trials of the names it takes, and the table gains an
        ``optimizer`` column.
      hyperparams: argument name -> 1-D values, e.g.
        ``{"learning_rate": jnp.logspace(-4, 0, 64), "b1": [0.8, 0.9, 0.95]}``. A column
        holding any bool, string, ``None`` or callable is static (see above); the others
        are numeric. With a dict of optimizers, a name must be taken by at least one.
      mode: ``"grid"`` (Cartesian product; first name varies slowest) or ``"zip"``; with a
        dict, per optimizer over the names it takes, the optimizers in the dict's order.
      seeds: a count ``S`` (seeds ``0..S-1``) or a list of ints; each configuration runs
        once per seed. Trial seed ``s`` uses ``init_key, fit_key = split(PRNGKey(s))``:
        ``fit_key`` orders the data (and is what a separate ``fit`` needs to reproduce
        the trial), ``init_key`` goes to ``init_fn``. Default: one seed, 0.
      init_fn: ``init_fn(key) -> params``, a different start per seed (multi-start against
        local minima).
      data: training data, as for :func:`jaxgd.fit`.
      max_parallel: run at most this many trials at a time (rounded up to a multiple of
        the device count), in chunks through the same compiled program; same results.
      devices: the devices to split the trials over (a 1-D mesh); default all of
        ``jax.devices()``. Not with ``mesh``.
      mesh: a :class:`jax.sharding.Mesh` to run on instead: the trials are split over
        its axis ``trial_axis`` and the examples of ``data`` (and ``val_data``) over its
        other axes (data parallelism), e.g. ``jax.make_mesh((2, 2), ("trials",
        "data"))``; the numbers are those of one device.
      trial_axis: the mesh axis the trials are split over (default ``"trials"``).
      pad: when the trial count does not split evenly over the trial axis, fill the
        last devices with copies of a trial (dropped from the result); ``False`` makes
        that an error.
      max_programs: the most programs the sweep may compile (optimizers times
        combinations of static values); more is an error, raised before compiling.
      **fit_kwargs: passed to :func:`jaxgd.fit` (``max_steps``, ``batch_size``, ``tol``,
        ``val_data``, ``ema_decay``, ...). ``progress`` is not supported in sweeps. With
        ``val_data`` the table gains validation columns and the best trial is chosen on
        validation loss. As in ``fit``, a schedule-free optimizer's trials are scored
        and returned at their evaluation params (:func:`jaxgd.schedule_free_eval_params`).

    Returns:
      A :class:`SweepResult`.

    Example:
      >>> import jax.numpy as jnp, jaxgd
      >>> res = jaxgd.sweep(lambda p: jnp.sum(p**2), jnp.ones(3), jaxgd.sgd,
      ...                   hyperparams={"learning_rate": [0.01, 0.1, 0.5]}, max_steps=20)
      >>> res.best["learning_rate"]
      0.5
    """
    _check_fit_kwargs(fit_kwargs)
    if (params is None) == (init_fn is None):
        raise ValueError("give exactly one of params (a shared start) and init_fn "
                         "(a start per seed).")
    if fit_kwargs.get("progress"):
        raise ValueError("progress bars are not supported inside a sweep; use progress=False.")
    if "key" in fit_kwargs or "opt_state" in fit_kwargs:
        raise ValueError("sweep sets each trial's key from its seed (see seeds) and builds "
                         "its optimizer state; do not pass key or opt_state.")
    if max_parallel is not None and max_parallel < 1:
        raise ValueError(f"max_parallel must be a positive int, got {max_parallel}.")
    if isinstance(max_programs, bool) or not isinstance(max_programs, int) or max_programs < 1:
        raise ValueError(f"max_programs must be a positive int, got {max_programs!r}.")
    trials = make_trials(optimizer, hyperparams, mode, seeds)
    if len(trials.programs) > max_programs:
        static = sorted({n for p in trials.programs for n in p.static})
        raise ValueError(
            f"this sweep needs {len(trials.programs)} compiled programs (one per optimizer "
            f"and combination of the static values of {static}), more than "
            f"max_programs={max_programs}; pass max_programs={len(trials.programs)} to "
            "compile them all, or sweep fewer static values.")
    placement = placement_of(devices, mesh, trial_axis)
    check_same_grid_everywhere(trials)

    val_data = fit_kwargs.pop("val_data", None)
    check_data_split(data, placement, "data")
    check_data_split(val_data, placement, "val_data")
    # the start params as the program sees them (dtypes as jit converts them)
    start = as_traced(params) if init_fn is None else jax.eval_shape(
        functools.partial(_start_of_seed, init_fn), trials.seeds[0].astype(jnp.result_type(int)))
    inputs = (params, data, val_data, program_inputs(start))
    parts = [_run_program(trials, program, loss_fn, init_fn, fit_kwargs, placement,
                          max_parallel, pad, inputs) for program in trials.programs]
    results, finals, vals = _merge(parts, [p.rows for p in trials.programs])
    return SweepResult(trials=trials, fit=results, final_loss=np.asarray(finals),
                       val_loss=None if vals is None else np.asarray(vals),
                       mini_batch=fit_kwargs.get("batch_size") is not None)
