"""Adafactor: Adam-like steps whose second moment is stored factored, as a row and a column
estimate per matrix (sublinear memory).

Arguments, defaults and formulas are optax's (0.2.8), except where the docstring says so.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from jaxgd.core.base import GradientTransformation, chain
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.transforms.adafactor import (
    clip_by_block_rms,
    scale_by_factored_rms,
    scale_by_param_block_rms,
)
from jaxgd.transforms.ema import ema
from jaxgd.transforms.scaling import ScalarOrSchedule, scale, scale_by_learning_rate
from jaxgd.transforms.weight_decay import Mask, add_decayed_weights


def adafactor(
    learning_rate: ScalarOrSchedule | None = None,
    min_dim_size_to_factor: int = 128,
    decay_rate=0.8,
    decay_offset=0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold=1.0,
    momentum=None,
    dtype_momentum: Any = jnp.float32,
    weight_decay_rate=None,
    eps=1e-30,
    factored: bool = True,
    weight_decay_mask: Mask = None,
) -> GradientTransformation:
    """Adafactor (Shazeer & Stern, 2018): RMS scaling with a factored second moment.

    .. math::
       d_t = \\frac{g_t}{\\sqrt{\\hat V_t}}, \\quad
       d_t \\leftarrow \\frac{d_t}{\\max(1, \\operatorname{RMS}(d_t) / c)}, \\quad
       p_{t+1} = p_t - \\eta_t \\max(\\operatorname{RMS}(p_t), 10^{-3})\\,d_t

    per leaf, where :math:`\\hat V_t` is a rank-1 (row x column) estimate of the moving
    average of :math:`g^2 + \\epsilon` for leaves with two axes of size
    :math:`\\ge` ``min_dim_size_to_factor`` and the full average otherwise, with decay
    :math:`1 - (t + 1)^{-0.8}` (see :func:`jaxgd.transforms.adafactor.scale_by_factored_rms`).
    Optional parts, in this order: update clipping (``clipping_threshold`` :math:`c`), the
    learning rate, the relative step (``multiply_by_parameter_scale``), an unbiased EMA
    ``momentum`` of the steps, and decoupled ``weight_decay_rate`` :math:`\\lambda` (added
    as :math:`+\\lambda p_t` after the learning rate, so it is *not* multiplied by it).

    Args:
      learning_rate: :math:`\\eta_t`, a schedule, or ``None`` for step size 1 (the relative
        step then sets the scale; typical explicit values are ~1e-2, not Adam's 1e-3).
      min_dim_size_to_factor: smallest axis size worth factoring (structural, not swept).
      decay_rate: the exponent of the second-moment decay schedule.
      decay_offset: the step where fine-tuning starts (restarts the decay schedule).
      multiply_by_parameter_scale: scale steps by the parameters' RMS.
      clipping_threshold: :math:`c \\ge 1`, or ``None`` for no clipping.
      momentum: EMA decay of the steps in [0, 1), or ``None`` (no momentum memory).
      dtype_momentum: dtype of the momentum buffer.
      weight_decay_rate: :math:`\\lambda`, or ``None``.
      eps: :math:`\\epsilon > 0`, added to :math:`g^2`.
      factored: factor the second moment (else the full one, like RMSProp).
      weight_decay_mask: leaves that get weight decay (bools shaped like the params, a
        prefix, or a function of them); ``None``: all.

    Reference:
      Shazeer & Stern, `Adafactor: Adaptive Learning Rates with Sublinear Memory Cost
      <https://arxiv.org/abs/1804.04235>`_, 2018.
    """
    return chain(
        scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor, eps),
        *([clip_by_block_rms(clipping_threshold)] if clipping_threshold is not None else []),
        *(
            [scale_by_learning_rate(learning_rate, flip_sign=False)]
            if learning_rate is not None else []
        ),
        *([scale_by_param_block_rms()] if multiply_by_parameter_scale else []),
        *(
            [ema(momentum, debias=False, accumulator_dtype=dtype_momentum)]
            if momentum is not None else []
        ),
        *(
            [add_decayed_weights(weight_decay_rate, weight_decay_mask)]
            if weight_decay_rate is not None else []
        ),
        scale(-1.0),
    )


adafactor = inject_hyperparams(adafactor, static_args=("min_dim_size_to_factor",))
