"""Adam and its direct variants: AdamW (decoupled weight decay), NAdam and NAdamW (Nesterov),
AMSGrad and AdaMax / AdaMaxW.

Arguments, defaults and formulas are optax's (0.2.8), in optax's order, except:

* ``nu_dtype`` (keyword-only), which optax lacks, stores the second moment in another
  dtype, as ``mu_dtype`` does the first.
* ``weight_decay`` is a number, not a schedule.
"""

from __future__ import annotations

from jaxgd.core.base import GradientTransformation, chain
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.transforms.adam import scale_by_adam, scale_by_adamax, scale_by_amsgrad
from jaxgd.transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxgd.transforms.weight_decay import Mask, add_decayed_weights


def _decoupled(scaling, weight_decay, mask, learning_rate) -> GradientTransformation:
    """``scaling``, then decoupled weight decay, then the learning rate (AdamW's order):
    :math:`u = -\\eta\\,(s(g) + \\lambda p)`."""
    return chain(
        scaling, add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate)
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


@inject_hyperparams
def adamw(
    learning_rate: ScalarOrSchedule, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
    mu_dtype=None, weight_decay=1e-4, mask: Mask = None,
    *, nesterov: bool = False, nu_dtype=None,
) -> GradientTransformation:
    """AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay.

    .. math::
       p_{t+1} = p_t - \\eta\\left(\\frac{\\hat m_t}{\\sqrt{\\hat v_t + \\epsilon_{root}}
                 + \\epsilon} + \\lambda\\,p_t\\right)

    with Adam's debiased moments :math:`\\hat m_t`, :math:`\\hat v_t`. The decay is
    multiplied by the learning rate, as in optax and PyTorch (the paper scales it by the
    schedule only).

    Args:
      learning_rate: :math:`\\eta`, or a schedule.
      b1, b2, eps, eps_root, mu_dtype: as :func:`jaxgd.adam`.
      weight_decay: :math:`\\lambda \\ge 0` (optax: 1e-4; PyTorch: 1e-2).
      mask: which leaves to decay, see :func:`jaxgd.add_decayed_weights`.
      nesterov: Nesterov momentum (NAdamW).
      nu_dtype: as :func:`jaxgd.adam` (not in optax).
    """
    return _decoupled(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
        weight_decay, mask, learning_rate,
    )


@inject_hyperparams
def nadam(
    learning_rate: ScalarOrSchedule, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
    mu_dtype=None, *, nu_dtype=None,
) -> GradientTransformation:
    """NAdam (Dozat, 2016): Adam with Nesterov momentum.

    .. math::
       \\hat m_t = \\frac{\\beta_1 m_t}{1 - \\beta_1^{t+1}} + \\frac{(1 - \\beta_1) g_t}
                 {1 - \\beta_1^t}, \\qquad
       p_{t+1} = p_t - \\eta\\,\\frac{\\hat m_t}{\\sqrt{\\hat v_t + \\epsilon_{root}} + \\epsilon}

    Without PyTorch's momentum-decay schedule (``momentum_decay``), as in optax.

    Args: as :func:`jaxgd.adam`.
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=True, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )


@inject_hyperparams
def nadamw(
    learning_rate: ScalarOrSchedule, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
    mu_dtype=None, weight_decay=1e-4, mask: Mask = None, *, nu_dtype=None,
) -> GradientTransformation:
    """NAdamW: :func:`nadam`'s step plus decoupled weight decay,
    :math:`p_{t+1} = p_t - \\eta\\,(\\text{NAdam step} + \\lambda p_t)`
    (Dozat, 2016; Loshchilov & Hutter, 2019). The same as ``adamw(..., nesterov=True)``.

    Args: as :func:`adamw`.
    """
    return _decoupled(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=True, nu_dtype=nu_dtype),
        weight_decay, mask, learning_rate,
    )


@inject_hyperparams
def amsgrad(
    learning_rate: ScalarOrSchedule, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
    mu_dtype=None, bias_correction_mu: bool = True, bias_correction_nu: bool = True,
    *, nu_dtype=None,
) -> GradientTransformation:
    """AMSGrad (Reddi et al., 2018): Adam whose denominator never decreases.

    .. math::
       \\hat v^{max}_t = \\max(\\hat v^{max}_{t-1}, \\hat v_t), \\qquad
       p_{t+1} = p_t - \\eta\\,\\frac{\\hat m_t}{\\sqrt{\\hat v^{max}_t + \\epsilon_{root}}
                 + \\epsilon}

    Args:
      learning_rate: :math:`\\eta`, or a schedule.
      b1, b2, eps, eps_root, mu_dtype: as :func:`jaxgd.adam`.
      bias_correction_mu, bias_correction_nu: debias :math:`m_t` / :math:`v_t` (``False``
        for both gives the paper's algorithm).
      nu_dtype: as :func:`jaxgd.adam`, for :math:`v_t` and :math:`\\hat v^{max}_t`.
    """
    return chain(
        scale_by_amsgrad(b1, b2, eps, eps_root, mu_dtype, bias_correction_mu,
                         bias_correction_nu, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )


@inject_hyperparams
def adamax(
    learning_rate: ScalarOrSchedule, b1=0.9, b2=0.999, eps=1e-8
) -> GradientTransformation:
    """AdaMax (Kingma & Ba, 2015, sec. 7): Adam with the infinity norm.

    .. math::
       v_t = \\max(\\beta_2 v_{t-1}, |g_t| + \\epsilon), \\qquad
       p_{t+1} = p_t - \\eta\\,\\frac{m_t}{(1 - \\beta_1^t)\\, v_t}

    Args:
      learning_rate: :math:`\\eta`, or a schedule.
      b1: :math:`\\beta_1 \\in [0, 1)`.
      b2: :math:`\\beta_2 \\in [0, 1)`, decay of the running maximum.
      eps: :math:`\\epsilon > 0`.
    """
    return chain(scale_by_adamax(b1, b2, eps), scale_by_learning_rate(learning_rate))


@inject_hyperparams
def adamaxw(
    learning_rate: ScalarOrSchedule, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4,
    mask: Mask = None,
) -> GradientTransformation:
    """AdaMaxW: :func:`adamax`'s step plus decoupled weight decay (Loshchilov & Hutter, 2019),
    :math:`p_{t+1} = p_t - \\eta\\,(m_t / ((1 - \\beta_1^t) v_t) + \\lambda p_t)`.

    Args: as :func:`adamax`, plus ``weight_decay`` :math:`\\lambda \\ge 0` and ``mask``
    (see :func:`jaxgd.add_decayed_weights`).
    """
    return _decoupled(scale_by_adamax(b1, b2, eps), weight_decay, mask, learning_rate)

