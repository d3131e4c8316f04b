"""AdEMAMix and simplified AdEMAMix: Adam-like steps that mix in a slow momentum.

Arguments, defaults and formulas are optax.contrib's (0.2.8), in optax's order, except:

* ``nu_dtype`` (keyword-only, as in :func:`jaxgd.adam`) stores AdEMAMix's second moment;
  optax stores it in ``mu_dtype`` with the two momenta, against its own docstring ("the
  first order accumulator"), and after one step keeps all three in the gradients' dtype.
  Here each stays in its dtype, so a jitted loop's state keeps its types.
* ``weight_decay`` is a number, not a schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jaxgd.core.base import GradientTransformation, chain
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.transforms.ademamix import scale_by_ademamix, scale_by_simplified_ademamix
from jaxgd.transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxgd.transforms.weight_decay import add_decayed_weights

Mask = Any | Callable[[Any], Any] | None


@inject_hyperparams
def ademamix(
    learning_rate: ScalarOrSchedule, b1=0.9, b2=0.999, b3: ScalarOrSchedule = 0.9999,
    alpha: ScalarOrSchedule = 5.0, eps=1e-8, eps_root=0.0, mu_dtype=None, weight_decay=0.0,
    mask: Mask = None, *, nu_dtype=None,
) -> GradientTransformation:
    """AdEMAMix (Pagliardini et al., 2024): AdamW whose step adds :math:`\\alpha` times a
    slow momentum, which keeps using gradients many thousands of steps old.

    .. math::
       p_{t+1} = p_t - \\eta\\left(\\frac{\\hat m_{1,t} + \\alpha\\, m_{2,t}}
                 {\\sqrt{\\hat\\nu_t + \\epsilon_{root}} + \\epsilon} + \\lambda\\, p_t\\right)

    with Adam's debiased :math:`\\hat m_{1,t}` and :math:`\\hat\\nu_t`, and
    :math:`m_{2,t} = \\beta_3 m_{2,t-1} + (1 - \\beta_3) g_t` (see
    :func:`jaxgd.scale_by_ademamix`). The paper warms ``alpha`` and ``b3`` up with
    schedules (functions of the step, from 0), which both accept; their values at each
    step are in ``state.hyperparams``. It suits long runs: with few steps a smaller
    ``b3`` (0.999) does better, and the old gradients slow adaptation to a changing
    distribution.

    Args:
      learning_rate: :math:`\\eta`, or a schedule.
      b1: :math:`\\beta_1 \\in [0, 1)`, the fast momentum's decay.
      b2: :math:`\\beta_2 \\in [0, 1)`, the second moment's decay.
      b3: :math:`\\beta_3 \\in [0, 1)`, the slow momentum's decay, or a schedule.
      alpha: :math:`\\alpha`, the slow momentum's weight, or a schedule (the block
        :func:`jaxgd.scale_by_ademamix` defaults to 6, this alias to 5, as in optax).
      eps, eps_root: as :func:`jaxgd.adam`.
      mu_dtype: the dtype of both momenta (``None``: each parameter's).
      weight_decay: :math:`\\lambda \\ge 0`, multiplied by the learning rate as in AdamW.
      mask: which leaves to decay, see :func:`jaxgd.add_decayed_weights`.
      nu_dtype: the dtype of :math:`\\nu` (not in optax; see the module's notes).

    Example:
      >>> import jax, jax.numpy as jnp, jaxgd
      >>> loss_fn = lambda p: jnp.sum(p ** 2)
      >>> alpha = jaxgd.linear_schedule(0.0, 5.0, 1000)
      >>> result = jaxgd.fit(loss_fn, jnp.ones(3), jaxgd.ademamix(0.01, alpha=alpha),
      ...                    max_steps=100)

    Reference:
      Pagliardini, Ablin & Grangier, `The AdEMAMix Optimizer: Better, Faster, Older
      <https://arxiv.org/abs/2409.03137>`_, 2024.
    """
    return chain(
        scale_by_ademamix(b1, b2, b3, alpha, eps, eps_root, mu_dtype, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


@inject_hyperparams
def simplified_ademamix(
    learning_rate: ScalarOrSchedule, b1=0.99, b2=0.95, alpha: ScalarOrSchedule = 0.0,
    eps=1e-8, eps_root=0.0, weight_decay=0.0, mask: Mask = None,
) -> GradientTransformation:
    """Simplified AdEMAMix (Morwani et al., 2025): one undamped momentum plus
    :math:`\\alpha` times the current gradient, no slow momentum and no schedule needed.

    .. math::
       m_t = \\beta_1 m_{t-1} + g_t, \\qquad
       p_{t+1} = p_t - \\eta\\left(\\frac{m_t + \\alpha\\, g_t}
                 {\\sqrt{\\hat n_t + \\epsilon_{root}} + \\epsilon} + \\lambda\\, p_t\\right)

    with :math:`\\hat n_t` Adam's debiased second moment (decay :math:`\\beta_2`). Since
    :math:`m_t` is not averaged, it grows to :math:`1 / (1 - \\beta_1)` times a steady
    gradient (100 with the default :math:`\\beta_1`): take the learning rate that much
    smaller than Adam's. :math:`\\alpha = 0` is Adam with learning rate
    :math:`\\eta / (1 - \\beta_1)` and no first-moment bias correction.

    Args:
      learning_rate: :math:`\\eta`, or a schedule.
      b1: :math:`\\beta_1 \\in [0, 1)`, the momentum's decay.
      b2: :math:`\\beta_2 \\in [0, 1)`, the second moment's decay.
      alpha: :math:`\\alpha`, the current gradient's weight, or a schedule.
      eps, eps_root: as :func:`jaxgd.adam`.
      weight_decay: :math:`\\lambda \\ge 0`, multiplied by the learning rate as in AdamW.
      mask: which leaves to decay, see :func:`jaxgd.add_decayed_weights`.

    Reference:
      Morwani, Shapira, Vyas, Malach, Kakade & Janson, `Connections between Schedule-Free
      Optimizers, AdEMAMix, and Accelerated SGD Variants
      <https://arxiv.org/abs/2502.02431>`_, 2025.
    """
    return chain(
        scale_by_simplified_ademamix(b1, b2, alpha, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
