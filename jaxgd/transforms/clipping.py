"""Clipping: bound each coordinate, or the norm of the whole update."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgd.core import checks, tree
from jaxgd.core.base import GradientTransformation, flatten_invariant, init_empty_state


def clip(max_delta) -> GradientTransformation:
    """Clip every coordinate: :math:`u \\leftarrow \\operatorname{clip}(g, -\\delta, \\delta)`.

    Args:
      max_delta: :math:`\\delta \\ge 0`.
    """
    checks.non_negative("max_delta", max_delta)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        return jax.tree.map(lambda g: jnp.clip(g, -max_delta, max_delta), updates), state

    return flatten_invariant(GradientTransformation(init_empty_state, update))


def clip_by_global_norm(max_norm) -> GradientTransformation:
    """Rescale the whole update when its global norm exceeds a bound.

    .. math::
       u \\leftarrow \\begin{cases} g & \\|g\\| < c \\\\ c\\,g / \\|g\\| & \\text{otherwise}
       \\end{cases}, \\qquad \\|g\\| = \\sqrt{\\textstyle\\sum_i \\|g_i\\|^2}

    Args:
      max_norm: :math:`c > 0`.
    """
    checks.positive("max_norm", max_norm)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        norm = tree.global_norm(updates)
        keep = norm < max_norm

        def rescale(g):
            return jnp.where(keep, g, (g / norm.astype(g.dtype)) * max_norm).astype(g.dtype)

        return jax.tree.map(rescale, updates), state

    return flatten_invariant(GradientTransformation(init_empty_state, update))
