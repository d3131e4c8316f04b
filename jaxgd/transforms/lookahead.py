"""Lookahead: k fast steps forward, one slow step back towards where they led."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core import checks, numerics, tree
from jaxgd.core.base import (
    GradientTransformation,
    OptState,
    Params,
    flatten_invariant,
    is_flatten_invariant,
    update_with_extra_args,
)
from jaxgd.core.hyperparam_state import is_inject_state


class LookaheadState(NamedTuple):
    """State of :func:`lookahead`.

    Attributes:
      fast_state: the fast optimizer's state.
      steps_since_sync: fast steps since the last synchronisation (optax's field).
      slow: the slow parameters :math:`\\phi`, shaped like the params (optax keeps them
        in its ``LookaheadParams``; see :func:`lookahead`).
    """

    fast_state: OptState
    steps_since_sync: jax.Array
    slow: Params


def lookahead(
    fast_optimizer: GradientTransformation,
    sync_period: int,
    slow_step_size,
    reset_state: bool = False,
) -> GradientTransformation:
    """Lookahead (Zhang et al., 2019) around ``fast_optimizer``.

    The params :math:`\\theta` take the fast optimizer's steps; every ``sync_period``
    (:math:`k`) steps the slow params :math:`\\phi` move part of the way to them and the
    fast params restart from there:

    .. math::
       \\theta_{t+1} = \\theta_t + u_t \\text{ (the fast optimizer's update)}, \\\\
       \\text{every } k \\text{ steps:} \\quad
       \\phi \\leftarrow \\phi + \\alpha\\,(\\theta_{t+1} - \\phi), \\quad
       \\theta_{t+1} \\leftarrow \\phi

    Both happen in one update, so the updates returned must be applied unchanged.

    Convention (differs from optax in layout, not in numbers): the params are the fast
    params, a plain tree, so gradients, :func:`jaxgd.fit` and :func:`jaxgd.sweep` work
    as with any optimizer; the slow params live in the state, in ``state.slow``
    (:func:`slow_params` finds them in a state of any nesting). optax instead takes a
    ``LookaheadParams(fast, slow)`` pair as params; its ``params.fast`` and
    ``params.slow`` follow the same trajectories as these params and ``state.slow``.
    Evaluate on the slow params: they are the ones the paper reports.

    Args:
      fast_optimizer: the inner optimizer.
      sync_period: :math:`k \\ge 1`, fast steps per synchronisation.
      slow_step_size: :math:`\\alpha \\in [0, 1]` (the paper uses 0.5).
      reset_state: reset the fast optimizer's state (with its ``init`` on the current
        params) at each synchronisation. The values in ``state.hyperparams`` of jaxgd
        optimizers are kept (optax resets them to the values the optimizer was built
        with, which undoes a :func:`jaxgd.set_hyperparams`).

    Example:
      >>> import jax, jax.numpy as jnp, jaxgd
      >>> opt = jaxgd.lookahead(jaxgd.sgd(0.1), sync_period=2, slow_step_size=0.5)
      >>> x = jnp.ones(2)
      >>> state = opt.init(x)
      >>> for _ in range(2):
      ...     updates, state = opt.update(x, state, x)  # gradient of |x|^2 / 2
      ...     x = jaxgd.apply_updates(x, updates)
      >>> x, jaxgd.slow_params(state)  # 1 -> 0.9 -> 0.81, then halfway back: 0.905
      (Array([0.905, 0.905], dtype=float32), Array([0.905, 0.905], dtype=float32))

    Reference:
      Zhang et al., `Lookahead Optimizer: k steps forward, 1 step back
      <https://arxiv.org/abs/1907.08610>`_, NeurIPS 2019.
    """
    if not (callable(getattr(fast_optimizer, "init", None))
            and callable(getattr(fast_optimizer, "update", None))):
        raise TypeError(f"fast_optimizer must be a gradient transformation (with init and "
                        f"update), got {type(fast_optimizer).__name__}.")
    _check_sync_period(sync_period)
    checks.finite("slow_step_size", slow_step_size)
    alpha = checks.concrete(slow_step_size)
    if alpha is not None and not 0 <= alpha <= 1:
        raise ValueError(f"slow_step_size must be in [0, 1], got {slow_step_size!r}.")
    fast_update = update_with_extra_args(fast_optimizer)

    def init(params):
        tree.check_float_params(params)
        # A copy, not the params' own buffers: a donated state must not alias them.
        return LookaheadState(fast_optimizer.init(params), numerics.zero_count(),
                              jax.tree.map(jnp.copy, params))

    def update(updates, state, params=None, **extra_args):
        checks.params_given("lookahead", params, " (the fast params)")
        tree.check_same_structure(params, state.slow, "params", "state.slow")
        updates, fast_state = fast_update(updates, state.fast_state, params, **extra_args)
        sync = state.steps_since_sync == sync_period - 1

        def rule(u, slow, fast):
            # Where the last fast step lands, relative to the slow params.
            gap = fast + u - slow
            return u - sync * (1 - slow_step_size) * gap, slow + sync * slow_step_size * gap, fast

        updates, slow, _ = tree.map_rule(rule, updates, state.slow, params,
                                         names=("state.slow", "params"))
        if reset_state:
            fast_state = _reset_where(sync, fast_state, fast_optimizer.init(params))
        steps = (state.steps_since_sync + 1) % sync_period
        return updates, LookaheadState(fast_state, steps.astype(jnp.int32), slow)

    made = GradientTransformation(init, update)
    return flatten_invariant(made) if is_flatten_invariant(fast_optimizer) else made


def _check_sync_period(sync_period) -> None:
    """An int >= 1; a traced value (a swept one) passes unchecked."""
    if isinstance(sync_period, jax.core.Tracer):
        return
    integer = isinstance(sync_period, (int, np.integer)) or (
        isinstance(sync_period, jax.Array) and jnp.issubdtype(sync_period.dtype, jnp.integer)
        and sync_period.ndim == 0)
    if isinstance(sync_period, bool) or not integer or sync_period < 1:
        raise ValueError(f"sync_period must be an int >= 1, got {sync_period!r}.")


def _reset_where(sync: jax.Array, state: OptState, fresh: OptState) -> OptState:
    """``fresh`` where ``sync``, else ``state``, leaf by leaf; the hyperparameters held
    by jaxgd optimizers are kept from ``state`` (they are settings, not progress)."""
    old, treedef = jax.tree.flatten(state, is_leaf=is_inject_state)
    new = treedef.flatten_up_to(fresh)
    kept = [f._replace(hyperparams=o.hyperparams) if is_inject_state(o) and
            hasattr(f, "_replace") else f for o, f in zip(old, new, strict=True)]
    return jax.tree.map(lambda o, f: jnp.where(sync, f, o), state,
                        treedef.unflatten(kept))


def slow_params(opt_state: OptState) -> Any:
    """The slow params of the :func:`lookahead` state inside ``opt_state`` (its own,
    or one nested in a chain, an ``inject_hyperparams`` state, ...): what to evaluate.

    Raises a ``ValueError`` when ``opt_state`` holds no lookahead state, or several.
    """
    found = [s for s in jax.tree.leaves(opt_state, is_leaf=_is_lookahead_state)
             if _is_lookahead_state(s)]
    if len(found) != 1:
        raise ValueError(f"slow_params needs a state with exactly one lookahead state in "
                         f"it, this one holds {len(found)}.")
    return found[0].slow


def _is_lookahead_state(x) -> bool:
    return isinstance(x, LookaheadState)
