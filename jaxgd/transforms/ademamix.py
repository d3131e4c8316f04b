"""AdEMAMix: Adam's step plus a slow momentum that remembers far older gradients, and its
simplified one-momentum form."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import checks, numerics, tree
from jaxgd.core.base import GradientTransformation, Updates, flatten_invariant


def _at(value, count):
    """A hyperparameter's value at ``count``: a schedule is called, a number is itself."""
    return value(count) if callable(value) else value


class ScaleByAdemamixState(NamedTuple):
    """Step counts (of the fast moments, and of the slow one's schedules, as optax keeps
    them), the fast and slow averages of gradients :math:`m_1, m_2` and of squares
    :math:`\\nu`."""

    count: jax.Array
    count_m2: jax.Array
    m1: Updates
    m2: Updates
    nu: Updates


def scale_by_ademamix(
    b1=0.9, b2=0.999, b3=0.9999, alpha=6.0, eps=1e-8, eps_root=0.0, mu_dtype=None,
    *, nu_dtype=None,
) -> GradientTransformation:
    """AdEMAMix scaling (Pagliardini et al., 2024): Adam's debiased fast momentum plus
    :math:`\\alpha` times a slow one.

    .. math::
       m_{1,t} = \\beta_1 m_{1,t-1} + (1 - \\beta_1) g_t, \\quad
       m_{2,t} = \\beta_3 m_{2,t-1} + (1 - \\beta_3) g_t, \\quad
       \\nu_t = \\beta_2 \\nu_{t-1} + (1 - \\beta_2) g_t^2, \\\\
       u_t = \\frac{m_{1,t} / (1 - \\beta_1^t) + \\alpha\\, m_{2,t}}
                  {\\sqrt{\\nu_t / (1 - \\beta_2^t) + \\epsilon_{root}} + \\epsilon}

    The slow average :math:`m_2` is not debiased: it is meant to fill slowly, and the
    paper warms :math:`\\alpha` and :math:`\\beta_3` up over the first steps, which the
    schedules ``alpha`` and ``b3`` (functions of the step count, from 0) do.

    Args:
      b1: :math:`\\beta_1 \\in [0, 1)`, the fast momentum's decay.
      b2: :math:`\\beta_2 \\in [0, 1)`, the second moment's decay.
      b3: :math:`\\beta_3 \\in [0, 1)`, the slow momentum's decay, or a schedule.
      alpha: :math:`\\alpha`, the weight of the slow momentum, or a schedule.
      eps: :math:`\\epsilon`, outside the square root; must be > 0 unless ``eps_root > 0``.
      eps_root: :math:`\\epsilon_{root} \\ge 0`, inside the square root.
      mu_dtype: the dtype :math:`m_1` and :math:`m_2` are stored in, or ``None`` for each
        parameter's. The update is computed before they are rounded to it.
      nu_dtype: the same for :math:`\\nu` (optax stores it in ``mu_dtype``, see
        :func:`jaxgd.ademamix`).

    Reference:
      Pagliardini, Ablin & Grangier, `The AdEMAMix Optimizer: Better, Faster, Older
      <https://arxiv.org/abs/2409.03137>`_, 2024.
    """
    checks.adam_moments(b1, b2, eps, eps_root)
    checks.decay_rate("b3", b3)
    checks.finite("alpha", alpha)
    mu_dtype = checks.state_dtype("mu_dtype", mu_dtype)
    nu_dtype = checks.state_dtype("nu_dtype", nu_dtype)

    def init(params):
        return ScaleByAdemamixState(
            numerics.zero_count(), numerics.zero_count(), tree.zeros_like(params, mu_dtype),
            tree.zeros_like(params, mu_dtype), tree.zeros_like(params, nu_dtype))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        slow_decay, weight = _at(b3, state.count_m2), _at(alpha, state.count_m2)
        count = numerics.safe_increment(state.count)
        correction1 = numerics.bias_correction(b1, count)
        correction2 = numerics.bias_correction(b2, count)

        def rule(g, m1, m2, nu):
            m1 = (1 - b1) * g + b1 * numerics.widened(m1, g)
            m2 = (1 - slow_decay) * g + slow_decay * numerics.widened(m2, g)
            nu = (1 - b2) * numerics.abs_sq(g) + b2 * numerics.widened(nu, g)
            step = (m1 / correction1 + weight * m2) / (jnp.sqrt(nu / correction2 + eps_root)
                                                       + eps)
            return step, m1, m2, nu

        updates, m1, m2, nu = tree.map_rule(rule, updates, state.m1, state.m2, state.nu,
                                            names=("m1", "m2", "nu"))
        return updates, ScaleByAdemamixState(
            count, numerics.safe_increment(state.count_m2), m1, m2, nu)

    return flatten_invariant(GradientTransformation(init, update))


