"""``jaxgd.sweep``: many trials of :func:`jaxgd.fit` as one vmapped, sharded program."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxgd.core.base import Params
from jaxgd.core.cache import BoundedCache
from jaxgd.core.tree import as_traced, shapes_key
from jaxgd.sweep.result import SweepResult
from jaxgd.sweep.trials import as_columns, make_trials
from jaxgd.train import flat
from jaxgd.train.fit import fit_unrestored


def trial_keys(seed: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(init_key, fit_key)`` of the trial with this seed: a separate
    ``fit(..., key=fit_key)`` from ``init_fn(init_key)`` reproduces the trial."""
    init_key, fit_key = jax.random.split(jax.random.PRNGKey(seed))
    return init_key, fit_key


def _final_loss(loss_fn, params, data, has_aux):
    value = loss_fn(params) if data is None else loss_fn(params, data)
    return value[0] if has_aux else value


def _trial_program(loss_fn, factory, init_fn, fit_kwargs: dict):
    """The function of one trial, vmapped over the trial axis, and the restorers left by
    its traces: on ``fit``'s flat path for a big tree, the trials' params and state leave
    the program flat, and ``restorers[shapes_key(start params)]`` unflattens all of them
    at once after it (inside, every output array would add to the compile time; see
    :mod:`jaxgd.train.flat`). None there: the outputs have the caller's layout."""
    restorers: dict[tuple, flat.Restorer | None] = {}

    def one_trial(hyperparams, seed, params, data, val_data, offsets):
        init_key, fit_key = trial_keys(seed)
        start = params if init_fn is None else init_fn(init_key)
        result, restore = fit_unrestored(loss_fn, start, factory(**hyperparams), data,
                                         key=fit_key, val_data=val_data, offsets=offsets,
                                         **fit_kwargs)
        restorers[shapes_key(start)] = restore
        final_params = result.params
        if restore is not None:  # cut as fit's loop cuts them
            final_params = restore.layout.unravel_at(final_params, flat.loss_offsets(
                loss_fn, restore.layout, data, data is not None, offsets))
        final = _final_loss(loss_fn, final_params, data, fit_kwargs.get("has_aux", False))
        return result, final

    return jax.vmap(one_trial, in_axes=(0, 0, None, None, None, None)), restorers


def _start_of_seed(init_fn, seed):
    return init_fn(trial_keys(seed)[0])


_PROGRAMS = BoundedCache(32)


def _compiled_program(loss_fn, factory, init_fn, fit_kwargs: dict, devices: tuple):
    """The jitted sweep program and its restorers (see :func:`_trial_program`); reused
    by later sweeps with the same static inputs, so a second sweep over other values (or
    other data of the same shapes) does not recompile."""
    def build():
        program, restorers = _trial_program(loss_fn, factory, init_fn, fit_kwargs)
        if len(devices) == 1:
            return jax.jit(program), restorers
        mesh = Mesh(np.array(devices), ("trials",))
        lanes = NamedSharding(mesh, PartitionSpec("trials"))
        replicated = NamedSharding(mesh, PartitionSpec())
        return jax.jit(program, in_shardings=(lanes, lanes) + (replicated,) * 4,
                       out_shardings=lanes), restorers

    key = (loss_fn, factory, init_fn, tuple(sorted(fit_kwargs.items())), devices)
    return _PROGRAMS.get(key, build)


