"""Hyperparameters held as arrays in the optimizer state.

Every jaxgd optimizer keeps its numeric hyperparameters (``learning_rate``, ``b1``,
``momentum``, ...) as scalar arrays in its state. A jitted training step therefore takes
them as *inputs*, not as compile-time constants: changing one with
:func:`set_hyperparams` between calls does not recompile (optax needs
``inject_hyperparams`` for that), and ``jax.vmap`` over them runs many settings at once.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core import checks, sharding
from jaxgd.core.base import (
    GradientTransformation,
    OptState,
    flatten_invariant,
    is_flatten_invariant,
)
from jaxgd.core.cache import BoundedCache


@jax.tree_util.register_pytree_node_class
class HyperparamVector:
    """Named scalar hyperparameters held as one vector (the names are static).

    One array instead of one per hyperparameter: a jitted step called from Python pays
    its per-buffer cost once, not once per hyperparameter. Under ``jax.vmap`` the vector
    gains the leading batch axes, ``values[..., i]`` being hyperparameter ``names[i]``.
    """

    def __init__(self, names: tuple[str, ...], values: jax.Array):
        self.names = tuple(names)
        self.values = values

    def tree_flatten(self):
        return (self.values,), self.names

    @classmethod
    def tree_unflatten(cls, names, children):
        return cls(names, children[0])

    def as_dict(self) -> dict[str, jax.Array]:
        return {name: self.values[..., i] for i, name in enumerate(self.names)}

    def replace(self, **new_values) -> HyperparamVector:
        values = self.values
        for name, value in new_values.items():
            i = self.names.index(name)
            value = jnp.broadcast_to(jnp.asarray(value, values.dtype), values.shape[:-1])
            values = values.at[..., i].set(value)
        return HyperparamVector(self.names, values)

    def __repr__(self) -> str:
        return f"HyperparamVector({self.as_dict()})"


class InjectHyperparamsState(NamedTuple):
    """State of an optimizer whose hyperparameters live in the state.

    Attributes:
      hyperparams: the values the next ``update`` uses (read them with
        :func:`get_hyperparams`, change them with :func:`set_hyperparams`).
      inner_state: the state of the wrapped transformation.
    """

    hyperparams: HyperparamVector
    inner_state: OptState


def _is_numeric(value) -> bool:
    if isinstance(value, bool) or value is None or callable(value):
        return False
    if isinstance(value, (int, float, jax.Array, np.ndarray, np.number)):
        return jnp.issubdtype(jnp.result_type(value), jnp.number)
    return False


#: Hyperparameters whose exact zero removes a whole building block (as optax skips a
#: literal zero weight decay): kept fixed, so that the block is not built at all.
ZERO_SWITCHES_OFF = ("weight_decay",)


def _switched_off(name: str, value) -> bool:
    return (name in ZERO_SWITCHES_OFF and isinstance(value, (int, float))
            and not isinstance(value, bool) and value == 0)


def _as_vector(names: list[str], arguments: dict, on_host: bool = False) -> HyperparamVector:
    """The values as one vector: a jax array (a NumPy one with ``on_host``, when all of
    them are concrete: a jitted call then transfers it with its other inputs)."""
    # The canonical float dtype (float32, or float64 under jax_enable_x64): the rules
    # cast their results back to each leaf's dtype, so bf16 leaves stay bf16.
    dtype = jnp.result_type(float)
    for name in names:
        if jnp.ndim(arguments[name]) != 0:
            raise ValueError(f"{name} must be a scalar, got shape {jnp.shape(arguments[name])}; "
                             "sweep several values with jax.vmap or jaxgd.sweep instead.")
    given = [arguments[n] for n in names]
    if any(isinstance(v, jax.core.Tracer) for v in given):
        return HyperparamVector(tuple(names), jnp.stack([jnp.asarray(v, dtype) for v in given]))
    values = np.asarray(given, dtype=dtype).reshape(len(given))
    # one host-to-device transfer rather than one per hyperparameter
    return HyperparamVector(tuple(names), values if on_host else jnp.asarray(values))


def inject_hyperparams(
    factory: Callable[..., GradientTransformation], static_args: tuple[str, ...] = ()
) -> Callable[..., GradientTransformation]:
    """Wrap a transformation factory so its numeric arguments live in the state.

    The returned factory has the same signature and docstring. Its values are checked
    when it is called (concrete values only). Numeric arguments, except those named in
    ``static_args`` (sizes, counts), are stored in :class:`InjectHyperparamsState`; the
    others (flags, schedules, ``None``) stay fixed. A ``weight_decay`` of exactly 0 also
    stays fixed: it removes the decay block, which then costs nothing (build with a
    non-zero value, or sweep it, to change it later).

    Example:
      >>> import jax, jax.numpy as jnp, jaxgd
      >>> opt = jaxgd.inject_hyperparams(jaxgd.scale_by_adam)(b1=0.8)
      >>> state = opt.init({"w": jnp.ones(3)})
      >>> state = jaxgd.set_hyperparams(state, b1=0.95)
    """
    signature = inspect.signature(factory)

    @functools.wraps(factory)
    def make(*args, **kwargs) -> GradientTransformation:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        # Check by the names the caller used (an alias's ``momentum`` is ``decay`` inside
        # trace), then build once so the building blocks' own checks run before tracing.
        for name, value in arguments.items():
            checks.check_by_name(name, value)
        built = factory(**arguments)
        injected = [
            name for name, v in arguments.items()
            if name not in static_args and _is_numeric(v) and not _switched_off(name, v)
        ]
        fixed = {name: v for name, v in arguments.items() if name not in injected}
        shared_init, shared_update = _shared_functions(factory, fixed)
        made = GradientTransformation(
            HyperparamInit(shared_init, built, {n: arguments[n] for n in injected}),
            shared_update,
        )
        return flatten_invariant(made) if is_flatten_invariant(built) else made

    return make


class HyperparamInit:
    """The ``init`` of an optimizer made by :func:`inject_hyperparams`.

    ``init(params)`` is the usual call. The pair (:attr:`shared`, :meth:`hyperparams`)
    splits it into a function shared by every optimizer of the same setting of the fixed
    arguments and this optimizer's values: :func:`jaxgd.fit` passes the values to its
    compiled program as an input and builds the state inside it, with nothing compiled
    again when only the values change.
    """

    def __init__(self, shared: Callable, built: GradientTransformation, values: dict):
        self.shared = shared  #: ``shared(params, hyperparams) -> state``
        self._built = built
        self._values = values

    def hyperparams(self, on_host: bool = False) -> HyperparamVector:
        """This optimizer's injected values, as the vector its state holds (a NumPy
        vector with ``on_host``, unless they are traced)."""
        return _as_vector(list(self._values), self._values, on_host)

    def __call__(self, params: Any) -> InjectHyperparamsState:
        # ``_built`` has these very values: its state is the one to start from. Its
        # params-shaped leaves are sharded like the params; the rest is replicated.
        state = InjectHyperparamsState(self.hyperparams(), self._built.init(params))
        return sharding.replicate_loose_leaves(state, params)


_SHARED = BoundedCache()


def _shared_functions(
    factory: Callable[..., GradientTransformation], fixed: dict
) -> tuple[Callable, Callable]:
    """``init(params, hyperparams)`` and ``update`` of ``factory`` with these fixed
    arguments, one pair of functions per setting.

    The values of the injected hyperparameters come from the state (or, for ``init``,
    its argument), so two optimizers that differ only in them (``adam(1e-3)`` and
    ``adam(3e-4)``) share both functions: a jitted training step or ``jaxgd.fit`` keyed
    on them compiles once.
    """

    def init(params, hyperparams: HyperparamVector) -> InjectHyperparamsState:
        inner = factory(**fixed, **hyperparams.as_dict())
        return InjectHyperparamsState(hyperparams, inner.init(params))

    def update(updates, state, params=None, **extra_args):
        inner = factory(**fixed, **state.hyperparams.as_dict())
        updates, inner_state = inner.update(updates, state.inner_state, params, **extra_args)
        return updates, InjectHyperparamsState(state.hyperparams, inner_state)

    return _SHARED.get((factory, tuple(sorted(fixed.items()))), lambda: (init, update))


def _is_inject_state(x) -> bool:
    return isinstance(x, InjectHyperparamsState)


def get_hyperparams(opt_state: OptState) -> dict[str, jax.Array]:
    """The hyperparameters held in ``opt_state`` (merged over nested optimizers)."""
    found: dict[str, jax.Array] = {}
    for node in jax.tree.leaves(opt_state, is_leaf=_is_inject_state):
        if _is_inject_state(node):
            found.update(node.hyperparams.as_dict())
    return found


def set_hyperparams(opt_state: OptState, **values: Any) -> OptState:
    """Return ``opt_state`` with new hyperparameter values; nothing is recompiled.

    Each value keeps the dtype and shape of the one it replaces, so a jitted step sees
    the same input types and is not traced again. Concrete values are checked like the
    optimizer's arguments (e.g. a negative learning rate raises ``ValueError``).

    Example:
      >>> import jax, jax.numpy as jnp, jaxgd
      >>> opt = jaxgd.adam(1e-3)
      >>> state = opt.init({"w": jnp.ones(3)})
      >>> state = jaxgd.set_hyperparams(state, learning_rate=3e-4)
      >>> float(jaxgd.get_hyperparams(state)["learning_rate"])
      0.0003...
    """
    available = get_hyperparams(opt_state)
    unknown = sorted(set(values) - set(available))
    if unknown:
        raise ValueError(
            f"unknown hyperparameter(s) {unknown}: this optimizer state holds "
            f"{sorted(available) or 'none'}. Schedules and flags are fixed when the "
            "optimizer is built."
        )
    for name, value in values.items():
        checks.check_by_name(name, value)

    def replace(node):
        if not _is_inject_state(node):
            return node
        mine = {n: v for n, v in values.items() if n in node.hyperparams.names}
        return node._replace(hyperparams=node.hyperparams.replace(**mine))

    return jax.tree.map(replace, opt_state, is_leaf=_is_inject_state)


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
