"""The gradient-transformation protocol: ``init(params) -> state`` and
``update(updates, state, params=None, **extra_args) -> (updates, state)``.

It is structurally the same as optax's, so jaxgd and optax transformations chain with
each other and drop into flax / equinox training loops unchanged. When optax is installed
a jaxgd transformation *is* an ``optax.GradientTransformationExtraArgs`` (see
:mod:`jaxgd.core.interop`), so optax's own wrappers pass it their extra arguments.

Extra arguments (the loss ``value``, ``value_fn``, batch data) are routed here: to the
links that take ``**extra_args`` (:func:`accepts_extra_args`, :func:`update_with_extra_args`)
and to the keyword arguments of a loss function (:func:`bind_value_fn`,
:func:`check_extra_args`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import interop, tree

Params = Any
Updates = Any
OptState = Any


class GradientTransformation(interop.GradientTransformationBase):
    """A pair of pure functions that turn gradients into parameter updates.

    A named tuple ``(init, update)``; with optax installed, also an
    ``optax.GradientTransformationExtraArgs``, so ``optax.chain``, ``optax.MultiSteps``
    and the other optax wrappers hand it their extra arguments.

    Attributes:
      init: ``init(params) -> state`` builds the transformation's state.
      update: ``update(updates, state, params=None, **extra_args) -> (updates, state)``.
        Extra keyword arguments (``value``, ``value_fn``, ...) are ignored by the
        transformations that do not need them.
    """

    __slots__ = ()


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


def update_with_extra_args(inner) -> Callable:
    """``inner.update``, dropping extra keyword arguments when it does not take them (plain
    optax transformations)."""
    if accepts_extra_args(inner.update):
        return inner.update

    def update(updates, state, params=None, **extra_args):
        del extra_args
        return inner.update(updates, state, params)

    return update


# Extra arguments that the solvers consume themselves and never forward to ``value_fn``.
_RESERVED = frozenset({"value", "grad", "value_fn"})


def _keyword_names(value_fn: Callable) -> frozenset[str] | None:
    """The names ``value_fn`` takes after ``params``; ``None`` when any name may be one of
    them (it takes ``**kwargs``, or its signature cannot be read)."""
    try:
        parameters = list(inspect.signature(value_fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return frozenset(p.name for p in parameters[1:]
                     if p.kind is not inspect.Parameter.POSITIONAL_ONLY)


def bind_value_fn(value_fn: Callable | None, extra_args: dict[str, Any], owner: str) -> Callable:
    """``params -> loss``: ``value_fn`` with the extra arguments it names (batch data) bound.

    Extra arguments that ``value_fn`` does not take are left for the other links of a
    chain; a ``value_fn`` with ``**kwargs`` receives all of them.
    """
    if value_fn is None:
        raise ValueError(
            f"{owner} needs the loss: pass value_fn= (a function params -> scalar loss) to "
            "update, e.g. opt.update(grads, state, params, value_fn=loss_fn). Batch data "
            "that the loss takes as keyword arguments can be passed to update as well."
        )
    if not callable(value_fn):
        raise TypeError(f"{owner}: value_fn must be callable, got {type(value_fn).__name__}.")
    takes = _keyword_names(value_fn)
    names = set(extra_args) - _RESERVED
    if takes is not None:
        names &= takes
    return functools.partial(value_fn, **{name: extra_args[name] for name in names})


def check_extra_args(value_fn: Callable, extra_args: dict[str, Any], owner: str) -> None:
    """A ``TypeError`` for extra arguments that neither ``owner`` nor ``value_fn`` takes: a
    misspelt ``value=`` or ``grad=`` would otherwise be dropped without a word, and a
    solver would recompute them (or, for a batch, evaluate the loss without it)."""
    takes = _keyword_names(value_fn)
    if takes is None:
        return
    unknown = sorted(set(extra_args) - _RESERVED - takes)
    if unknown:
        valid = sorted(_RESERVED) + sorted(takes)
        raise TypeError(
            f"{owner}.update got unexpected keyword argument(s) {unknown}: neither it nor "
            f"value_fn takes them. The valid ones are {valid} (value, grad and value_fn, "
            "then the keyword arguments of value_fn); check the spelling."
        )


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

    ``None`` leaves pass through, as in optax: a ``None`` parameter stays ``None``
    whatever its update. A ``None`` update leaves its parameter as it is, as
    ``equinox.apply_updates`` does, so a whole equinox Module (with static fields and
    non-array fields such as activation functions) takes the updates computed for
    ``eqx.filter(model, eqx.is_array)``.
    """
    tree.check_same_structure(params, updates, "params", "updates", none_is_leaf=True)
    tree.check_float_params(jax.tree.map(_kept_if_updated, params, updates, is_leaf=tree.is_none))
    return jax.tree.map(_apply_one, params, updates, is_leaf=tree.is_none)


def _kept_if_updated(p, u):
    return None if u is None else p


def _apply_one(p, u):
    if p is None or u is None:
        return p
    return jnp.asarray(p + u).astype(jnp.result_type(p))
