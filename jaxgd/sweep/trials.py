"""The table of trials of a sweep: hyperparameter values crossed (grid) or paired (zip),
for each optimizer, each configuration repeated over seeds; and the compiled programs
that run them. Checked before anything is compiled."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core import checks
from jaxgd.core.hyperparams import hyperparam_names


class Program(NamedTuple):
    """The trials that one compiled program runs: one optimizer and one setting of the
    static hyperparameters; the numeric ones are vmapped over its trials.

    Attributes:
      optimizer: the optimizer's name in the ``optimizer`` dict (``None`` for a single
        factory).
      factory: the optimizer factory.
      static: the static arguments, as the Python values the factory receives.
      numeric: the names of the vmapped arguments.
      rows: the program's trials (indices into the table, ascending).
    """

    optimizer: str | None
    factory: Callable
    static: dict[str, Any]
    numeric: tuple[str, ...]
    rows: np.ndarray


class Trials(NamedTuple):
    """One row per trial: ``hyperparams[name][i]`` and ``seeds[i]`` are trial ``i``'s.

    A numeric column is a float array; a static one (see :func:`is_static`) an object
    array of the Python values. A trial whose optimizer does not take the name holds NaN
    (numeric) or None (static) there. ``optimizer[i]`` names trial ``i``'s optimizer when
    the sweep was given a dict of them (else ``optimizer`` is None).
    """

    hyperparams: dict[str, np.ndarray]
    seeds: np.ndarray
    optimizer: np.ndarray | None = None
    programs: tuple[Program, ...] = ()

    @property
    def count(self) -> int:
        return len(self.seeds)


def is_static(value: Any) -> bool:
    """Whether ``value`` cannot be a traced float: a flag, a string, None, a schedule, or
    any other object that is not a real number. A sweep compiles one program per
    combination of such values and passes them to the factory as they are."""
    if isinstance(value, (bool, np.bool_)):
        return True
    if isinstance(value, (int, float, np.integer, np.floating)):
        return False
    if isinstance(value, (np.ndarray, jax.Array)) and value.ndim == 0:
        return not (jnp.issubdtype(value.dtype, jnp.integer)
                    or jnp.issubdtype(value.dtype, jnp.floating))
    return True


def _items(name: str, values: Any) -> list:
    if isinstance(values, (np.ndarray, jax.Array)):
        array = np.asarray(values)
        items = list(array[None] if array.ndim == 0 else array)
    elif isinstance(values, (list, tuple, range)):
        items = list(values)
    else:  # one value: a flag, a schedule, a number
        items = [values]
    for item in items:
        shape = np.shape(item) if not callable(item) and not isinstance(item, str) else ()
        if shape:
            raise ValueError(f"hyperparams[{name!r}] must be a 1-D sequence of values, "
                             f"got an element of shape {shape}.")
    if not items:
        raise ValueError(f"hyperparams[{name!r}] is empty: give at least one value.")
    return items


def _column(name: str, values: Any) -> tuple[np.ndarray, bool]:
    """The checked values of one hyperparameter and whether they are static."""
    items = _items(name, values)
    if any(is_static(v) for v in items):
        column = np.empty(len(items), object)
        for i, v in enumerate(items):
            v = v.item() if isinstance(v, (np.generic, np.ndarray, jax.Array)) else v
            if not is_static(v) and not np.isfinite(v):
                raise ValueError(f"hyperparams[{name!r}] has a non-finite value: {v}.")
            checks.check_by_name(name, v)
            column[i] = v
        return column, True
    column = np.asarray(items, dtype=np.float64)
    if not np.all(np.isfinite(column)):
        raise ValueError(f"hyperparams[{name!r}] has non-finite values: {column}.")
    checks.check_by_name(name, column)
    return column, False


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


def _check_factory(factory: Any, where: str) -> None:
    if isinstance(factory, tuple) or not callable(factory):
        built = (" (an already-built transformation: pass its factory and sweep its "
                 "arguments)" if isinstance(factory, tuple) else "")
        raise TypeError(f"{where} must be an optimizer factory such as jaxgd.adam (a function "
                        f"of the hyperparameters), got {type(factory).__name__}{built}.")


def _factories(optimizer: Callable | Mapping[str, Callable]) -> dict[str | None, Callable]:
    """``{name: factory}``; the one name ``None`` for a single factory."""
    if not isinstance(optimizer, Mapping):
        _check_factory(optimizer, "optimizer")
        return {None: optimizer}
    if not optimizer:
        raise ValueError("optimizer is an empty dict: map names to optimizer factories, "
                         "e.g. {'adam': jaxgd.adam, 'sgd': jaxgd.sgd}.")
    for name, factory in optimizer.items():
        if not isinstance(name, str):
            raise TypeError(f"the optimizer dict's keys name its optimizers, so they must be "
                            f"strings; got {name!r}.")
        _check_factory(factory, f"optimizer[{name!r}]")
    return dict(optimizer)


def _label(name: str | None, factory: Callable) -> str:
    return getattr(factory, "__name__", "optimizer") if name is None else repr(name)


def _check_names(factories: dict, hyperparams: Mapping[str, Any]) -> None:
    takes = {name: hyperparam_names(f) for name, f in factories.items()}
    unknown = [n for n in hyperparams if not any(n in t for t in takes.values())]
    if unknown and len(factories) == 1:
        (name, factory), = factories.items()
        raise ValueError(f"{_label(name, factory)} takes no argument "
                         f"{', '.join(map(repr, unknown))}; it takes: "
                         f"{', '.join(takes[name])}.")
    if unknown:
        each = "; ".join(f"{name!r} takes {', '.join(t)}" for name, t in takes.items())
        raise ValueError(f"no optimizer in the dict takes {', '.join(map(repr, unknown))}: "
                         f"{each}.")
    for name, factory in factories.items():
        missing = [n for n in required_arguments(factory) if n not in hyperparams]
        if missing:
            raise ValueError(f"{_label(name, factory)} needs {missing}: add them to "
                             "hyperparams, or fix them with functools.partial.")


def _configurations(sizes: list[int], mode: str, length: int) -> np.ndarray:
    """``(configs, len(sizes))`` indices into each taken value list: the grid in C order
    (the first name varies slowest), or the zipped rows; one empty row if none is taken."""
    if not sizes:
        return np.zeros((1, 0), np.int64)
    if mode == "zip":
        return np.repeat(np.arange(length)[:, None], len(sizes), axis=1)
    return np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), axis=1)


def _levels(factories: dict, lengths: dict[str, int], mode: str, num_seeds: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """``levels[i, j]``, trial ``i``'s index into the values of the ``j``-th name (-1
    where its optimizer does not take the name), and ``owner[i]``, the index of its
    optimizer; the optimizers one after the other, each configuration once per seed."""
    names = list(lengths)
    blocks = []
    for factory in factories.values():
        taken = [j for j, n in enumerate(names) if n in hyperparam_names(factory)]
        configs = _configurations([lengths[names[j]] for j in taken], mode,
                                  next(iter(lengths.values())))
        block = np.full((len(configs), len(names)), -1, np.int64)
        block[:, taken] = configs
        blocks.append(np.repeat(block, num_seeds, axis=0))
    owner = np.concatenate([np.full(len(b), k) for k, b in enumerate(blocks)])
    return np.concatenate(blocks), owner


def _programs(factories: dict, columns: dict, levels: np.ndarray, owner: np.ndarray
              ) -> tuple[Program, ...]:
    """One program per distinct (optimizer, static values), in order of first trial.
    Static values are told apart by their position in the user's list, not by equality:
    schedules and arrays have no useful one."""
    names = list(columns)
    static_js = [j for j, (_, static) in enumerate(columns.values()) if static]
    keys = np.concatenate([owner[:, None], levels[:, static_js]], axis=1)
    _, first, which = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    programs = []
    for p in np.argsort(first):
        rows = np.flatnonzero(which.reshape(-1) == p)
        name, factory = list(factories.items())[owner[rows[0]]]
        row = levels[rows[0]]
        programs.append(Program(
            optimizer=name,
            factory=factory,
            static={names[j]: columns[names[j]][0][row[j]] for j in static_js if row[j] >= 0},
            numeric=tuple(n for j, n in enumerate(names) if row[j] >= 0
                          and not columns[n][1]),
            rows=rows,
        ))
    return tuple(programs)


def make_trials(
    optimizer: Callable | Mapping[str, Callable],
    hyperparams: Mapping[str, Any],
    mode: str = "grid",
    seeds: int | Sequence[int] | None = None,
) -> Trials:
    """Build and check the trial table and the programs that run it.

    ``grid`` takes the Cartesian product of the value lists (the first name varies
    slowest); ``zip`` pairs them, so all lists must have the same length. With a dict of
    optimizers, each optimizer gets the grid (or the pairs) of the names it takes, the
    optimizers one after the other in the dict's order. Every configuration is then
    repeated for each seed (seeds vary fastest). One program runs each optimizer and
    combination of static values.
    """
    factories = _factories(optimizer)
    if not hyperparams:
        raise ValueError("hyperparams is empty: map at least one argument name to values, "
                         "e.g. {'learning_rate': jnp.logspace(-4, 0, 16)}.")
    _check_names(factories, hyperparams)
    columns = {name: _column(name, values) for name, values in hyperparams.items()}
    lengths = {name: len(values) for name, (values, _) in columns.items()}
    if mode == "zip" and len(set(lengths.values())) > 1:
        raise ValueError(f"mode='zip' pairs the value lists, so they need equal lengths; "
                         f"got {lengths}.")
    if mode not in ("grid", "zip"):
        raise ValueError(f"mode must be 'grid' or 'zip', got {mode!r}.")
    seed_values = _seeds(seeds)
    levels, owner = _levels(factories, lengths, mode, len(seed_values))

    table = {}
    for j, (name, (values, static)) in enumerate(columns.items()):
        taken = levels[:, j] >= 0
        column = np.full(len(levels), None if static else np.nan,
                         object if static else np.float64)
        column[taken] = values[levels[taken, j]]
        table[name] = column
    names_column = None
    if None not in factories:
        names_column = np.asarray(list(factories), dtype=object)[owner]
    return Trials(table, np.resize(seed_values, len(levels)), names_column,
                  _programs(factories, columns, levels, owner))


def required_arguments(factory: Callable) -> list[str]:
    """Arguments of ``factory`` without a default: a sweep must give values for them."""
    return [n for n, d in hyperparam_names(factory).items() if d is inspect.Parameter.empty]


def as_columns(trials: Trials, program: Program, size: int
               ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The program's numeric columns and seeds as NumPy arrays of jax's canonical dtypes,
    padded to ``size`` rows by repeating its first trial (a valid configuration, so
    padding lanes compute nothing exotic; their results are dropped). The jitted sweep
    program transfers them with its call."""
    pad = size - len(program.rows)

    def padded(column, dtype):
        column = column[program.rows]
        return np.concatenate([column, np.repeat(column[:1], pad)]).astype(dtype)

    float_dtype = jnp.result_type(float)
    hyperparams = {n: padded(trials.hyperparams[n], float_dtype) for n in program.numeric}
    return hyperparams, padded(trials.seeds, jnp.result_type(int))
