"""Lion: steps that keep only the sign of an interpolated momentum (see also
:func:`jaxgd.transforms.sign.scale_by_sign`, the sign of the gradient itself)."""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import checks, numerics, tree
from jaxgd.core.base import GradientTransformation, Updates, flatten_invariant

LionMode = Literal["hard", "smooth", "refined"]
_LION_MODES = ("hard", "smooth", "refined")


class ScaleByLionState(NamedTuple):
    """Step count and the momentum :math:`m`."""

    count: jax.Array
    mu: Updates


def scale_by_lion(
    b1=0.9, b2=0.99, mu_dtype=None, *, mode: LionMode = "hard", smooth_beta=1.0
) -> GradientTransformation:
    """Lion scaling (Chen et al., 2023): the sign of an interpolated momentum.

    .. math::
       c_t = \\beta_1 m_{t-1} + (1 - \\beta_1) g_t, \\quad
       u_t = \\mathrm{sign}(c_t), \\quad
       m_t = \\beta_2 m_{t-1} + (1 - \\beta_2) g_t

    The step uses :math:`\\beta_1`, the momentum it keeps uses :math:`\\beta_2`; every
    coordinate moves by exactly the learning rate (or 0).

    Args:
      b1: :math:`\\beta_1 \\in [0, 1)`, mixes the gradient into the step.
      b2: :math:`\\beta_2 \\in [0, 1)`, the decay of the stored momentum.
      mu_dtype: the dtype :math:`m` is stored in (e.g. ``jnp.bfloat16``); default each
        parameter's. It is read in the wider of it and the gradient's dtype.
      mode: ``"hard"`` (sign, the paper), ``"smooth"`` (:math:`\\tanh(\\beta_s c_t)`) or
        ``"refined"`` (:math:`c_t` where :math:`|c_t| < 1`, its sign elsewhere).
      smooth_beta: :math:`\\beta_s > 0`, the sharpness of the ``"smooth"`` mode.
    """
    checks.decay_rate("b1", b1)
    checks.decay_rate("b2", b2)
    checks.positive("smooth_beta", smooth_beta)
    mu_dtype = checks.state_dtype("mu_dtype", mu_dtype)
    if mode not in _LION_MODES:
        raise ValueError(f"mode must be one of {_LION_MODES}, got {mode!r}.")

    def direction(c):
        if mode == "smooth":
            return jnp.tanh(smooth_beta * c)
        if mode == "refined":
            return jnp.where(jnp.abs(c) < 1, c, jnp.sign(c))
        return jnp.sign(c)

    def rule(g, m):
        m = numerics.widened(m, g)
        step = direction((1 - b1) * g + b1 * m)
        return step, (1 - b2) * g + b2 * m

    def init(params):
        return ScaleByLionState(numerics.zero_count(), tree.zeros_like(params, mu_dtype))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        updates, mu = tree.map_rule(rule, updates, state.mu, names=("mu",))
        return updates, ScaleByLionState(numerics.safe_increment(state.count), mu)

    return flatten_invariant(GradientTransformation(init, update))
