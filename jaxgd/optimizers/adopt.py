"""ADOPT, with optax's (0.2.8) arguments, defaults and formulas."""

from __future__ import annotations

from collections.abc import Callable

import jax

from jaxgd.core.base import GradientTransformation, chain
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.transforms.adopt import quarter_power, scale_by_adopt
from jaxgd.transforms.scaling import ScalarOrSchedule, scale_by_learning_rate


def adopt(
    learning_rate: ScalarOrSchedule,
    b1=0.9,
    b2=0.9999,
    eps=1e-6,
    mu_dtype=None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[jax.Array], jax.Array] = quarter_power,
) -> GradientTransformation:
    """ADOPT (Taniguchi et al., 2024): Adam normalised by the *previous* second moment,
    which converges for any :math:`\\beta_2`.

    .. math::
       \\tilde g_t = \\operatorname{clip}\\left(\\frac{g_t}{\\max(\\sqrt{v_{t-1}},
       \\epsilon)}, \\pm c(t)\\right), \\quad
       m_t = \\beta_1 m_{t-1} + (1 - \\beta_1)\\,\\tilde g_t, \\quad
       p_{t+1} = p_t - \\eta_t\\,m_t

    and :math:`v_t = \\beta_2 v_{t-1} + (1 - \\beta_2) g_t^2`; the first update (:math:`t
    = 0`) only sets :math:`v_0 = g_0^2` and moves nothing. See
    :func:`jaxgd.transforms.adopt.scale_by_adopt`.

    Args:
      learning_rate: :math:`\\eta_t \\ge 0`, or a schedule.
      b1: :math:`\\beta_1 \\in [0, 1)`.
      b2: :math:`\\beta_2 \\in [0, 1)`.
      eps: :math:`\\epsilon > 0`, the floor of :math:`\\sqrt{v}`.
      mu_dtype: the dtype :math:`m` is stored in, or ``None`` for each parameter's.
      nesterov: use Nesterov momentum.
      use_clipping: clip the normalised gradient to :math:`[-c(t), c(t)]` (recommended).
      clip_value_fn: :math:`c(t)`, a function of the update count (default
        :math:`t^{1/4}`); it is fixed when the optimizer is built, not held in the state.

    Reference:
      Taniguchi et al., `ADOPT: Modified Adam Can Converge with Any β2 with the Optimal
      Rate <https://arxiv.org/abs/2411.02853>`_, NeurIPS 2024.
    """
    return chain(
        scale_by_adopt(b1, b2, eps, mu_dtype, nesterov=nesterov, use_clipping=use_clipping,
                       clip_value_fn=clip_value_fn),
        scale_by_learning_rate(learning_rate),
    )


# A function, not a schedule of a hyperparameter: it must reach the block as it is.
adopt = inject_hyperparams(adopt, static_args=("clip_value_fn",))
