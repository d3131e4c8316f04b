"""Optimistic gradient descent: extrapolate with the last gradient (min-max games).

Arguments, defaults and formulas are optax's (0.2.8).
"""

from __future__ import annotations

from jaxgd.core.base import GradientTransformation, chain
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.transforms.optimistic import scale_by_optimistic_gradient
from jaxgd.transforms.scaling import ScalarOrSchedule, scale_by_learning_rate


@inject_hyperparams
def optimistic_gradient_descent(
    learning_rate: ScalarOrSchedule, alpha=1.0, beta=1.0
) -> GradientTransformation:
    """Optimistic gradient descent (Mokhtari et al., 2019): extrapolate with the last gradient.

    It converges in the last iterate on min-max games, where plain simultaneous gradient
    descent cycles.

    .. math::
       p_{t+1} = p_t - \\eta_t\\,\\big((\\alpha + \\beta)\\,g_t - \\beta\\,g_{t-1}\\big),
       \\qquad g_0 := g_1

    Args:
      learning_rate: :math:`\\eta_t`, or a schedule.
      alpha: :math:`\\alpha`, the weight of the gradient step.
      beta: :math:`\\beta`, the weight of the extrapolation (negative momentum).

    Reference:
      Mokhtari, Ozdaglar & Pattathil, `A Unified Analysis of Extra-gradient and Optimistic
      Gradient Methods for Saddle Point Problems <https://arxiv.org/abs/1901.08511>`_, 2019.
    """
    return chain(
        scale_by_optimistic_gradient(alpha=alpha, beta=beta),
        scale_by_learning_rate(learning_rate),
    )
