"""Adam variants that change its moment estimates: AdaBelief, Yogi and RAdam.

Each is a per-array rule lifted with :func:`jaxgd.core.tree.map_rule`; the step counts and
every hyperparameter may be traced, so branching on values is done with ``jnp.where``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import checks, numerics, tree
from jaxgd.core.base import GradientTransformation, Updates, flatten_invariant
from jaxgd.transforms.adam import ScaleByAdamState, debiased_mean, zero_moments


class ScaleByBeliefState(NamedTuple):
    """Step count, the moving average :math:`m` and the belief :math:`s`, the moving
    average of :math:`(g - m)^2`."""

    count: jax.Array
    mu: Updates
    nu: Updates


def scale_by_belief(
    b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16, *, nesterov: bool = False
) -> GradientTransformation:
    """AdaBelief scaling (Zhuang et al., 2020): divide by the spread of the gradient
    around its own prediction instead of by its size.

    .. math::
       m_t = \\beta_1 m_{t-1} + (1 - \\beta_1) g_t, \\quad
       s_t = \\beta_2 s_{t-1} + (1 - \\beta_2)(g_t - m_t)^2 + \\epsilon_{root}, \\\\
       u_t = \\frac{m_t / (1 - \\beta_1^t)}{\\sqrt{s_t / (1 - \\beta_2^t)} + \\epsilon}

    ``nesterov=True`` uses NAdam's first-moment estimate (see :func:`jaxgd.scale_by_adam`).

    Args:
      b1: :math:`\\beta_1 \\in [0, 1)`.
      b2: :math:`\\beta_2 \\in [0, 1)`.
      eps: :math:`\\epsilon` outside the square root (optax: 1e-16; the paper: 1e-8).
      eps_root: :math:`\\epsilon_{root}` added to :math:`s_t` every step (optax: 1e-16;
        the paper: 0). Keep it > 0 to differentiate through the update.
      nesterov: Nesterov momentum.
    """
    checks.adam_moments(b1, b2, eps, eps_root)

    def init(params):
        return ScaleByBeliefState(*zero_moments(params))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = numerics.safe_increment(state.count)
        mean = debiased_mean(b1, count, nesterov=nesterov)
        correction2 = numerics.bias_correction(b2, count)

        def rule(g, m, s):
            m = (1 - b1) * g + b1 * m
            s = (1 - b2) * numerics.abs_sq(g - m) + b2 * s + eps_root
            m_hat = mean(g, m)
            return m_hat / (jnp.sqrt(s / correction2) + eps), m, s

        updates, mu, nu = tree.map_rule(rule, updates, state.mu, state.nu, names=("mu", "nu"))
        return updates, ScaleByBeliefState(count, mu, nu)

    return flatten_invariant(GradientTransformation(init, update))


def scale_by_yogi(
    b1=0.9, b2=0.999, eps=1e-3, eps_root=0.0, initial_accumulator_value=1e-6
) -> GradientTransformation:
    """Yogi scaling (Zaheer et al., 2018): the second moment moves additively, by at most
    :math:`(1 - \\beta_2) g_t^2` per step, so the effective rate cannot jump up.

    .. math::
       m_t = \\beta_1 m_{t-1} + (1 - \\beta_1) g_t, \\quad
       v_t = v_{t-1} - (1 - \\beta_2)\\,\\mathrm{sign}(v_{t-1} - g_t^2)\\, g_t^2, \\\\
       u_t = \\frac{m_t / (1 - \\beta_1^t)}{\\sqrt{v_t / (1 - \\beta_2^t) + \\epsilon_{root}}
             + \\epsilon}

    State: ``ScaleByAdamState(count, mu, nu)``; both moments start at
    ``initial_accumulator_value``.

    Args:
      b1: :math:`\\beta_1 \\in [0, 1)`.
      b2: :math:`\\beta_2 \\in [0, 1)`.
      eps: :math:`\\epsilon` outside the square root (1e-3, as in the paper).
      eps_root: :math:`\\epsilon_{root} \\ge 0`, inside the square root.
      initial_accumulator_value: :math:`m_0 = v_0 \\ge 0`.
    """
    checks.adam_moments(b1, b2, eps, eps_root)
    checks.non_negative("initial_accumulator_value", initial_accumulator_value)

    def init(params):
        # A separate buffer per field: a jitted step may donate the state.
        return ScaleByAdamState(numerics.zero_count(),
                                *(tree.full_like(params, initial_accumulator_value)
                                  for _ in range(2)))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = numerics.safe_increment(state.count)
        mean = debiased_mean(b1, count)
        correction2 = numerics.bias_correction(b2, count)

        def rule(g, m, v):
            g_sq = numerics.abs_sq(g)
            m = (1 - b1) * g + b1 * m
            v = v - (1 - b2) * jnp.sign(v - g_sq) * g_sq
            return mean(g, m) / (jnp.sqrt(v / correction2 + eps_root) + eps), m, v

        updates, mu, nu = tree.map_rule(rule, updates, state.mu, state.nu, names=("mu", "nu"))
        return updates, ScaleByAdamState(count, mu, nu)

    return flatten_invariant(GradientTransformation(init, update))


def _shrink(y: jax.Array) -> jax.Array:
    """:math:`a(y) = 2/y - 2/(e^y - 1)` for :math:`y \\ge 0`, :math:`+\\infty` included: it falls
    from 1 at 0 like :math:`1 - y/6`. Below 1 the terms cancel, so a series is used there."""
    small = y < 1
    ys = jnp.where(small, y, 0.0)
    y2 = ys * ys
    series = 1 - ys * (1 / 6 - y2 * (1 / 360 - y2 * (1 / 15120 - y2 / 604800)))
    yl = jnp.where(small, 1.0, y)
    return jnp.where(small, series, 2 / yl - 2 / jnp.expm1(yl))


def _radam_rectifier(b2, count, threshold) -> tuple[jax.Array, jax.Array]:
    """RAdam's variance rectification :math:`r_t` and whether to apply it at this step.

    :math:`\\rho_t` is the difference of two terms of size :math:`2 / (1 - \\beta_2)`
    (2000 for 0.999): computed as written, float32 loses ~1e-4 of it, ~1e-4 of :math:`r_t`
    at the first rectified steps. With :math:`L = -\\log\\beta_2` the large terms cancel
    exactly: :math:`\\rho_t = t\\,a(tL) + 1 - a(L)` (``_shrink``), accurate to float32
    rounding.

    Both branches are computed (the count is traced), so the discarded one is kept finite:
    a NaN there would still poison gradients taken through ``jnp.where``.
    """
    b2 = jnp.asarray(b2, dtype=jnp.result_type(float))
    t = jnp.asarray(count, b2.dtype)
    log_decay = -jnp.log1p(b2 - 1)
    rho = t * _shrink(t * log_decay) + (1 - _shrink(log_decay))
    rho_inf = 2 / (1 - b2) - 1
    # r_t is real only for rho > 4 (Liu et al., 2020), whatever the threshold says.
    rectify = (rho >= threshold) & (rho > 4)
    numerator = jnp.where(rectify, (rho - 4) * (rho - 2) / rho, 1.0)
    denominator = jnp.where(rectify, (rho_inf - 4) * (rho_inf - 2) / rho_inf, 1.0)
    return jnp.sqrt(numerator / denominator), rectify


def scale_by_radam(
    b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, threshold=5.0, *, nesterov: bool = False
) -> GradientTransformation:
    """Rectified Adam scaling (Liu et al., 2020).

    .. math::
       \\rho_\\infty = \\frac{2}{1 - \\beta_2} - 1, \\quad
       \\rho_t = \\rho_\\infty - \\frac{2 t \\beta_2^t}{1 - \\beta_2^t}, \\quad
       r_t = \\sqrt{\\frac{(\\rho_t - 4)(\\rho_t - 2)\\rho_\\infty}
                         {(\\rho_\\infty - 4)(\\rho_\\infty - 2)\\rho_t}}, \\\\
       u_t = r_t\\,\\frac{\\hat m_t}{\\sqrt{\\hat v_t + \\epsilon_{root}} + \\epsilon}
       \\text{ if } \\rho_t \\ge \\text{threshold}, \\text{ else } u_t = \\hat m_t

    with Adam's :math:`\\hat m_t`, :math:`\\hat v_t` (NAdam's :math:`\\hat m_t` if
    ``nesterov``). State: ``ScaleByAdamState(count, mu, nu)``.

    Differences from optax, each where optax is inaccurate or NaN:

    * :math:`\\rho_t` is computed without cancellation (see ``_radam_rectifier``) and from a
      single value of :math:`\\beta_2`. optax's float32 :math:`\\rho_t` loses ~1e-4 to rounding, and
      for a Python-float ``b2`` mixes a float64 :math:`\\rho_\\infty` with a float32
      :math:`\\beta_2^t`, shifting :math:`\\rho_t` by 0.026 at 0.999. Its first rectified
      steps are off by up to ~1%; these agree with optax run in float64 to 1e-5.
    * With ``threshold < 4``, optax's update is NaN on the steps with
      :math:`2 < \\rho_t < 4`, where :math:`r_t` is imaginary; here those steps stay
      unrectified (:math:`u_t = \\hat m_t`), as in the paper.
    * optax differentiates to NaN through its early, unrectified steps; here the discarded
      branch is kept finite.

    Args:
      b1: :math:`\\beta_1 \\in [0, 1)`.
      b2: :math:`\\beta_2 \\in [0, 1)`.
      eps: :math:`\\epsilon`, outside the square root.
      eps_root: :math:`\\epsilon_{root} \\ge 0`, inside the square root.
      threshold: rectify once :math:`\\rho_t` reaches it (5, as in PyTorch; the paper: 4).
      nesterov: Nesterov momentum.
    """
    checks.adam_moments(b1, b2, eps, eps_root)
    checks.finite("threshold", threshold)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = numerics.safe_increment(state.count)
        mean = debiased_mean(b1, count, nesterov=nesterov)
        correction2 = numerics.bias_correction(b2, count)
        r, rectify = _radam_rectifier(b2, count, threshold)

        def rule(g, m, v):
            m = (1 - b1) * g + b1 * m
            v = (1 - b2) * numerics.abs_sq(g) + b2 * v
            m_hat = mean(g, m)
            adaptive = r * m_hat / (jnp.sqrt(v / correction2 + eps_root) + eps)
            return jnp.where(rectify, adaptive, m_hat), m, v

        updates, mu, nu = tree.map_rule(rule, updates, state.mu, state.nu, names=("mu", "nu"))
        return updates, ScaleByAdamState(count, mu, nu)

    return flatten_invariant(GradientTransformation(zero_moments, update))
