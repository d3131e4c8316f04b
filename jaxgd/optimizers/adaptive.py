"""Adaptive-rate optimizers of the seed set: AdaGrad, RMSProp and Adam."""

from __future__ import annotations

from jaxgd.core.base import GradientTransformation, chain
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.transforms.adaptive import (
    scale_by_adagrad,
    scale_by_adam,
    scale_by_rms,
    scale_by_stddev,
)
from jaxgd.transforms.momentum import trace
from jaxgd.transforms.scaling import ScalarOrSchedule, scale_by_learning_rate


@inject_hyperparams
def adagrad(
    learning_rate: ScalarOrSchedule, initial_accumulator_value=0.1, eps=1e-7
) -> GradientTransformation:
    """AdaGrad (Duchi et al., 2011): each coordinate's rate shrinks with its gradient history.

    .. math::
       G_t = G_{t-1} + g_t^2, \\qquad p_{t+1} = p_t - \\eta\\,\\frac{g_t}{\\sqrt{G_t + \\epsilon}}

    Args:
      learning_rate: :math:`\\eta`, or a schedule.
      initial_accumulator_value: :math:`G_0` (optax's 0.1; PyTorch starts at 0).
      eps: :math:`\\epsilon > 0`.
    """
    return chain(
        scale_by_adagrad(initial_accumulator_value=initial_accumulator_value, eps=eps),
        scale_by_learning_rate(learning_rate),
    )


@inject_hyperparams
def rmsprop(
    learning_rate: ScalarOrSchedule,
    decay=0.9,
    eps=1e-8,
    initial_scale=0.0,
    centered: bool = False,
    momentum=None,
    nesterov: bool = False,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> GradientTransformation:
    """RMSProp (Hinton, 2012), optionally centered and with momentum.

    .. math::
       \\nu_t = \\rho\\,\\nu_{t-1} + (1 - \\rho)\\,g_t^2, \\qquad
       p_{t+1} = p_t - \\eta\\,\\frac{g_t}{\\sqrt{\\nu_t + \\epsilon}}

    Centered: :math:`\\nu_t - \\mu_t^2` replaces :math:`\\nu_t`, with :math:`\\mu_t` the
    moving average of :math:`g_t`. With ``momentum``, the scaled step goes through
    :func:`jaxgd.trace` after the learning rate, as in optax.

    Conventions (optax's): :math:`\\epsilon` inside the square root and :math:`\\rho = 0.9`;
    PyTorch puts :math:`\\epsilon` outside (``eps_in_sqrt=False``) and uses
    :math:`\\rho = 0.99`.

    Args:
      learning_rate: :math:`\\eta`, or a schedule.
      decay: :math:`\\rho \\in [0, 1)`.
      eps: :math:`\\epsilon > 0`.
      initial_scale: :math:`\\nu_0`.
      centered: divide by the running standard deviation instead of the RMS.
      momentum: momentum in [0, 1) applied to the scaled steps, or ``None``.
      nesterov: Nesterov momentum.
      eps_in_sqrt: where :math:`\\epsilon` goes (see above).
      bias_correction: unbias :math:`\\nu_t` as Adam does.
    """
    scaling = scale_by_stddev if centered else scale_by_rms
    return chain(
        scaling(
            decay=decay,
            eps=eps,
            initial_scale=initial_scale,
            eps_in_sqrt=eps_in_sqrt,
            bias_correction=bias_correction,
        ),
        scale_by_learning_rate(learning_rate),
        *([trace(decay=momentum, nesterov=nesterov)] if momentum is not None else []),
    )


@inject_hyperparams
def adam(
    learning_rate: ScalarOrSchedule, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
    mu_dtype=None, *, nesterov: bool = False, nu_dtype=None,
) -> GradientTransformation:
    """Adam (Kingma & Ba, 2015).

    .. math::
       m_t = \\beta_1 m_{t-1} + (1 - \\beta_1) g_t, \\quad
       v_t = \\beta_2 v_{t-1} + (1 - \\beta_2) g_t^2, \\\\
       p_{t+1} = p_t - \\eta\\,\\frac{m_t / (1 - \\beta_1^t)}
                 {\\sqrt{v_t / (1 - \\beta_2^t) + \\epsilon_{root}} + \\epsilon}

    The first step is :math:`-\\eta\\,g / (|g| + \\epsilon)` elementwise.

    Args:
      learning_rate: :math:`\\eta`, or a schedule.
      b1: :math:`\\beta_1 \\in [0, 1)`.
      b2: :math:`\\beta_2 \\in [0, 1)`.
      eps: :math:`\\epsilon > 0`, outside the square root.
      eps_root: :math:`\\epsilon_{root} \\ge 0`, inside it (for meta-gradients).
      mu_dtype: the dtype :math:`m` is stored in (``jnp.bfloat16`` halves its memory), or
        ``None`` for each parameter's dtype. The step is computed before :math:`m` is
        rounded, as in optax.
      nesterov: Nesterov momentum (NAdam).
      nu_dtype: the same for :math:`v`, which optax does not offer. A bfloat16 :math:`v`
        does not decay (see :func:`jaxgd.scale_by_adam`): after large gradients the steps
        stay smaller than with a float32 :math:`v`.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgd
      >>> opt = jaxgd.adam(1e-3)
      >>> params = {"w": jnp.ones(3)}
      >>> state = opt.init(params)
      >>> grads = {"w": jnp.array([0.5, -2.0, 1.0])}
      >>> updates, state = opt.update(grads, state, params)
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )
