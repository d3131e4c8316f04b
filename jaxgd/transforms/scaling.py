"""Scaling by a constant, a learning rate or a schedule."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import checks, numerics
from jaxgd.core.base import GradientTransformation, flatten_invariant, init_empty_state

ScalarOrSchedule = float | jax.Array | Callable[[jax.Array], jax.Array]


def scale(step_size) -> GradientTransformation:
    """Multiply updates by a constant: :math:`u \\leftarrow s\\,g`.

    Args:
      step_size: the factor :math:`s` (a float or a JAX scalar, possibly traced).
    """
    checks.finite("step_size", step_size)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        return jax.tree.map(lambda g: (step_size * g).astype(g.dtype), updates), state

    return flatten_invariant(GradientTransformation(init_empty_state, update))


class ScaleByScheduleState(NamedTuple):
    """The step count fed to the schedule."""

    count: jax.Array


def scale_by_schedule(step_size_fn: Callable[[jax.Array], jax.Array]) -> GradientTransformation:
    """Multiply updates by a scheduled factor: :math:`u_t \\leftarrow s(t)\\,g_t`, with
    :math:`t = 0, 1, \\dots` counting calls of ``update``."""

    def init(params):
        del params
        return ScaleByScheduleState(numerics.zero_count())

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        step_size = step_size_fn(state.count)
        updates = jax.tree.map(lambda g: jnp.asarray(step_size, g.dtype) * g, updates)
        return updates, ScaleByScheduleState(numerics.safe_increment(state.count))

    return flatten_invariant(GradientTransformation(init, update))


def scale_by_learning_rate(learning_rate: ScalarOrSchedule, *, flip_sign: bool = True):
    """Scale by the learning rate, turning a direction into a descent step:
    :math:`u \\leftarrow -\\eta\\,g` (or :math:`-\\eta(t)\\,g` for a schedule).

    Args:
      learning_rate: a float ≥ 0, a JAX scalar, or a schedule ``step -> value``.
      flip_sign: negate, so that adding the update descends (the usual case).
    """
    checks.learning_rate(learning_rate)
    sign = -1 if flip_sign else 1
    if callable(learning_rate):
        return scale_by_schedule(lambda count: sign * learning_rate(count))
    return scale(sign * learning_rate)
