"""MADGRAD, with optax's (0.2.8) arguments, defaults and formulas."""

from __future__ import annotations

from jaxgd.core.base import GradientTransformation, chain
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.transforms.madgrad import scale_by_madgrad
from jaxgd.transforms.scaling import ScalarOrSchedule
from jaxgd.transforms.weight_decay import add_decayed_weights


@inject_hyperparams
def madgrad(
    learning_rate: ScalarOrSchedule, momentum=0.9, weight_decay=0.0, eps=1e-6
) -> GradientTransformation:
    """MADGRAD (Defazio & Jelassi, 2021): dual averaging from the starting point, with
    AdaGrad-like cube-root scaling and momentum by averaging iterates.

    .. math::
       \\lambda_k = (\\eta_k + \\epsilon)\\sqrt{k + 1}, \\quad
       G_{k+1} = G_k + \\lambda_k g_k^2, \\quad s_{k+1} = s_k + \\lambda_k g_k, \\\\
       x_{k+1} = (1 - c)\\left(x_0 - \\frac{s_{k+1}}{G_{k+1}^{1/3} + \\epsilon}\\right)
                 + c\\,x_k

    with :math:`g_k` the gradient plus :math:`\\lambda_{wd} x_k` (L2 weight decay, added
    to the gradient before the rule, as in optax). See
    :func:`jaxgd.transforms.madgrad.scale_by_madgrad`. ``update`` needs the params.

    Args:
      learning_rate: :math:`\\eta_k \\ge 0`, or a schedule.
      momentum: :math:`c \\in [0, 1)`.
      weight_decay: :math:`\\lambda_{wd} \\ge 0`, the L2 penalty's coefficient.
      eps: :math:`\\epsilon > 0`.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgd
      >>> opt, x = jaxgd.madgrad(0.1), jnp.array([1.0, -2.0])
      >>> state = opt.init(x)
      >>> updates, state = opt.update(jax.grad(lambda p: jnp.sum(p**2))(x), state, x)
      >>> x = jaxgd.apply_updates(x, updates)

    Reference:
      Defazio & Jelassi, `Adaptivity without Compromise: A Momentumized, Adaptive, Dual
      Averaged Gradient Method for Stochastic Optimization
      <https://arxiv.org/abs/2101.11075>`_, 2021.
    """
    return chain(add_decayed_weights(weight_decay),
                 scale_by_madgrad(learning_rate, momentum, eps))
