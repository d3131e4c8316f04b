"""Lion: the sign of an interpolated momentum, plus decoupled weight decay.

Arguments, defaults and formulas are optax's (0.2.8), except that ``weight_decay`` is a
number, not a schedule.
"""

from __future__ import annotations

from jaxgd.core.base import GradientTransformation, chain
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.transforms.lion import scale_by_lion
from jaxgd.transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxgd.transforms.weight_decay import Mask, add_decayed_weights


@inject_hyperparams
def lion(
    learning_rate: ScalarOrSchedule, b1=0.9, b2=0.99, mu_dtype=None, weight_decay=1e-3,
    mask: Mask = None,
) -> GradientTransformation:
    """Lion (Chen et al., 2023): the sign of an interpolated momentum, plus decoupled decay.

    .. math::
       p_{t+1} = p_t - \\eta\\left(\\mathrm{sign}(\\beta_1 m_{t-1} + (1 - \\beta_1) g_t)
                 + \\lambda p_t\\right), \\qquad
       m_t = \\beta_2 m_{t-1} + (1 - \\beta_2) g_t

    Every step has size :math:`\\eta` per coordinate: take :math:`\\eta` 3-10x smaller and
    :math:`\\lambda` 3-10x larger than for AdamW.

    Args:
      learning_rate: :math:`\\eta`, or a schedule.
      b1: :math:`\\beta_1 \\in [0, 1)`, for the step.
      b2: :math:`\\beta_2 \\in [0, 1)`, for the stored momentum.
      mu_dtype: the dtype the momentum is stored in (e.g. ``jnp.bfloat16``); default
        each parameter's.
      weight_decay: :math:`\\lambda \\ge 0`.
      mask: which leaves to decay, see :func:`jaxgd.add_decayed_weights`.
    """
    return chain(
        scale_by_lion(b1, b2, mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )

