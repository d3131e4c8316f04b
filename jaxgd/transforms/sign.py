"""The sign of the gradient: every coordinate moves by the same amount."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgd.core.base import GradientTransformation, flatten_invariant, init_empty_state


def scale_by_sign() -> GradientTransformation:
    """Keep only the sign of each coordinate: :math:`u \\leftarrow \\operatorname{sign}(g)`
    (0 where :math:`g = 0`).

    Reference:
      Bernstein et al., `signSGD: Compressed Optimisation for Non-Convex Problems
      <https://arxiv.org/abs/1802.04434>`_, 2018.
    """

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        return jax.tree.map(jnp.sign, updates), state

    return flatten_invariant(GradientTransformation(init_empty_state, update))
