"""Steps from the sign of the gradient: signSGD and Rprop.

Arguments, defaults and formulas are optax's (0.2.8), except where a docstring says so.
"""

from __future__ import annotations

from jaxgd.core.base import GradientTransformation, chain
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.transforms.scaling import ScalarOrSchedule, scale, scale_by_learning_rate
from jaxgd.transforms.sign import scale_by_rprop, scale_by_sign


@inject_hyperparams
def sign_sgd(learning_rate: ScalarOrSchedule) -> GradientTransformation:
    """signSGD (Bernstein et al., 2018): step by the sign of each gradient coordinate.

    .. math:: p_{t+1} = p_t - \\eta_t\\,\\operatorname{sign}(g_t)

    Args:
      learning_rate: :math:`\\eta_t`, or a schedule.

    Reference:
      Bernstein et al., `signSGD: Compressed Optimisation for Non-Convex Problems
      <https://arxiv.org/abs/1802.04434>`_, 2018.
    """
    return chain(scale_by_sign(), scale_by_learning_rate(learning_rate))


@inject_hyperparams
def rprop(
    learning_rate, eta_minus=0.5, eta_plus=1.2, min_step_size=1e-6, max_step_size=50.0
) -> GradientTransformation:
    """Rprop (Riedmiller & Braun, 1993): per-coordinate step sizes adapted to sign changes.

    iRprop⁻ variant: each step size grows by :math:`\\eta^+` while the gradient keeps its
    sign and shrinks by :math:`\\eta^-` when it flips (skipping that step).

    .. math::
       p_{t+1} = p_t - \\Delta_t \\operatorname{sign}(g_t), \\qquad
       \\Delta_t = \\operatorname{clip}(\\eta^{\\pm} \\Delta_{t-1},
       \\Delta_{min}, \\Delta_{max})

    See :func:`jaxgd.transforms.sign.scale_by_rprop` for the exact rule.

    Differs from optax 0.2.8 on purpose: optax returns the step computed at the
    *previous* call (its first update is 0, and every step uses the last gradient's
    sign); here step :math:`t` uses :math:`g_t`, as in the papers. The states are the same.

    Args:
      learning_rate: :math:`\\Delta_0 > 0`, the initial step size. It is read by ``init``
        only: changing it with :func:`jaxgd.set_hyperparams` later has no effect.
      eta_minus: :math:`\\eta^- \\in (0, 1)`.
      eta_plus: :math:`\\eta^+ > 1`.
      min_step_size: :math:`\\Delta_{min}`.
      max_step_size: :math:`\\Delta_{max}`.

    Reference:
      Igel & Hüsken, `Empirical evaluation of the improved Rprop learning algorithms
      <https://doi.org/10.1016/S0925-2312(01)00700-7>`_, 2003.
    """
    return chain(
        scale_by_rprop(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size),
        scale(-1.0),
    )