def sweep(
    loss_fn: Callable,
    params: Params | None,
    optimizer: Callable,
    *,
    hyperparams: Mapping[str, Any],
    mode: str = "grid",
    seeds: int | Sequence[int] | None = None,
    init_fn: Callable[[jax.Array], Params] | None = None,
    data: Any = None,
    max_parallel: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    **fit_kwargs: Any,
) -> SweepResult:
    """Train many trials at once: every hyperparameter setting (and seed, and start) is a
    lane of one ``jax.vmap`` of :func:`jaxgd.fit`, compiled once.

    Compile time does not grow with the number of trials. With several devices the
    trials are sharded over them (a 1-D mesh over the trial axis, padded when the count
    does not divide); data and start params are replicated. Multi-host: call
    ``jax.distributed.initialize()`` on every host first and pass ``devices=jax.devices()``
    (all hosts' devices); every host runs the same ``sweep`` call.

    A diverging trial (NaN/Inf loss) stops on its own, keeps its last finite params and
    is flagged in :attr:`SweepResult.diverged`; the other lanes are unaffected.

    Args:
      loss_fn: as for :func:`jaxgd.fit`.
      params: the start params shared by all trials (``None`` with ``init_fn``).
      optimizer: an optimizer *factory*, e.g. ``jaxgd.adam``, or any function of the swept
        arguments returning a transformation (fix the others with ``functools.partial``).
      hyperparams: argument name -> 1-D values, e.g.
        ``{"learning_rate": jnp.logspace(-4, 0, 64), "b1": [0.8, 0.9, 0.95]}``.
      mode: ``"grid"`` (Cartesian product; first name varies slowest) or ``"zip"``.
      seeds: a count ``S`` (seeds ``0..S-1``) or a list of ints; each configuration runs
        once per seed. Trial seed ``s`` uses ``init_key, fit_key = split(PRNGKey(s))``:
        ``fit_key`` orders the data (and is what a separate ``fit`` needs to reproduce
        the trial), ``init_key`` goes to ``init_fn``. Default: one seed, 0.
      init_fn: ``init_fn(key) -> params``, a different start per seed (multi-start against
        local minima).
      data: training data, as for :func:`jaxgd.fit`.
      max_parallel: run at most this many trials at a time (rounded up to a multiple of
        the device count), in chunks through the same compiled program; same results.
      devices: the devices to shard over; default all of ``jax.devices()``.
      **fit_kwargs: passed to :func:`jaxgd.fit` (``max_steps``, ``batch_size``, ``tol``,
        ...). ``progress`` is not supported in sweeps.

    Returns:
      A :class:`SweepResult`.

    Example:
      >>> import jax.numpy as jnp, jaxgd
      >>> res = jaxgd.sweep(lambda p: jnp.sum(p**2), jnp.ones(3), jaxgd.sgd,
      ...                   hyperparams={"learning_rate": [0.01, 0.1, 0.5]}, max_steps=20)
      >>> res.best["learning_rate"]
      0.5
    """
    if (params is None) == (init_fn is None):
        raise ValueError("give exactly one of params (a shared start) and init_fn "
                         "(a start per seed).")
    if fit_kwargs.get("progress"):
        raise ValueError("progress bars are not supported inside a sweep; use progress=False.")
    if "key" in fit_kwargs or "opt_state" in fit_kwargs:
        raise ValueError("sweep sets each trial's key from its seed (see seeds) and builds "
                         "its optimizer state; do not pass key or opt_state.")
    trials = make_trials(optimizer, hyperparams, mode, seeds)
    devices = list(devices or jax.devices())
    chunk = trials.count if max_parallel is None else max_parallel
    if chunk < 1:
        raise ValueError(f"max_parallel must be a positive int, got {max_parallel}.")
    chunk = math.ceil(min(chunk, trials.count) / len(devices)) * len(devices)
    num_chunks = math.ceil(trials.count / chunk)
    columns, seeds_array = as_columns(trials, num_chunks * chunk)

    val_data = fit_kwargs.pop("val_data", None)
    run, restorers = _compiled_program(loss_fn, optimizer, init_fn, fit_kwargs, tuple(devices))
    # the start params as the program sees them (dtypes as jit converts them)
    start = as_traced(params) if init_fn is None else jax.eval_shape(
        functools.partial(_start_of_seed, init_fn), seeds_array[0])
    # program inputs for fit's flat path, if it takes it (unused otherwise)
    offsets = flat.FlatLayout.of(start).offset_inputs()

    outputs = []
    for i in range(num_chunks):
        rows = slice(i * chunk, (i + 1) * chunk)
        outputs.append(run({n: v[rows] for n, v in columns.items()}, seeds_array[rows],
                           params, data, val_data, offsets))
    if num_chunks == 1:
        results, finals = outputs[0]
    else:
        results, finals = jax.tree.map(lambda *xs: jnp.concatenate(xs), *outputs)
    if num_chunks * chunk != trials.count:  # drop the padding lanes
        results, finals = jax.tree.map(lambda x: x[: trials.count], (results, finals))
    restore = restorers[shapes_key(start)]
    if restore is not None:
        restored, opt_state = restore(results.params, results.opt_state)
        results = results._replace(params=restored, opt_state=opt_state)
    return SweepResult(trials=trials, fit=results, final_loss=np.asarray(finals))
