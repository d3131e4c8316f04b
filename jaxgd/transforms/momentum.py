"""Momentum: an exponentially decaying trace of past updates."""

from __future__ import annotations

from typing import NamedTuple

from jaxgd.core import checks, tree
from jaxgd.core.base import GradientTransformation, Updates, flatten_invariant


class TraceState(NamedTuple):
    """The velocity :math:`v`."""

    trace: Updates


def trace(decay=0.9, nesterov: bool = False) -> GradientTransformation:
    """Heavy-ball or Nesterov momentum.

    .. math::
       v_t = g_t + \\mu\\,v_{t-1}, \\qquad
       u_t = \\begin{cases} g_t + \\mu\\,v_t & \\text{Nesterov} \\\\ v_t & \\text{otherwise}
       \\end{cases}

    Args:
      decay: the momentum :math:`\\mu \\in [0, 1)`.
      nesterov: look ahead along the velocity (Sutskever et al., 2013).
    """
    checks.decay_rate("decay", decay)

    def rule(g, v):
        v = g + decay * v
        return (g + decay * v if nesterov else v), v

    def init(params):
        return TraceState(tree.zeros_like(params))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        updates, velocity = tree.map_rule(rule, updates, state.trace, names=("trace",))
        return updates, TraceState(velocity)

    return flatten_invariant(GradientTransformation(init, update))