class ScaleBySimplifiedAdEMAMixState(NamedTuple):
    """Step count :math:`t`, the accumulated momentum :math:`m` and the average of squares
    :math:`n`."""

    t: jax.Array
    m: Updates
    n: Updates


def scale_by_simplified_ademamix(
    b1=0.99, b2=0.95, alpha=0.0, eps=1e-8, eps_root=0.0
) -> GradientTransformation:
    """Simplified AdEMAMix scaling (Morwani et al., 2025): one undamped momentum, mixed
    with the current gradient.

    .. math::
       m_t = \\beta_1 m_{t-1} + g_t, \\quad
       n_t = \\beta_2 n_{t-1} + (1 - \\beta_2) g_t^2, \\quad
       u_t = \\frac{m_t + \\alpha\\, g_t}{\\sqrt{n_t / (1 - \\beta_2^t) + \\epsilon_{root}}
             + \\epsilon}

    :math:`m_t` sums the gradients without the factor :math:`1 - \\beta_1` and is not
    debiased, so it grows to about :math:`1 / (1 - \\beta_1)` times a steady gradient: the
    learning rate is correspondingly smaller than Adam's. With :math:`\\alpha = 0` it is
    Adam with learning rate :math:`\\eta / (1 - \\beta_1)` and no first-moment bias
    correction.

    Args:
      b1: :math:`\\beta_1 \\in [0, 1)`, the momentum's decay.
      b2: :math:`\\beta_2 \\in [0, 1)`, the second moment's decay.
      alpha: :math:`\\alpha`, the weight of the current gradient, or a schedule.
      eps: :math:`\\epsilon`, outside the square root; must be > 0 unless ``eps_root > 0``.
      eps_root: :math:`\\epsilon_{root} \\ge 0`, inside the square root.

    Reference:
      Morwani, Shapira, Vyas, Malach, Kakade & Janson, `Connections between Schedule-Free
      Optimizers, AdEMAMix, and Accelerated SGD Variants
      <https://arxiv.org/abs/2502.02431>`_, 2025.
    """
    checks.adam_moments(b1, b2, eps, eps_root)
    checks.finite("alpha", alpha)

    def init(params):
        return ScaleBySimplifiedAdEMAMixState(
            numerics.zero_count(), tree.zeros_like(params), tree.zeros_like(params))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        weight = _at(alpha, state.t)
        t = numerics.safe_increment(state.t)
        correction2 = numerics.bias_correction(b2, t)

        def rule(g, m, n):
            m = g + b1 * numerics.widened(m, g)
            n = (1 - b2) * numerics.abs_sq(g) + b2 * numerics.widened(n, g)
            return (m + weight * g) / (jnp.sqrt(n / correction2 + eps_root) + eps), m, n

        updates, m, n = tree.map_rule(rule, updates, state.m, state.n, names=("m", "n"))
        return updates, ScaleBySimplifiedAdEMAMixState(t, m, n)

    return flatten_invariant(GradientTransformation(init, update))
