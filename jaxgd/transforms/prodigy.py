"""D-Adaptation for Adam: AdamW whose base step size :math:`d` is estimated on the fly from
the distance travelled (D-Adapt AdamW) and its faster-adapting variant Prodigy.

Both keep the gradients' weighted sum :math:`s` and the scalar :math:`d`, a lower bound
on the distance from the start :math:`x_0` to a solution, which only grows. The learning
rate they take is a multiplier of :math:`d` (1 by default, or a schedule such as a linear
decay from 1).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import checks, numerics, tree
from jaxgd.core.base import GradientTransformation, Updates, flatten_invariant
from jaxgd.transforms.scaling import ScalarOrSchedule


class ProdigyState(NamedTuple):
    """Prodigy's state (optax's field names).

    Attributes:
      exp_avg: :math:`m`, the moving average of :math:`d\\,g`.
      exp_avg_sq: :math:`v`, the moving average of :math:`(d\\,g)^2`.
      grad_sum: :math:`s`, the decaying weighted sum of :math:`d\\,g`.
      params0: :math:`x_0`, the params at ``init``.
      estim_lr: :math:`d`, the distance estimate.
      numerator_weighted: :math:`r`, the numerator of :math:`\\hat d`.
      count: the number of updates so far.
    """

    exp_avg: Updates
    exp_avg_sq: Updates
    grad_sum: Updates
    params0: Updates
    estim_lr: jax.Array
    numerator_weighted: jax.Array
    count: jax.Array


class DAdaptAdamWState(NamedTuple):
    """D-Adapt AdamW's state (optax's field names): :math:`m`, :math:`v`, :math:`s`,
    :math:`d`, :math:`r` and the count, as in :class:`ProdigyState` but without
    :math:`x_0`."""

    exp_avg: Updates
    exp_avg_sq: Updates
    grad_sum: Updates
    estim_lr: jax.Array
    numerator_weighted: jax.Array
    count: jax.Array


def _check_betas(betas) -> tuple:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}.")
    checks.decay_rate("betas[0]", betas[0])
    checks.decay_rate("betas[1]", betas[1])
    return tuple(betas)


def _l1_norm(tree_) -> jax.Array:
    return sum(jnp.sum(jnp.abs(x)) for x in jax.tree.leaves(tree_))


def _estimate(numerator, denominator, d):
    """:math:`\\max(d, \\text{numerator} / \\text{denominator})`, or :math:`d` while the
    denominator is 0 (all gradients so far exactly zero), where optax's 0/0 makes
    :math:`d` NaN for good."""
    positive = denominator > 0
    estimate = jnp.where(positive, numerator / jnp.where(positive, denominator, 1), d)
    return jnp.maximum(d, estimate).astype(d.dtype)


def _schedule_value(learning_rate, count):
    return learning_rate(count) if callable(learning_rate) else learning_rate


def _has_decay(weight_decay) -> bool:
    return not (isinstance(weight_decay, (int, float)) and weight_decay == 0)


def scale_by_prodigy(
    learning_rate: ScalarOrSchedule = 1.0,
    betas=(0.9, 0.999),
    beta3=None,
    eps=1e-8,
    estim_lr0=1e-6,
    estim_lr_coef=1.0,
    weight_decay=0.0,
    safeguard_warmup: bool = False,
) -> GradientTransformation:
    """Prodigy (Mishchenko & Defazio, 2023): AdamW with a learned step size :math:`d`.

    With :math:`\\eta_t` the learning rate (a multiplier, 1 by default) and
    :math:`\\hat\\eta_t = d_t \\eta_t \\sqrt{1 - \\beta_2^t} / (1 - \\beta_1^t)`:

    .. math::
       m_t = \\beta_1 m_{t-1} + (1 - \\beta_1)\\,d_t g_t, \\quad
       v_t = \\beta_2 v_{t-1} + (1 - \\beta_2)\\,d_t^2 g_t^2, \\\\
       s_t = \\beta_3 s_{t-1} + \\frac{\\hat\\eta_t d_t}{d_0}\\,g_t, \\quad
       r_t = \\beta_3 r_{t-1} + \\frac{d_t \\hat\\eta_t}{d_0}\\,
             \\langle g_t, x_0 - x_t \\rangle, \\\\
       d_{t+1} = \\max\\Big(d_t, \\frac{c\\,r_t}{\\|s_t\\|_1}\\Big), \\quad
       u_t = -\\hat\\eta_t \\Big(\\frac{m_t}{\\sqrt{v_t} + d_{t+1}\\epsilon}
             + \\lambda x_t\\Big)

    ``safeguard_warmup`` replaces :math:`\\hat\\eta_t` by :math:`d_t` in :math:`s_t`. The
    estimate :math:`d` is global (one scalar for the whole tree). Unlike optax, while all
    gradients so far are exactly zero :math:`d` stays as it is instead of becoming NaN.

    Args:
      learning_rate: :math:`\\eta_t`, a multiplier of :math:`d` (or a schedule, e.g. a
        linear decay from 1 to 0 after a short warm-up).
      betas: :math:`(\\beta_1, \\beta_2)`, both in [0, 1).
      beta3: :math:`\\beta_3 \\in [0, 1)`; default :math:`\\sqrt{\\beta_2}`.
      eps: :math:`\\epsilon > 0`, relative to :math:`d`.
      estim_lr0: :math:`d_0 > 0`, the initial under-estimate.
      estim_lr_coef: :math:`c > 0`, multiplies each new estimate.
      weight_decay: :math:`\\lambda \\ge 0`, decoupled (AdamW's).
      safeguard_warmup: keep the learning rate out of :math:`s` (for warm-up schedules).

    Reference:
      Mishchenko & Defazio, `Prodigy: An Expeditiously Adaptive Parameter-Free Learner
      <https://arxiv.org/abs/2306.06101>`_, 2023.
    """
    beta1, beta2 = _check_betas(betas)
    if beta3 is None:
        beta3 = beta2**0.5
    checks.learning_rate(learning_rate)
    checks.decay_rate("beta3", beta3)
    checks.positive("eps", eps)
    checks.positive("estim_lr0", estim_lr0)
    checks.positive("estim_lr_coef", estim_lr_coef)
    checks.non_negative("weight_decay", weight_decay)

    def init(params):
        dtype = tree.scalar_state_dtype(params)
        return ProdigyState(
            tree.zeros_like(params), tree.zeros_like(params), tree.zeros_like(params),
            jax.tree.map(jnp.copy, params), jnp.asarray(estim_lr0, dtype),
            jnp.zeros([], dtype), numerics.zero_count())

    def update(updates, state, params=None, **extra_args):
        del extra_args
        checks.params_given("prodigy", params)
        count = numerics.safe_increment(state.count)
        d = state.estim_lr
        correction = (1 - beta2**count) ** 0.5 / (1 - beta1**count)
        dlr = jnp.asarray(d * _schedule_value(learning_rate, state.count) * correction, d.dtype)
        sum_rate = d if safeguard_warmup else dlr
        # The distance travelled, read before the moments move on.
        moved = jax.tree.map(lambda p0, p: p0 - p, state.params0, params)
        numerator_acum = tree.real_vdot(updates, moved)

        def moments(g, m, v, s):
            dg = d * g
            return (g, beta1 * m + (1 - beta1) * dg, beta2 * v + (1 - beta2) * dg * dg,
                    beta3 * s + sum_rate * dg / estim_lr0)

        _, m, v, s = tree.map_rule(moments, updates, state.exp_avg, state.exp_avg_sq,
                                   state.grad_sum, names=("exp_avg", "exp_avg_sq", "grad_sum"))
        numerator = beta3 * state.numerator_weighted + (d / estim_lr0) * dlr * numerator_acum
        new_d = _estimate(estim_lr_coef * numerator, _l1_norm(s), d)

        def step(g, m, v, p):
            u = -dlr * m / (jnp.sqrt(v) + new_d * eps)
            if _has_decay(weight_decay):
                u = -weight_decay * dlr * p + u
            return u, m, v, p

        updates = tree.map_rule(step, updates, m, v, params, names=("m", "v", "params"))[0]
        return updates, ProdigyState(m, v, s, state.params0, new_d,
                                     numerator.astype(d.dtype), count)

    return flatten_invariant(GradientTransformation(init, update))


def scale_by_dadapt_adamw(
    learning_rate: ScalarOrSchedule = 1.0,
    betas=(0.9, 0.999),
    eps=1e-8,
    estim_lr0=1e-6,
    weight_decay=0.0,
) -> GradientTransformation:
    """D-Adapt AdamW (Defazio & Mishchenko, 2023): AdamW with a learned step size :math:`d`.

    With :math:`\\hat\\eta_t = d_t \\eta_t \\sqrt{1 - \\beta_2^t} / (1 - \\beta_1^t)` and
    :math:`\\gamma = \\sqrt{\\beta_2}`:

    .. math::
       r_t = \\gamma\\,r_{t-1} + (1 - \\gamma)\\,\\hat\\eta_t
             \\Big\\langle g_t, \\frac{s_{t-1}}{\\sqrt{v_{t-1}} + \\epsilon}\\Big\\rangle, \\\\
       m_t = \\beta_1 m_{t-1} + (1 - \\beta_1)\\,\\hat\\eta_t g_t, \\quad
       v_t = \\beta_2 v_{t-1} + (1 - \\beta_2)\\,g_t^2, \\quad
       s_t = \\gamma\\,s_{t-1} + (1 - \\gamma)\\,\\hat\\eta_t g_t, \\\\
       d_{t+1} = \\max\\Big(d_t, \\frac{r_t}{(1 - \\gamma)\\,\\|s_t\\|_1}\\Big), \\quad
       u_t = -\\frac{m_t}{\\sqrt{v_t} + \\epsilon} - \\lambda\\,\\hat\\eta_t x_t

    The estimate is global (one scalar for the whole tree). Unlike optax, while all
    gradients so far are exactly zero :math:`d` stays as it is instead of becoming NaN.

    Args:
      learning_rate: :math:`\\eta_t`, a multiplier of :math:`d` (or a schedule).
      betas: :math:`(\\beta_1, \\beta_2)`, both in [0, 1).
      eps: :math:`\\epsilon > 0`.
      estim_lr0: :math:`d_0 > 0`, the initial under-estimate.
      weight_decay: :math:`\\lambda \\ge 0`, decoupled (AdamW's).

    Reference:
      Defazio & Mishchenko, `Learning-Rate-Free Learning by D-Adaptation
      <https://arxiv.org/abs/2301.07733>`_, 2023.
    """
    beta1, beta2 = _check_betas(betas)
    checks.learning_rate(learning_rate)
    checks.positive("eps", eps)
    checks.positive("estim_lr0", estim_lr0)
    checks.non_negative("weight_decay", weight_decay)
    gamma = beta2**0.5

    def init(params):
        dtype = tree.scalar_state_dtype(params)
        return DAdaptAdamWState(
            tree.zeros_like(params), tree.zeros_like(params), tree.zeros_like(params),
            jnp.asarray(estim_lr0, dtype), jnp.zeros([], dtype), numerics.zero_count())

    def update(updates, state, params=None, **extra_args):
        del extra_args
        checks.params_given("dadapt_adamw", params)
        count = numerics.safe_increment(state.count)
        d = state.estim_lr
        correction = (1 - beta2**count) ** 0.5 / (1 - beta1**count)
        dlr = (d * _schedule_value(learning_rate, state.count) * correction).astype(d.dtype)
        weighted = jax.tree.map(lambda s, v: s / (jnp.sqrt(v) + eps), state.grad_sum,
                                state.exp_avg_sq)
        numerator_acum = tree.real_vdot(updates, weighted)

        def moments(g, m, v, s):
            return (g, beta1 * m + (1 - beta1) * dlr * g, beta2 * v + (1 - beta2) * g * g,
                    gamma * s + (1 - gamma) * dlr * g)

        _, m, v, s = tree.map_rule(moments, updates, state.exp_avg, state.exp_avg_sq,
                                   state.grad_sum, names=("exp_avg", "exp_avg_sq", "grad_sum"))
        numerator = gamma * state.numerator_weighted + (1 - gamma) * dlr * numerator_acum
        new_d = _estimate(numerator, (1 - gamma) * _l1_norm(s), d)

        def step(g, m, v, p):
            u = -m / (jnp.sqrt(v) + eps)
            if _has_decay(weight_decay):
                u = -weight_decay * dlr * p + u
            return u, m, v, p

        updates = tree.map_rule(step, updates, m, v, params, names=("m", "v", "params"))[0]
        return updates, DAdaptAdamWState(m, v, s, new_d, numerator.astype(d.dtype), count)

    return flatten_invariant(GradientTransformation(init, update))
