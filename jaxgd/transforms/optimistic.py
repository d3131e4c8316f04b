"""Optimistic gradient: extrapolate with the previous gradient (for min-max games)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import checks, tree
from jaxgd.core.base import GradientTransformation, Updates, flatten_invariant


class ScaleByOptimisticGradientState(NamedTuple):
    """Whether no gradient has been seen yet, and the previous gradient."""

    is_initial_step: jax.Array
    previous_gradient: Updates


def scale_by_optimistic_gradient(alpha=1.0, beta=1.0) -> GradientTransformation:
    """Generalised optimistic gradient (Mokhtari et al., 2019).

    .. math:: u_t = (\\alpha + \\beta)\\,g_t - \\beta\\,g_{t-1}, \\qquad g_0 := g_1

    At the first step there is no previous gradient; using :math:`g_1` itself makes the
    first update :math:`\\alpha g_1`, not :math:`(\\alpha + \\beta) g_1`.

    Args:
      alpha: :math:`\\alpha`, the weight of the plain gradient step.
      beta: :math:`\\beta`, the weight of the extrapolation (negative momentum).

    Reference:
      Mokhtari, Ozdaglar & Pattathil, `A Unified Analysis of Extra-gradient and Optimistic
      Gradient Methods for Saddle Point Problems <https://arxiv.org/abs/1901.08511>`_, 2019.
    """
    checks.finite("alpha", alpha)
    checks.finite("beta", beta)

    def init(params):
        return ScaleByOptimisticGradientState(jnp.array(True), tree.zeros_like(params))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args

        def rule(g, previous):
            previous = jnp.where(state.is_initial_step, g, previous)
            return (alpha + beta) * g - beta * previous, g

        updates, previous = tree.map_rule(
            rule, updates, state.previous_gradient, names=("previous_gradient",)
        )
        return updates, ScaleByOptimisticGradientState(jnp.array(False), previous)

    return flatten_invariant(GradientTransformation(init, update))
