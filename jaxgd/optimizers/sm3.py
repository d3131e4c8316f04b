"""SM3: AdaGrad whose accumulators are shared along each axis (sublinear memory).

Arguments, defaults and formulas are optax's (0.2.8), except where the docstring says so.
"""

from __future__ import annotations

from jaxgd.core.base import GradientTransformation, chain
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxgd.transforms.sm3 import scale_by_sm3


@inject_hyperparams
def sm3(learning_rate: ScalarOrSchedule, momentum=0.9) -> GradientTransformation:
    """SM3 (Anil et al., 2019): AdaGrad whose accumulators are shared along each axis.

    .. math::
       a_t(i) = g_t(i)^2 + \\min_r \\mu^{(r)}_{t-1}(i_r), \\quad
       \\mu^{(r)}_t(j) = \\max_{i:\\,i_r = j} a_t(i), \\\\
       \\nu_t = \\beta\\,\\nu_{t-1} + (1 - \\beta)\\,\\frac{g_t}{\\sqrt{a_t + 10^{-8}}},
       \\quad p_{t+1} = p_t - \\eta_t\\,\\nu_t

    For an :math:`n \\times m` matrix the memory is :math:`n + m` numbers instead of
    AdaGrad's :math:`nm` (see :func:`jaxgd.transforms.sm3.scale_by_sm3`).

    Differs from optax 0.2.8 on purpose: optax raises ``IndexError`` on scalar parameters;
    here they get plain AdaGrad. ``learning_rate`` may also be a schedule.

    Args:
      learning_rate: :math:`\\eta_t`, or a schedule.
      momentum: :math:`\\beta \\in [0, 1)`, the EMA decay of the scaled steps.

    Reference:
      Anil, Gupta, Koren & Singer, `Memory-Efficient Adaptive Optimization
      <https://arxiv.org/abs/1901.11150>`_, 2019.
    """
    return chain(scale_by_sm3(b1=momentum), scale_by_learning_rate(learning_rate))
