"""Gradient descent's momentum: an exponentially decaying trace of past updates (heavy-ball
or Nesterov)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jaxgd.core import checks, numerics, tree
from jaxgd.core.base import GradientTransformation, Updates, flatten_invariant


class TraceState(NamedTuple):
    """The velocity :math:`v`."""

    trace: Updates


def trace(decay=0.9, nesterov: bool = False, accumulator_dtype=None) -> GradientTransformation:
    """Heavy-ball or Nesterov momentum.

    .. math::
       v_t = g_t + \\mu\\,v_{t-1}, \\qquad
       u_t = \\begin{cases} g_t + \\mu\\,v_t & \\text{Nesterov} \\\\ v_t & \\text{otherwise}
       \\end{cases}

    Args:
      decay: the momentum :math:`\\mu \\in [0, 1]`; 1 keeps the plain sum of the updates.
      nesterov: look ahead along the velocity (Sutskever et al., 2013).
      accumulator_dtype: the dtype :math:`v` is stored in (e.g. ``jnp.bfloat16`` to halve
        its memory), or ``None`` for each parameter's dtype. As in optax, the update is
        computed before :math:`v` is rounded to it, in the wider of the two dtypes.
    """
    checks.non_negative("decay", decay)
    value = checks.concrete(decay)
    if value is not None and np.any(value > 1):
        shown = value.item() if value.size == 1 else value
        raise ValueError(f"decay must be in [0, 1], got {shown!r}.")
    accumulator_dtype = checks.state_dtype("accumulator_dtype", accumulator_dtype)

    def rule(g, v):
        v = g + decay * numerics.widened(v, g)
        return (g + decay * v if nesterov else v), v

    def init(params):
        return TraceState(tree.zeros_like(params, accumulator_dtype))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        updates, velocity = tree.map_rule(rule, updates, state.trace, names=("trace",))
        return updates, TraceState(velocity)

    return flatten_invariant(GradientTransformation(init, update))
