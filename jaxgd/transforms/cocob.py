"""COCOB: continuous coin betting, a learning-rate-free rule per coordinate."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import checks, tree
from jaxgd.core.base import GradientTransformation, Updates, flatten_invariant


class COCOBState(NamedTuple):
    """COCOB's state (optax's field names), one entry per coordinate.

    Attributes:
      init_particles: :math:`x_0`, the params at ``init``.
      cumulative_gradients: :math:`\\theta = -\\sum g`.
      scale: :math:`L`, the largest :math:`|g|` seen (at least :math:`\\epsilon`).
      subgradients: :math:`G = \\sum |g|`.
      reward: :math:`R`, the wealth won so far.
    """

    init_particles: Updates
    cumulative_gradients: Updates
    scale: Updates
    subgradients: Updates
    reward: Updates


def scale_by_cocob(alpha=100.0, eps=1e-8) -> GradientTransformation:
    """COCOB-Backprop (Orabona & Tommasi, 2017, Algorithm 2), elementwise.

    .. math::
       L_t = \\max(L_{t-1}, |g_t|), \\quad G_t = G_{t-1} + |g_t|, \\quad
       R_t = \\max\\big(R_{t-1} - g_t (x_t - x_0), 0\\big), \\quad
       \\theta_t = \\theta_{t-1} - g_t, \\\\
       x_{t+1} = x_0 + \\frac{\\theta_t}{L_t \\max(G_t + L_t, \\alpha L_t)}\\,(L_t + R_t),
       \\qquad u_t = x_{t+1} - x_t

    with :math:`L_0 = \\epsilon` and :math:`G_0 = R_0 = \\theta_0 = 0`. The update already
    descends: do not follow it with a learning rate that flips its sign (the
    :func:`jaxgd.cocob` alias scales the *gradients* by its learning rate instead).

    Args:
      alpha: :math:`\\alpha > 0`, bounds the fraction of the wealth bet early on.
      eps: :math:`\\epsilon > 0`, the initial :math:`L` (keeps the first division finite).

    Reference:
      Orabona & Tommasi, `Training Deep Networks without Learning Rates Through Coin
      Betting <https://arxiv.org/abs/1705.07795>`_, 2017.
    """
    checks.positive("alpha", alpha)
    checks.positive("eps", eps)

    def rule(g, p, p0, theta, big_l, big_g, reward):
        big_l = jnp.maximum(big_l, jnp.abs(g))
        big_g = big_g + jnp.abs(g)
        reward = jnp.maximum(reward - g * (p - p0), 0)
        theta = theta - g
        target = p0 + theta / (big_l * jnp.maximum(big_g + big_l, alpha * big_l)) * (big_l + reward)
        return -p + target, p, p0, theta, big_l, big_g, reward

    def init(params):
        return COCOBState(jax.tree.map(jnp.copy, params), tree.zeros_like(params),
                          tree.full_like(params, eps), tree.zeros_like(params),
                          tree.zeros_like(params))

    def update(updates, state, params=None, **extra_args):
        del extra_args
        checks.params_given("scale_by_cocob", params)
        updates, _, *new_state = tree.map_rule(
            rule, updates, params, *state,
            names=("params", "init_particles", "cumulative_gradients", "scale", "subgradients",
                   "reward"))
        return updates, COCOBState(*new_state)

    return flatten_invariant(GradientTransformation(init, update))
