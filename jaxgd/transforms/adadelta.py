"""Adadelta: steps whose size is set by past steps, not by a learning rate."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from jaxgd.core import checks, numerics, tree
from jaxgd.core.base import GradientTransformation, Updates, flatten_invariant


class ScaleByAdaDeltaState(NamedTuple):
    """Moving averages of squared gradients :math:`E[g^2]` and squared steps
    :math:`E[\\Delta x^2]`."""

    e_g: Updates
    e_x: Updates


def scale_by_adadelta(rho=0.9, eps=1e-6) -> GradientTransformation:
    """Adadelta scaling (Zeiler, 2012): the ratio of two RMS values gives the step its
    units, so no learning rate is needed.

    .. math::
       E[g^2]_t = \\rho E[g^2]_{t-1} + (1 - \\rho) g_t^2, \\quad
       u_t = \\frac{\\sqrt{E[\\Delta x^2]_{t-1} + \\epsilon}}{\\sqrt{E[g^2]_t + \\epsilon}}\\,g_t,
       \\\\
       E[\\Delta x^2]_t = \\rho E[\\Delta x^2]_{t-1} + (1 - \\rho) u_t^2

    :math:`u_t` points *up* the gradient, like every ``scale_by_*`` block: follow it with
    :func:`jaxgd.scale_by_learning_rate` (or use :func:`jaxgd.adadelta`) to descend.

    Args:
      rho: :math:`\\rho \\in [0, 1)`.
      eps: :math:`\\epsilon > 0`; it also sets the size of the first steps,
        :math:`\\sqrt{\\epsilon}` per coordinate at most.
    """
    checks.decay_rate("rho", rho)
    checks.positive("eps", eps)

    def init(params):
        return ScaleByAdaDeltaState(tree.zeros_like(params), tree.zeros_like(params))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args

        def rule(g, e_g, e_x):
            e_g = (1 - rho) * numerics.abs_sq(g) + rho * e_g
            u = jnp.sqrt(e_x + eps) / jnp.sqrt(e_g + eps) * g
            e_x = (1 - rho) * numerics.abs_sq(u) + rho * e_x
            return u, e_g, e_x

        updates, e_g, e_x = tree.map_rule(
            rule, updates, state.e_g, state.e_x, names=("e_g", "e_x")
        )
        return updates, ScaleByAdaDeltaState(e_g, e_x)

    return flatten_invariant(GradientTransformation(init, update))
