"""Schedule-free SGD and AdamW (Defazio et al., 2024): :func:`jaxgd.schedule_free` around
momentum-free SGD and Adam. Arguments, defaults and formulas are optax.contrib's (0.2.8).

Evaluate at :func:`jaxgd.schedule_free_eval_params` (``jaxgd.fit`` and ``jaxgd.sweep`` do).

A ``learning_rate`` *schedule* is called by ``inject_hyperparams`` at the 0-based update
count and its value used for both the step and the averaging weight, where optax's
alias weights by the schedule at the 1-based count; ``warmup_steps`` (a constant peak
after a linear warmup, built inside) matches optax exactly.
"""

from __future__ import annotations

import operator

from jaxgd.core.base import GradientTransformation, chain
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.schedules import warmup_constant_schedule
from jaxgd.transforms.rms import scale_by_rms
from jaxgd.transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxgd.transforms.schedule_free import schedule_free
from jaxgd.transforms.weight_decay import add_decayed_weights


def _warmed_up(learning_rate: ScalarOrSchedule, warmup_steps) -> ScalarOrSchedule:
    """``learning_rate``, or a linear warmup from 0 to it over ``warmup_steps`` steps."""
    if warmup_steps is None:
        return learning_rate
    if isinstance(warmup_steps, bool):
        raise TypeError(f"warmup_steps must be a positive int or None, got {warmup_steps!r}.")
    try:
        steps = operator.index(warmup_steps)
    except TypeError:
        raise TypeError(f"warmup_steps must be a positive int or None, got "
                        f"{warmup_steps!r}.") from None
    if steps < 1:
        raise ValueError(f"warmup_steps must be a positive int or None, got {steps}.")
    return warmup_constant_schedule(init_value=0.0, peak_value=learning_rate,
                                    warmup_steps=steps)


def schedule_free_sgd(
    learning_rate: ScalarOrSchedule = 1.0, warmup_steps: int | None = None, b1=0.9,
    weight_decay=None, weight_lr_power=2.0, state_dtype=None,
) -> GradientTransformation:
    """Schedule-free SGD: :func:`jaxgd.schedule_free` around plain gradient descent.

    The base step is :math:`u_t = -\\gamma_t (\\nabla f(y_t) + \\lambda y_t)`, so that

    .. math::
       z_{t+1} = z_t + u_t, \\quad x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}, \\quad
       y_{t+1} = \\beta x_{t+1} + (1 - \\beta) z_{t+1}

    with :math:`c_{t+1} = w_{t+1} / \\sum_{i \\le t+1} w_i`,
    :math:`w_i = (\\max_{j \\le i} \\gamma_j)^r` (see :func:`jaxgd.schedule_free`).

    Args:
      learning_rate: :math:`\\gamma` (optax's default, 1.0), the peak after a warmup.
      warmup_steps: a positive int: :math:`\\gamma_t` rises linearly from 0 over that
        many steps; ``None``: no warmup.
      b1: :math:`\\beta \\in (0, 1)`, the interpolation between :math:`x` and :math:`z`.
      weight_decay: :math:`\\lambda \\ge 0`, multiplied by the learning rate (as in
        PyTorch), or ``None`` for none.
      weight_lr_power: :math:`r`, the power of the learning rate in the weights.
      state_dtype: the dtype :math:`z` is stored in; default each parameter's.

    Example:
      >>> import jax.numpy as jnp, jaxgd
      >>> res = jaxgd.fit(lambda p: jnp.sum(p**2), jnp.array([1.0, 2.0]),
      ...                 jaxgd.schedule_free_sgd(0.1), max_steps=100)
      >>> bool(jnp.sum(res.params**2) < 1e-2)  # res.params: the average x
      True
      >>> res.train_params.shape  # y, where the gradients were taken
      (2,)
    """
    learning_rate = _warmed_up(learning_rate, warmup_steps)
    base = scale_by_learning_rate(learning_rate)
    if weight_decay is not None:
        base = chain(add_decayed_weights(weight_decay), base)
    return schedule_free(base, learning_rate, b1, weight_lr_power, state_dtype)


def schedule_free_adamw(
    learning_rate: ScalarOrSchedule = 0.0025, warmup_steps: int | None = None, b1=0.9,
    b2=0.999, eps=1e-8, weight_decay=0.0, weight_lr_power=2.0, state_dtype=None,
) -> GradientTransformation:
    """Schedule-free AdamW: :func:`jaxgd.schedule_free` around Adam without momentum.

    The base step is RMS scaling with bias correction (:math:`\\epsilon` outside the
    root) and decoupled weight decay:

    .. math::
       \\nu_t = \\beta_2 \\nu_{t-1} + (1 - \\beta_2) g_t^2, \\qquad
       u_t = -\\gamma_t \\left(\\frac{g_t}{\\sqrt{\\nu_t / (1 - \\beta_2^t)} + \\epsilon}
       + \\lambda y_t\\right),

    with :math:`g_t = \\nabla f(y_t)`, then :math:`z, x, y` as in
    :func:`schedule_free_sgd`. No first moment is stored: :math:`\\beta_1` is the
    interpolation's.

    Args:
      learning_rate: :math:`\\gamma` (optax's default, 0.0025), the peak after a warmup.
      warmup_steps: as :func:`schedule_free_sgd`.
      b1: :math:`\\beta_1 \\in (0, 1)`, the interpolation between :math:`x` and :math:`z`.
      b2: :math:`\\beta_2 \\in [0, 1)`, the decay of the second moment.
      eps: :math:`\\epsilon > 0`, added to the root.
      weight_decay: :math:`\\lambda \\ge 0` (decoupled, times the learning rate).
      weight_lr_power, state_dtype: as :func:`jaxgd.schedule_free`.
    """
    learning_rate = _warmed_up(learning_rate, warmup_steps)
    base = chain(
        scale_by_rms(decay=b2, eps=eps, eps_in_sqrt=False, bias_correction=True),
        add_decayed_weights(weight_decay),
        scale_by_learning_rate(learning_rate),
    )
    return schedule_free(base, learning_rate, b1, weight_lr_power, state_dtype)


schedule_free_sgd = inject_hyperparams(schedule_free_sgd, static_args=("warmup_steps",))
schedule_free_adamw = inject_hyperparams(schedule_free_adamw, static_args=("warmup_steps",))
