"""Gradient descent with the stochastic Polyak step size, set by the loss and the gradient's
norm.

Arguments, defaults and formulas are optax's (0.2.8), except where the docstring says so.
"""

from __future__ import annotations

from jaxgd.core.base import GradientTransformation, chain
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.transforms.polyak import PolyakVariant, scale_by_polyak
from jaxgd.transforms.scaling import ScalarOrSchedule, scale_by_learning_rate


@inject_hyperparams
def polyak_sgd(
    max_learning_rate=1.0,
    scaling: ScalarOrSchedule = 1.0,
    f_min=0.0,
    eps=0.0,
    variant: PolyakVariant = "sps",
) -> GradientTransformation:
    """Gradient descent with the stochastic Polyak step size (Loizou et al., 2021).

    .. math::
       p_{t+1} = p_t - s_t \\min\\left\\{\\frac{f(p_t) - f^\\star}{\\|g_t\\|^2 + \\epsilon},
       \\gamma_{max}\\right\\} g_t

    ``"sps+"`` (Garrigos et al., 2023) replaces :math:`f - f^\\star` by its positive part.
    ``update`` needs the current loss: ``opt.update(grads, state, params, value=loss)``.
    Choose :math:`f^\\star` with care: 0 suits losses that can reach 0 (interpolation);
    an overestimate stops short of the minimum.

    Differs from optax 0.2.8 on purpose: optax scales the gradient by ``scaling`` *before*
    computing the step size, which gives :math:`\\min\\{(f - f^\\star)/(s\\|g\\|^2),
    s\\gamma_{max}\\}` (a scaling of 0.5 *doubles* the Polyak step); here :math:`s`
    multiplies the step, as the formula above (and optax's own docstring) says. The two
    agree for the default ``scaling=1``.

    Args:
      max_learning_rate: :math:`\\gamma_{max} \\ge 0`.
      scaling: :math:`s_t`, a factor on the step (or a schedule).
      f_min: :math:`f^\\star`, the (estimated) minimum of the loss.
      eps: :math:`\\epsilon \\ge 0`, added to the squared gradient norm.
      variant: ``"sps"`` or ``"sps+"``.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgd
      >>> from jaxgd.optimizers.polyak import polyak_sgd
      >>> loss = lambda x: jnp.sum(x**2)
      >>> opt, x = polyak_sgd(), jnp.array([1.0, -2.0])
      >>> state = opt.init(x)
      >>> value, grad = jax.value_and_grad(loss)(x)
      >>> updates, state = opt.update(grad, state, x, value=value)
      >>> jaxgd.apply_updates(x, updates)  # step f / ||g||^2 = 5 / 20: halfway
      Array([ 0.5, -1. ], dtype=float32)

    References:
      Loizou et al., `Stochastic Polyak Step-size for SGD
      <https://arxiv.org/abs/2002.10542>`_, 2021. Garrigos et al., `Function value
      learning: Adaptive learning rates based on the Polyak stepsize and function
      splitting in ERM <https://arxiv.org/abs/2307.14528>`_, 2023.
    """
    return chain(
        scale_by_polyak(f_min=f_min, max_learning_rate=max_learning_rate, eps=eps,
                        variant=variant),
        scale_by_learning_rate(scaling),
    )
