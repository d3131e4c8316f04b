"""Reduce the step when the loss stops improving (PyTorch's ``ReduceLROnPlateau``)."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import checks, numerics
from jaxgd.core.base import GradientTransformation, flatten_invariant


class ReduceLROnPlateauState(NamedTuple):
    """State of :func:`reduce_on_plateau` (optax's fields).

    Attributes:
      scale: the factor the updates are multiplied by (1 at the start).
      best_value: the best mean loss seen so far.
      plateau_count: rounds without improvement since the last improvement or reduction.
      cooldown_count: rounds left before plateaus are counted again.
      count: losses accumulated in the current round.
      avg_value: their mean.
    """

    scale: jax.Array
    best_value: jax.Array
    plateau_count: jax.Array
    cooldown_count: jax.Array
    count: jax.Array
    avg_value: jax.Array


def _float_dtypes(params) -> list:
    return [jnp.result_type(x) for x in jax.tree.leaves(params)] or [jnp.result_type(float)]


def reduce_on_plateau(
    factor=0.1,
    patience=10,
    rtol=1e-4,
    atol=0.0,
    cooldown=0,
    accumulation_size=1,
    min_scale=0.0,
) -> GradientTransformation:
    """Multiply the updates by a scale that shrinks by ``factor`` whenever the loss has
    not improved for ``patience`` rounds.

    The loss comes as an extra argument: ``update(updates, state, params, value=loss)``
    (:func:`jaxgd.fit` passes it). A round is ``accumulation_size`` updates; at its end
    the mean loss :math:`\\bar f` of the round is compared with the best so far
    :math:`f^\\star`:

    .. math::
       \\text{improved} \\iff \\bar f < (1 - r_{tol})\\,f^\\star - a_{tol}, \\qquad
       s \\leftarrow \\max(\\gamma\\,s, s_{min}) \\text{ after } P
       \\text{ rounds in a row without improvement,}

    then ``cooldown`` rounds pass before plateaus are counted again. The updates are
    :math:`u = s\\,g`. Chain it after an optimizer (``jaxgd.chain(jaxgd.adam(1e-3),
    jaxgd.reduce_on_plateau())``): the learning rate becomes :math:`s\\,\\eta`.

    Args:
      factor: :math:`\\gamma \\in (0, 1)`, the reduction.
      patience: :math:`P`, rounds without improvement before a reduction.
      rtol: :math:`r_{tol} \\in [0, 1]`, the relative improvement needed.
      atol: :math:`a_{tol} \\ge 0`, the absolute improvement needed (``rtol`` and
        ``atol`` cannot both be 0).
      cooldown: rounds after a reduction during which plateaus are not counted.
      accumulation_size: updates per round, whose losses are averaged (1 for a
        validation or full-batch loss; more for noisy mini-batch losses).
      min_scale: :math:`s_{min} \\ge 0`, the scale never goes below it.

    Example:
      >>> import jax.numpy as jnp, jaxgd
      >>> opt = jaxgd.chain(jaxgd.sgd(0.1), jaxgd.reduce_on_plateau(0.5, patience=1))
      >>> x = jnp.ones(2)
      >>> state = opt.init(x)
      >>> for _ in range(3):  # the loss never improves on its first value
      ...     updates, state = opt.update(x, state, x, value=1.0)
      >>> float(state[1].scale)
      0.25
    """
    checks.finite("factor", factor)
    factor_value, rtol_value, atol_value = map(checks.concrete, (factor, rtol, atol))
    if factor_value is not None and not 0 < factor_value < 1:
        raise ValueError(f"factor must be in (0, 1), got {factor!r}.")
    checks.non_negative("rtol", rtol)
    checks.non_negative("atol", atol)
    if rtol_value is not None and rtol_value > 1:
        raise ValueError(f"rtol must be at most 1, got {rtol!r}.")
    if rtol_value is not None and atol_value is not None and rtol_value == atol_value == 0:
        raise ValueError("rtol and atol cannot both be 0: give one a positive value (the "
                         "improvement a new best loss must make).")
    checks.non_negative("patience", patience)
    checks.non_negative("cooldown", cooldown)
    checks.positive("accumulation_size", accumulation_size)
    checks.non_negative("min_scale", min_scale)

    def init(params):
        dtypes = _float_dtypes(params)
        # the scale in the narrowest dtype, so that it does not widen bfloat16 updates
        lowest = min(dtypes, key=lambda d: jnp.dtype(d).itemsize)
        highest = functools.reduce(jnp.promote_types, dtypes)
        zero = numerics.zero_count()
        return ReduceLROnPlateauState(
            scale=jnp.ones([], lowest), best_value=jnp.asarray(jnp.inf, highest),
            plateau_count=zero, cooldown_count=zero, count=zero,
            avg_value=jnp.zeros([], highest))

    def end_of_round(state: ReduceLROnPlateauState) -> ReduceLROnPlateauState:
        improved = state.avg_value < (1 - rtol) * state.best_value - atol
        plateau = jnp.where(improved, 0, numerics.safe_increment(state.plateau_count))
        cooling = state.cooldown_count > 0
        reduce = ~cooling & (plateau == patience)
        scale = jnp.where(cooling, state.scale, jnp.maximum(
            jnp.where(reduce, state.scale * factor, state.scale), min_scale))
        cooldown_count = jnp.where(cooling, state.cooldown_count - 1,
                                   jnp.where(reduce, cooldown, 0))
        return ReduceLROnPlateauState(
            scale=scale.astype(state.scale.dtype),
            best_value=jnp.where(improved, state.avg_value, state.best_value),
            plateau_count=jnp.where(cooling | reduce, 0, plateau).astype(jnp.int32),
            cooldown_count=cooldown_count.astype(jnp.int32),
            count=numerics.zero_count(),
            avg_value=jnp.zeros_like(state.avg_value))

    def update(updates, state, params=None, *, value=None, **extra_args):
        del params, extra_args
        if value is None:
            raise ValueError(
                "reduce_on_plateau needs the loss: call update(updates, state, params, "
                "value=loss). jaxgd.fit passes it; under jaxgd.chain, pass value= to the "
                "chain's update.")
        if jnp.ndim(value) != 0:
            raise ValueError(f"reduce_on_plateau needs a scalar loss as value=, got shape "
                             f"{jnp.shape(value)}.")
        count = numerics.safe_increment(state.count)
        avg = state.avg_value
        avg = (state.count * avg + jnp.asarray(value).astype(avg.dtype)) / count
        state = state._replace(avg_value=avg.astype(state.avg_value.dtype), count=count)
        # Both sides run under vmap anyway (a batched cond is a select), and are scalars.
        state = jax.tree.map(lambda a, b: jnp.where(count == accumulation_size, a, b),
                             end_of_round(state), state)
        return jax.tree.map(lambda g: (state.scale * g).astype(g.dtype), updates), state

    return flatten_invariant(GradientTransformation(init, update))
