"""Adam variants that change its moment estimates: RAdam (rectified), AdaBelief (the spread
of the gradient around its prediction) and Yogi (an additive second moment).

Arguments, defaults and formulas are optax's (0.2.8), in optax's order, except that
:func:`radam` computes its rectification accurately in float32 and stays finite where
optax's is NaN; see its docstring.
"""

from __future__ import annotations

from jaxgd.core.base import GradientTransformation, chain
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.transforms.adam_variants import scale_by_belief, scale_by_radam, scale_by_yogi
from jaxgd.transforms.scaling import ScalarOrSchedule, scale_by_learning_rate


@inject_hyperparams
def radam(
    learning_rate: ScalarOrSchedule, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
    threshold=5.0, *, nesterov: bool = False,
) -> GradientTransformation:
    """RAdam (Liu et al., 2020): Adam whose adaptive step is switched on, and rectified by
    :math:`r_t`, only once the variance of :math:`\\hat v_t` is tractable.

    .. math::
       p_{t+1} = p_t - \\eta\\,r_t\\,\\frac{\\hat m_t}{\\sqrt{\\hat v_t + \\epsilon_{root}}
                 + \\epsilon}\\ \\text{ if } \\rho_t \\ge \\text{threshold}, \\text{ else }
       p_{t+1} = p_t - \\eta\\,\\hat m_t

    See :func:`jaxgd.transforms.adam_variants.scale_by_radam` for :math:`\\rho_t` and :math:`r_t`,
    and for where it differs from optax: :math:`\\rho_t` without float32 cancellation (the
    first rectified steps differ from optax's by up to ~1%, and agree with optax run in
    float64 to 1e-5), and finite where optax's is NaN.

    Args:
      learning_rate: :math:`\\eta`, or a schedule.
      b1, b2, eps, eps_root: as :func:`jaxgd.adam`.
      threshold: the :math:`\\rho_t` from which the step is rectified.
      nesterov: Nesterov momentum.
    """
    return chain(
        scale_by_radam(b1, b2, eps, eps_root, threshold, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )


@inject_hyperparams
def adabelief(
    learning_rate: ScalarOrSchedule, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16,
    *, nesterov: bool = False,
) -> GradientTransformation:
    """AdaBelief (Zhuang et al., 2020): Adam dividing by the spread of :math:`g_t` around
    its prediction :math:`m_t`.

    .. math::
       s_t = \\beta_2 s_{t-1} + (1 - \\beta_2)(g_t - m_t)^2 + \\epsilon_{root}, \\qquad
       p_{t+1} = p_t - \\eta\\,\\frac{m_t / (1 - \\beta_1^t)}{\\sqrt{s_t / (1 - \\beta_2^t)}
                 + \\epsilon}

    Args:
      learning_rate: :math:`\\eta`, or a schedule.
      b1, b2: as :func:`jaxgd.adam`.
      eps, eps_root: optax's 1e-16 each (the paper: 1e-8 and 0).
      nesterov: Nesterov momentum.
    """
    return chain(
        scale_by_belief(b1, b2, eps, eps_root, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )


@inject_hyperparams
def yogi(
    learning_rate: ScalarOrSchedule, b1=0.9, b2=0.999, eps=1e-3
) -> GradientTransformation:
    """Yogi (Zaheer et al., 2018): Adam with an additive second-moment update.

    .. math::
       v_t = v_{t-1} - (1 - \\beta_2)\\,\\mathrm{sign}(v_{t-1} - g_t^2)\\, g_t^2, \\qquad
       p_{t+1} = p_t - \\eta\\,\\frac{m_t / (1 - \\beta_1^t)}{\\sqrt{v_t / (1 - \\beta_2^t)}
                 + \\epsilon}

    Both moments start at 1e-6, as in optax.

    Args:
      learning_rate: :math:`\\eta`, or a schedule.
      b1, b2: as :func:`jaxgd.adam`.
      eps: :math:`\\epsilon > 0` (1e-3, as in the paper).
    """
    return chain(scale_by_yogi(b1, b2, eps), scale_by_learning_rate(learning_rate))

