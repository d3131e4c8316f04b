"""Exponential moving average of the updates."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import checks, numerics, tree
from jaxgd.core.base import GradientTransformation, Updates, flatten_invariant


class EmaState(NamedTuple):
    """Step count and the average :math:`m`."""

    count: jax.Array
    ema: Updates


def ema(decay, debias: bool = True, accumulator_dtype=None) -> GradientTransformation:
    """Exponential moving average: :math:`m_t = \\beta m_{t-1} + (1 - \\beta) g_t`,
    :math:`u_t = m_t` (or :math:`m_t / (1 - \\beta^t)` when ``debias``).

    Unlike :func:`jaxgd.trace` (:math:`v_t = g_t + \\mu v_{t-1}`), the new update is weighted
    by :math:`1 - \\beta`, so the average has the scale of the updates.

    Args:
      decay: :math:`\\beta \\in [0, 1)`.
      debias: divide by :math:`1 - \\beta^t`, as Adam does for its zero start.
      accumulator_dtype: dtype of :math:`m` (e.g. ``jnp.float32`` for bf16 params); ``None``
        keeps each parameter's dtype.
    """
    checks.decay_rate("decay", decay)

    def init(params):
        zeros = tree.zeros_like(params)
        if accumulator_dtype is not None:
            zeros = jax.tree.map(lambda z: z.astype(accumulator_dtype), zeros)
        return EmaState(numerics.zero_count(), zeros)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = numerics.safe_increment(state.count)
        correction = numerics.bias_correction(decay, count) if debias else 1

        def rule(g, m):
            m = (1 - decay) * g + decay * m
            return jnp.asarray(m / correction), m

        updates, average = tree.map_rule(rule, updates, state.ema, names=("ema",))
        return updates, EmaState(count, average)

    return flatten_invariant(GradientTransformation(init, update))
