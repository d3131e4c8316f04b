"""The gradient-transformation protocol: ``init(params) -> state`` and
``update(updates, state, params=None, **extra_args) -> (updates, state)``.

It is structurally the same as optax's, so jaxgd and optax transformations chain with
each other and drop into flax / equinox training loops unchanged.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import tree

Params = Any
Updates = Any
OptState = Any


class GradientTransformation(NamedTuple):
    """A pair of pure functions that turn gradients into parameter updates.

    Attributes:
      init: ``init(params) -> state`` builds the transformation's state.
      update: ``update(updates, state, params=None, **extra_args) -> (updates, state)``.
        Extra keyword arguments (``value``, ``value_fn``, ...) are ignored by the
        transformations that do not need them.
    """

    init: Callable[[Params], OptState]
    update: Callable[..., tuple[Updates, OptState]]


class EmptyState(NamedTuple):
    """The state of a stateless transformation."""


def flatten_invariant(transform: GradientTransformation) -> GradientTransformation:
    """Mark ``transform`` as flatten-invariant: it gives the same updates on a tree and
    on its leaves concatenated into one vector (true of elementwise rules and of global
    norms; false of per-leaf norms, per-leaf shapes or per-leaf random keys).

    :func:`jaxgd.fit` may then hold the parameters as one flat vector, which makes each
    step's cost independent of the number of leaves. The mark is an attribute of the
    ``update`` function; :func:`chain` and :func:`jaxgd.inject_hyperparams` carry it.
    """
    transform.update.flatten_invariant = True
    return transform


def is_flatten_invariant(transform: GradientTransformation) -> bool:
    """Whether ``transform`` was marked with :func:`flatten_invariant`."""
    return getattr(transform.update, "flatten_invariant", False)


def init_empty_state(params) -> EmptyState:
    """The ``init`` of every stateless transformation."""
    del params
    return EmptyState()


def identity() -> GradientTransformation:
    """The transformation that returns updates unchanged: :math:`u \\leftarrow g`."""

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        return updates, state

    return flatten_invariant(GradientTransformation(init_empty_state, update))


def accepts_extra_args(update: Callable) -> bool:
    """Whether an ``update`` function takes ``**extra_args`` (jaxgd's and optax's
    ``...ExtraArgs`` transformations do; plain optax ones do not)."""
    try:
        return _accepts_extra_args_remembered(update)  # fit asks on every call
    except TypeError:  # an unhashable callable
        return _accepts_extra_args(update)


@functools.lru_cache(maxsize=1024)
def _accepts_extra_args_remembered(update: Callable) -> bool:
    return _accepts_extra_args(update)


def _accepts_extra_args(update: Callable) -> bool:
    try:
        parameters = inspect.signature(update).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def chain(*transforms) -> GradientTransformation:
    """Apply transformations one after another: :math:`u = T_n(\\dots T_1(g))`.

    Accepts jaxgd and optax transformations alike. Extra keyword arguments given to
    ``update`` reach the links that accept them.

    Example:
      >>> import jaxgd
      >>> opt = jaxgd.chain(jaxgd.clip_by_global_norm(1.0), jaxgd.scale_by_adam(),
      ...                   jaxgd.scale_by_learning_rate(1e-3))
    """
    for i, t in enumerate(transforms):
        if not (callable(getattr(t, "init", None)) and callable(getattr(t, "update", None))):
            raise TypeError(
                f"chain() argument {i} is {type(t).__name__}, not a gradient transformation "
                "(an object with init and update functions)."
            )
    takes_extra = tuple(accepts_extra_args(t.update) for t in transforms)

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(updates, state, params=None, **extra_args):
        if not isinstance(state, tuple) or len(state) != len(transforms):
            raise ValueError(
                f"chain of {len(transforms)} transformations got a state that is not a "
                f"tuple of {len(transforms)} states; pass the state returned by init()."
            )
        new_state = []
        for t, s, extra in zip(transforms, state, takes_extra, strict=True):
            kwargs = extra_args if extra else {}
            updates, s = t.update(updates, s, params, **kwargs)
            new_state.append(s)
        return updates, tuple(new_state)

    chained = GradientTransformation(init, update)
    return flatten_invariant(chained) if all(map(is_flatten_invariant, transforms)) else chained


def apply_updates(params: Params, updates: Updates) -> Params:
    """Return :math:`p + u` leaf by leaf, each result keeping the dtype of its parameter.

    ``None`` leaves (frozen parameters) pass through.
    """
    tree.check_same_structure(params, updates, "params", "updates")
    tree.check_float_params(params)
    return jax.tree.map(
        lambda p, u: None if p is None else jnp.asarray(p + u).astype(jnp.result_type(p)),
        params,
        updates,
        is_leaf=lambda x: x is None,
    )
