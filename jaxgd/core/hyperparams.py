"""Hyperparameters held as arrays in the optimizer state: the one mechanism.

Every jaxgd optimizer keeps its numeric hyperparameters (``learning_rate``, ``b1``,
``momentum``, ...) in its state, as optax's ``inject_hyperparams`` does: a plain dict of
scalar arrays, ``state.hyperparams``. A jitted training step therefore takes them as
*inputs*, not as compile-time constants: changing one between calls does not recompile,
and ``jax.vmap`` over them runs many settings at once.

How it works, in three parts:

* an alias is its factory wrapped by :func:`inject_hyperparams` (adding an optimizer
  means writing its rule and its factory; nothing else);
* the wrapped factory sorts its arguments into injected values (numeric), schedules
  (called with the step count) and fixed ones (flags, strings, masks, ``static_args``),
  and builds ``init`` / ``update`` functions shared by every optimizer with the same
  fixed arguments (:func:`_shared_functions`), so that two optimizers differing only in
  their values share compiled programs;
* its ``init`` also offers the hook :meth:`HyperparamInit.split_hyperparams`,
  ``(init(params, hyperparams), values)``, which :func:`jaxgd.fit` reads through
  :func:`in_program_init` to build the state inside its compiled loop from the values
  passed in as inputs. Any ``init`` with that method gets the same treatment.

:func:`jaxgd.get_hyperparams` and :func:`jaxgd.set_hyperparams`
(:mod:`jaxgd.core.hyperparam_state`) read and write the values of a state.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core import checks, numerics, sharding
from jaxgd.core.base import (
    GradientTransformation,
    OptState,
    flatten_invariant,
    is_flatten_invariant,
)
from jaxgd.core.cache import BoundedCache
from jaxgd.core.hyperparam_state import InjectHyperparamsState, is_inject_state


def _is_numeric(value) -> bool:
    if isinstance(value, bool) or value is None or callable(value):
        return False
    if isinstance(value, (int, float, jax.Array, np.ndarray, np.number)):
        return jnp.issubdtype(jnp.result_type(value), jnp.number)
    return False


def _is_schedule(name: str, value) -> bool:
    # A mask may be a callable of the params (or a callable pytree), and a dtype
    # (``jnp.float32``) is a class: neither is a schedule.
    return callable(value) and not isinstance(value, type) and not name.endswith("mask")


#: Hyperparameters whose exact zero removes a whole building block (as optax skips a
#: literal zero weight decay): kept fixed, so that the block is not built at all.
ZERO_SWITCHES_OFF = ("weight_decay",)


def _switched_off(name: str, value) -> bool:
    return (name in ZERO_SWITCHES_OFF and isinstance(value, (int, float))
            and not isinstance(value, bool) and value == 0)


def _dtype_of(name: str, value, float_dtype) -> np.dtype:
    """Integers stay integers, unless ``name`` is a real-valued hyperparameter (one with
    a check in :data:`jaxgd.core.checks.BY_NAME`: ``sgd(1)`` is a learning rate of 1.0)."""
    if jnp.issubdtype(jnp.result_type(value), jnp.integer) and name not in checks.BY_NAME:
        return jnp.result_type(int)
    return float_dtype


def _values(dtypes: dict, given: dict, on_host: bool = False) -> dict[str, Any]:
    """The values as scalars of their dtypes: jax arrays (NumPy ones with ``on_host``,
    when concrete: a jitted call then transfers them with its other inputs)."""
    if on_host and not any(isinstance(v, jax.core.Tracer) for v in given.values()):
        return {n: np.asarray(v, dtypes[n]) for n, v in given.items()}
    return {n: jnp.asarray(v, dtypes[n]) for n, v in given.items()}


def inject_hyperparams(
    factory: Callable[..., GradientTransformation],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., GradientTransformation]:
    """Wrap a transformation factory so its numeric arguments live in the state.

    The returned factory has the same signature and docstring. Its values are checked
    when it is called (concrete values only). As in optax:

    - numeric arguments, except those named in ``static_args`` (sizes, counts, seeds),
      are stored in ``state.hyperparams`` and can be changed between steps;
    - a schedule (a callable ``step -> value``) is called with the update count at each
      step, and its value is stored there too (a new value set there is overwritten);
    - flags, strings, masks and ``None`` stay fixed.

    Floats are stored in ``hyperparam_dtype`` (default: JAX's float, float32 or float64
    under ``jax_enable_x64``; the rules cast their results back to each leaf's dtype, so
    bf16 leaves stay bf16), integers as integers, except for the real-valued names of
    :data:`jaxgd.core.checks.BY_NAME` (``learning_rate=1`` is 1.0). A ``weight_decay``
    of exactly 0 stays fixed: it removes the decay block, which then costs nothing
    (build with a non-zero value to change it later). Wrapping a factory that is already
    wrapped (any jaxgd alias) wraps the original once, with both ``static_args``.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgd
      >>> opt = jaxgd.inject_hyperparams(jaxgd.scale_by_adam)(b1=0.8)
      >>> state = opt.init({"w": jnp.ones(3)})
      >>> state.hyperparams["b1"] = 0.95
    """
    static_args = {static_args} if isinstance(static_args, str) else set(static_args)
    wrapped = getattr(factory, "injected_factory", None)
    if wrapped is not None:  # one state level, not one per wrapping
        inner_factory, inner_static, inner_dtype = wrapped
        return inject_hyperparams(inner_factory, static_args | inner_static,
                                  inner_dtype if hyperparam_dtype is None else hyperparam_dtype)
    signature = inspect.signature(factory)
    unknown = sorted(static_args - set(signature.parameters))
    if unknown:
        raise ValueError(f"static_args {unknown} are not arguments of "
                         f"{getattr(factory, '__name__', factory)}; its arguments are "
                         f"{list(signature.parameters)}.")

    @functools.wraps(factory)
    def make(*args, **kwargs) -> GradientTransformation:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        # read now, not when wrapped: ``jax.enable_x64`` may have changed it since
        float_dtype = jnp.dtype(hyperparam_dtype or jnp.result_type(float))
        # Check by the names the caller used (an alias's ``momentum`` is ``decay`` inside
        # trace), then build once as called, so the blocks' own checks run before tracing.
        for name, value in arguments.items():
            checks.check_by_name(name, value)
        built = factory(**arguments)
        schedules, injected, fixed = {}, {}, {}
        for name, v in arguments.items():
            if name in static_args:
                fixed[name] = v
            elif _is_schedule(name, v):
                schedules[name] = v
            elif _is_numeric(v) and not _switched_off(name, v):
                injected[name] = v
            else:
                fixed[name] = v
        for name, value in injected.items():
            if jnp.ndim(value) != 0:
                raise ValueError(f"{name} must be a scalar, got shape {jnp.shape(value)}; "
                                 "sweep several values with jax.vmap or jaxgd.sweep instead.")
        dtypes = {n: _dtype_of(n, v, float_dtype) for n, v in injected.items()}
        shared_init, shared_update = _shared_functions(
            factory, fixed, schedules, {**dtypes, **dict.fromkeys(schedules, float_dtype)})
        init = HyperparamInit(shared_init, injected, dtypes, None if schedules else built)
        made = GradientTransformation(init, shared_update)
        return flatten_invariant(made) if is_flatten_invariant(built) else made

    make.injected_factory = (factory, frozenset(static_args), hyperparam_dtype)
    return make


def in_program_init(optimizer: GradientTransformation) -> tuple[Callable | None, Any]:
    """``(init, hyperparams)`` with ``init(params, hyperparams) -> state`` when
    ``optimizer.init`` has the hook ``split_hyperparams()`` (see the module docstring),
    else ``(None, None)``: build the state with ``optimizer.init(params)``."""
    split = getattr(optimizer.init, "split_hyperparams", None)
    return (None, None) if split is None else split()


def detach_hyperparams(state: OptState) -> tuple[OptState, Any]:
    """``(state without its values, values)`` when ``state`` was made by an injected
    ``init`` and no schedule changes its values (it has no count): its ``update`` then
    gives them back as they came, so a training loop can hold them as inputs rather than
    carry them from step to step (a carried value is selected by every step and, under
    ``vmap``, made one per lane). Else ``(state, None)``. :func:`attach_hyperparams`
    undoes it."""
    if isinstance(state, InjectHyperparamsState) and state.count is None:
        return state._replace(hyperparams=None), state.hyperparams
    return state, None


def attach_hyperparams(state: OptState, values: Any) -> OptState:
    """The whole state of :func:`detach_hyperparams`'s pair (``state`` itself when
    ``values`` is None)."""
    return state if values is None else state._replace(hyperparams=values)


class HyperparamInit:
    """The ``init`` of an optimizer made by :func:`inject_hyperparams`.

    ``init(params)`` is the usual call. :meth:`split_hyperparams` splits it into a
    function shared by every optimizer of the same setting of the fixed arguments and
    this optimizer's values: :func:`jaxgd.fit` passes the values to its compiled program
    as an input and builds the state inside it, with nothing compiled again when only
    the values change.
    """

    def __init__(self, shared: Callable, values: dict, dtypes: dict,
                 built: GradientTransformation | None):
        self.shared = shared  #: ``shared(params, hyperparams) -> state``
        self._values = values
        self._dtypes = dtypes
        self._built = built

    def hyperparams(self, on_host: bool = False) -> dict[str, Any]:
        """This optimizer's injected values (not its schedules), as ``shared`` takes them
        (NumPy scalars with ``on_host``, unless they are traced)."""
        return _values(self._dtypes, self._values, on_host)

    def split_hyperparams(self) -> tuple[Callable, dict[str, Any]]:
        """``(shared, values)``: ``shared(params, values)`` is ``self(params)``; the
        values are NumPy scalars unless traced (a jitted call moves them with its other
        inputs)."""
        return self.shared, self.hyperparams(on_host=True)

    def __call__(self, params: Any) -> InjectHyperparamsState:
        if self._built is None:  # schedules: their step-0 values are computed by shared
            state = self.shared(params, self.hyperparams())
        else:  # ``_built`` has these very values: its state is the one to start from
            state = InjectHyperparamsState(None, self.hyperparams(), self._built.init(params))
        # Params-shaped leaves are sharded like the params; the rest is replicated.
        return sharding.replicate_loose_leaves(state, params)


_SHARED = BoundedCache()


def _shared_functions(
    factory: Callable[..., GradientTransformation], fixed: dict, schedules: dict,
    dtypes: dict,
) -> tuple[Callable, Callable]:
    """``init(params, hyperparams)`` and ``update`` of ``factory`` with these fixed
    arguments and schedules, one pair of functions per setting.

    The values of the injected hyperparameters come from the state (or, for ``init``,
    its argument), so two optimizers that differ only in them (``adam(1e-3)`` and
    ``adam(3e-4)``) share both functions: a jitted training step or ``jaxgd.fit`` keyed
    on them compiles once.
    """

    def current(hyperparams: Mapping, count) -> dict[str, jax.Array]:
        # Cast back: an entry assigned a Python float keeps the state's types stable.
        values = {n: jnp.asarray(v, dtypes[n]) for n, v in hyperparams.items()}
        values.update((n, jnp.asarray(f(count), dtypes[n])) for n, f in schedules.items())
        return values

    def init(params, hyperparams: Mapping) -> InjectHyperparamsState:
        count = numerics.zero_count() if schedules else None
        values = current(hyperparams, count)
        return InjectHyperparamsState(count, values, factory(**fixed, **values).init(params))

    def update(updates, state, params=None, **extra_args):
        held = getattr(state, "hyperparams", None)
        if not isinstance(held, Mapping) or set(held) != set(dtypes):
            raise ValueError(
                f"this state was not made by this optimizer's init: {factory.__name__} "
                f"keeps the hyperparameters {sorted(dtypes)} in its state, this one holds "
                f"{sorted(held) if isinstance(held, Mapping) else type(state).__name__}. Pass "
                "the state that this optimizer's init(params) returned.")
        values = current(held, state.count)
        inner = factory(**fixed, **values)
        inner_state = _pass_down(inner, state.inner_state, updates)
        updates, inner_state = inner.update(updates, inner_state, params, **extra_args)
        count = None if state.count is None else numerics.safe_increment(state.count)
        return updates, InjectHyperparamsState(count, values, inner_state)

    key = (factory, tuple(sorted(fixed.items())), tuple(sorted(schedules.items())),
           tuple(sorted(dtypes.items())))
    return _SHARED.get(key, lambda: (init, update))


def _pass_down(inner: GradientTransformation, inner_state: OptState, like: Any) -> OptState:
    """``inner_state`` with the values ``inner`` was built from in its own optimizers' states.

    A jaxgd alias built by a factory of one's own (``chain(clip(1.0), adam(lr))``) keeps a
    copy of ``lr`` in its state and reads that one; the values set on the outer state must
    replace it. A fresh ``inner.init`` holds them (under ``jit`` the rest of it is dead code).
    """
    old, treedef = jax.tree_util.tree_flatten(inner_state, is_leaf=is_inject_state)
    if not any(map(is_inject_state, old)):
        return inner_state
    fresh, fresh_treedef = jax.tree_util.tree_flatten(inner.init(like), is_leaf=is_inject_state)
    if fresh_treedef != treedef:
        return inner_state
    return jax.tree_util.tree_unflatten(treedef, [
        o._replace(hyperparams=f.hyperparams) if is_inject_state(o) else o
        for o, f in zip(old, fresh, strict=True)])


_NAMES = BoundedCache()


def hyperparam_names(factory: Callable[..., GradientTransformation]) -> Mapping[str, Any]:
    """The arguments of an optimizer factory and their defaults (``inspect.Parameter.empty``
    for required ones): the one list used by sweeps, the CLI and the docs."""

    def read_signature():  # remembered per factory: a sweep asks on every call
        return {
            name: p.default
            for name, p in inspect.signature(factory).parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }

    return dict(_NAMES.get(factory, read_signature))
