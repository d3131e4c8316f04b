"""The table of trials of a sweep: hyperparameter values crossed (grid) or paired (zip),
each configuration repeated over seeds. Checked before anything is compiled."""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from jaxgd.core import checks
from jaxgd.core.hyperparams import hyperparam_names


class Trials(NamedTuple):
    """One row per trial: ``hyperparams[name][i]`` and ``seeds[i]`` are trial ``i``'s."""

    hyperparams: dict[str, np.ndarray]
    seeds: np.ndarray

    @property
    def count(self) -> int:
        return len(self.seeds)


def _values(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        array = array[None]
    if array.ndim != 1:
        raise ValueError(f"hyperparams[{name!r}] must be a 1-D sequence of values, "
                         f"got shape {array.shape}.")
    if array.size == 0:
        raise ValueError(f"hyperparams[{name!r}] is empty: give at least one value.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"hyperparams[{name!r}] has non-finite values: {array}.")
    checks.check_by_name(name, array)
    return array


def _seeds(seeds: int | Sequence[int] | None) -> np.ndarray:
    if seeds is None:
        return np.zeros(1, np.uint32)
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ValueError(f"seeds must be a positive count or a list of seeds, got {seeds}.")
        return np.arange(seeds, dtype=np.uint32)
    array = np.asarray(seeds)
    if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"seeds must be a positive count or a 1-D list of ints, got {seeds!r}.")
    return array.astype(np.uint32)


def make_trials(
    factory: Callable,
    hyperparams: Mapping[str, Any],
    mode: str = "grid",
    seeds: int | Sequence[int] | None = None,
) -> Trials:
    """Build and check the trial table.

    ``grid`` takes the Cartesian product of the value lists (the first name varies
    slowest); ``zip`` pairs them, so all lists must have the same length. Every
    configuration is then repeated for each seed (seeds vary fastest).
    """
    if not callable(factory) or isinstance(factory, tuple):
        raise TypeError("optimizer must be an optimizer factory such as jaxgd.adam (a function "
                        "of the hyperparameters), not an already-built transformation.")
    if not hyperparams:
        raise ValueError("hyperparams is empty: map at least one argument name to values, "
                         "e.g. {'learning_rate': jnp.logspace(-4, 0, 16)}.")
    unknown = sorted(set(hyperparams) - set(hyperparam_names(factory)))
    if unknown:
        takes = ", ".join(n for n in hyperparam_names(factory))
        raise ValueError(f"{getattr(factory, '__name__', 'optimizer')} takes no argument "
                         f"{', '.join(map(repr, unknown))}; it takes: {takes}.")
    missing = [n for n in required_arguments(factory) if n not in hyperparams]
    if missing:
        raise ValueError(f"{getattr(factory, '__name__', 'optimizer')} needs {missing}: add "
                         "them to hyperparams, or fix them with functools.partial.")
    columns = {name: _values(name, values) for name, values in hyperparams.items()}
    if mode == "grid":
        rows = list(itertools.product(*columns.values()))
        columns = {name: np.array([r[i] for r in rows]) for i, name in enumerate(columns)}
    elif mode == "zip":
        lengths = {name: len(v) for name, v in columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"mode='zip' pairs the value lists, so they need equal lengths; "
                             f"got {lengths}.")
    else:
        raise ValueError(f"mode must be 'grid' or 'zip', got {mode!r}.")
    seed_values = _seeds(seeds)
    num_configs = len(next(iter(columns.values())))
    repeated = {n: np.repeat(v, len(seed_values)) for n, v in columns.items()}
    return Trials(repeated, np.tile(seed_values, num_configs))


def required_arguments(factory: Callable) -> list[str]:
    """Arguments of ``factory`` without a default: a sweep must give values for them."""
    return [n for n, d in hyperparam_names(factory).items() if d is inspect.Parameter.empty]


def as_columns(trials: Trials, size: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The trial columns as NumPy arrays of jax's canonical dtypes, padded to ``size`` rows
    by repeating trial 0 (a valid configuration, so padding lanes compute nothing exotic;
    their results are dropped). The jitted sweep program transfers them with its call."""
    pad = size - trials.count

    def padded(column, dtype):
        return np.concatenate([column, np.repeat(column[:1], pad)]).astype(dtype)

    float_dtype = jnp.result_type(float)
    hyperparams = {n: padded(v, float_dtype) for n, v in trials.hyperparams.items()}
    return hyperparams, padded(trials.seeds, jnp.result_type(int))
