"""Adam's relatives: decoupled weight decay, Nesterov, AMSGrad, AdaMax, RAdam, AdaBelief,
Yogi, Lion and Adadelta.

Arguments, defaults and formulas are optax's (0.2.8), in optax's order, except:

* ``nu_dtype`` (keyword-only), which optax lacks, stores the second moment in another
  dtype, as ``mu_dtype`` does the first. :func:`lion` does not take ``mu_dtype`` yet, so
  its arguments after ``b2`` are keyword-only: an optax-style positional call fails
  loudly instead of shifting every value by one.
* ``weight_decay`` is a number, not a schedule.
* :func:`adadelta` descends with its default ``learning_rate=None`` (optax climbs), and
  :func:`radam` computes its rectification accurately in float32 and stays finite where
  optax's is NaN; see their docstrings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jaxgd.core.base import GradientTransformation, chain
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.transforms.adadelta import scale_by_adadelta
from jaxgd.transforms.adaptive import scale_by_adam
from jaxgd.transforms.lion import scale_by_lion
from jaxgd.transforms.moments import (
    scale_by_adamax,
    scale_by_amsgrad,
    scale_by_belief,
    scale_by_radam,
    scale_by_yogi,
)
from jaxgd.transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxgd.transforms.weight_decay import add_decayed_weights

Mask = Any | Callable[[Any], Any] | None


def _decoupled(scaling, weight_decay, mask, learning_rate) -> GradientTransformation:
    """``scaling``, then decoupled weight decay, then the learning rate (AdamW's order):
    :math:`u = -\\eta\\,(s(g) + \\lambda p)`."""
    return chain(
        scaling, add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate)
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

    See :func:`jaxgd.transforms.moments.scale_by_radam` for :math:`\\rho_t` and :math:`r_t`,
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
    return _decoupled(scale_by_lion(b1, b2, mu_dtype), weight_decay, mask, learning_rate)


@inject_hyperparams
def adadelta(
    learning_rate: ScalarOrSchedule | None = None, rho=0.9, eps=1e-6, weight_decay=0.0,
    weight_decay_mask: Mask = None,
) -> GradientTransformation:
    """Adadelta (Zeiler, 2012): steps in the units of the parameters, no learning rate needed.

    .. math::
       \\tilde g_t = g_t + \\lambda p_t, \\quad
       E[g^2]_t = \\rho E[g^2]_{t-1} + (1 - \\rho) \\tilde g_t^2, \\\\
       \\Delta_t = \\frac{\\sqrt{E[\\Delta^2]_{t-1} + \\epsilon}}{\\sqrt{E[g^2]_t + \\epsilon}}
                   \\tilde g_t, \\quad
       E[\\Delta^2]_t = \\rho E[\\Delta^2]_{t-1} + (1 - \\rho) \\Delta_t^2, \\quad
       p_{t+1} = p_t - \\eta\\,\\Delta_t

    with :math:`\\eta = 1` when ``learning_rate`` is ``None``.

    Difference from optax: ``optax.adadelta()`` with its default ``learning_rate=None``
    skips the learning-rate link *and with it the sign flip*, so it adds :math:`+\\Delta_t`
    and climbs the loss. Here ``None`` means a unit step that descends, as in the paper and
    PyTorch (``lr=1.0``); with a learning rate both agree. ``None`` is fixed when the
    optimizer is built: pass ``learning_rate=1.0`` to be able to change or sweep it.

    Args:
      learning_rate: :math:`\\eta`, a schedule, or ``None`` for 1.
      rho: :math:`\\rho \\in [0, 1)`.
      eps: :math:`\\epsilon > 0`; it sets the size of the first steps
        (:math:`\\le \\sqrt{\\epsilon}` per coordinate).
      weight_decay: :math:`\\lambda \\ge 0`, added to the gradient *before* scaling (as in
        optax and PyTorch).
      weight_decay_mask: which leaves to decay, see :func:`jaxgd.add_decayed_weights`.
    """
    return chain(
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_adadelta(rho, eps),
        scale_by_learning_rate(1.0 if learning_rate is None else learning_rate),
    )
