"""MADGRAD: momentumized, adaptive, dual-averaged gradient steps."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import checks, numerics, tree
from jaxgd.core.base import GradientTransformation, Params, Updates, flatten_invariant
from jaxgd.transforms.scaling import ScalarOrSchedule


class MadgradState(NamedTuple):
    """Step count, the weighted sums of squared gradients :math:`G` and of gradients
    :math:`s`, and the starting point :math:`x_0` (optax's layout)."""

    count: jax.Array
    grad_sum_sq: Updates
    s: Updates
    x0: Params


def scale_by_madgrad(
    learning_rate: ScalarOrSchedule, momentum=0.9, eps=1e-6
) -> GradientTransformation:
    """MADGRAD (Defazio & Jelassi, 2021): a dual-averaging step from the starting point.

    With :math:`k = 0, 1, \\dots` counting updates and :math:`G_0 = s_0 = 0`:

    .. math::
       \\lambda_k = (\\eta_k + \\epsilon)\\sqrt{k + 1}, \\quad
       G_{k+1} = G_k + \\lambda_k g_k^2, \\quad s_{k+1} = s_k + \\lambda_k g_k, \\\\
       \\sigma_{k+1} = G_{k+1}^{1/3} + \\epsilon, \\quad
       z_{k+1} = x_0 - \\frac{s_{k+1}}{\\sigma_{k+1}}, \\quad
       x_{k+1} = (1 - c)\\,z_{k+1} + c\\,x_k, \\quad u_k = x_{k+1} - x_k

    The update already holds the learning rate and the sign (it moves the params to
    :math:`x_{k+1}`), as optax's does; do not chain a learning-rate scaling after it.
    :math:`\\epsilon` is added to :math:`\\eta` too, as in the authors' PyTorch code.
    The update is computed as :math:`(1 - c)((x_0 - x_k) - s_{k+1} / \\sigma_{k+1})`,
    not as optax's :math:`x_{k+1} - x_k`, which loses the digits of a step that lie
    below the params' rounding: the two agree to a float32 rounding of the *params*, and
    the trajectories to float32 precision.
    ``update`` needs the params, and the state keeps :math:`x_0` (the params given to
    ``init``).

    Args:
      learning_rate: :math:`\\eta_k \\ge 0`, or a schedule of the update count.
      momentum: :math:`c \\in [0, 1)`, the weight of the previous iterate.
      eps: :math:`\\epsilon > 0`.

    Reference:
      Defazio & Jelassi, `Adaptivity without Compromise: A Momentumized, Adaptive, Dual
      Averaged Gradient Method for Stochastic Optimization
      <https://arxiv.org/abs/2101.11075>`_, 2021.
    """
    checks.learning_rate(learning_rate)
    checks.decay_rate("momentum", momentum)
    checks.positive("eps", eps)

    def init(params):
        zeros = tree.zeros_like(params)  # checks the params are floating point
        # A copy, not the params' own buffers: a donated state must not alias them.
        return MadgradState(numerics.zero_count(), zeros, tree.zeros_like(params),
                            jax.tree.map(jnp.copy, params))

    def update(updates, state, params=None, **extra_args):
        del extra_args
        checks.params_given("scale_by_madgrad", params,
                            " (its update moves them towards a point made from x0)")
        rate = learning_rate(state.count) if callable(learning_rate) else learning_rate
        weight = (rate + eps) * jnp.sqrt(state.count + 1)

        def rule(g, grad_sum_sq, s, x0, x):
            grad_sum_sq = grad_sum_sq + weight * numerics.abs_sq(g)
            s = s + weight * g
            # x_{k+1} - x_k as (1 - c)((x0 - x_k) - s / sigma): optax forms x_{k+1} and
            # subtracts x_k, which rounds a small step to the precision of large params.
            step = (1 - momentum) * ((x0 - x) - s / (jnp.cbrt(grad_sum_sq) + eps))
            return step, grad_sum_sq, s, x0, x

        updates, grad_sum_sq, s, _, _ = tree.map_rule(
            rule, updates, state.grad_sum_sq, state.s, state.x0, params,
            names=("grad_sum_sq", "s", "x0", "params"))
        return updates, MadgradState(numerics.safe_increment(state.count), grad_sum_sq, s,
                                     state.x0)

    return flatten_invariant(GradientTransformation(init, update))
