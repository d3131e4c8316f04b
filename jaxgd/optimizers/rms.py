"""Optimizers that divide by a root mean square of past gradients: AdaGrad, RMSProp and
Adadelta.

Arguments, defaults and formulas are optax's (0.2.8), except that :func:`adadelta`
descends with its default ``learning_rate=None`` (optax climbs); see its docstring.
"""

from __future__ import annotations

from jaxgd.core.base import GradientTransformation, chain
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.transforms.rms import scale_by_adadelta, scale_by_adagrad, scale_by_rms, scale_by_stddev
from jaxgd.transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxgd.transforms.sgd import trace
from jaxgd.transforms.weight_decay import Mask, add_decayed_weights


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
