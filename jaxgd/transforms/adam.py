"""Adam and the variants that keep its moments and change only how they divide: AMSGrad
(a non-increasing denominator) and AdaMax (the infinity norm).

:func:`debiased_mean` is the first-moment estimate that every Adam-family block divides
(here, in :mod:`jaxgd.transforms.adam_variants` and in Muon's momentum).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import checks, numerics, tree
from jaxgd.core.base import GradientTransformation, Updates, flatten_invariant


class ScaleByAdamState(NamedTuple):
    """Step count and the moving averages of gradients :math:`m` and squares :math:`v`."""

    count: jax.Array
    mu: Updates
    nu: Updates


def zero_moments(params) -> ScaleByAdamState:
    """A zero step count and zero moments in each parameter's dtype: the initial state of
    the blocks that store ``ScaleByAdamState`` without a dtype of their own."""
    return ScaleByAdamState(numerics.zero_count(), tree.zeros_like(params), tree.zeros_like(params))


def debiased_mean(b1, count, *, nesterov: bool = False,
                  debias: bool = True) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """The per-array estimate of the mean gradient at step ``count`` (counted from 1),
    ``(g_t, m_t) -> m_hat_t``:

    .. math::
       \\hat m_t = \\frac{m_t}{1 - \\beta_1^t}, \\quad \\text{or with Nesterov (NAdam, Dozat 2016)}
       \\quad \\hat m_t = \\frac{\\beta_1 m_t}{1 - \\beta_1^{t+1}}
       + \\frac{(1 - \\beta_1)\\,g_t}{1 - \\beta_1^t}

    ``debias=False`` drops both denominators. The corrections are computed once per step,
    outside the per-array rule.
    """
    correction = numerics.bias_correction(b1, count) if debias else 1
    if not nesterov:
        return lambda g, m: m / correction
    next_correction = (numerics.bias_correction(b1, numerics.safe_increment(count))
                       if debias else 1)
    return lambda g, m: b1 * (m / next_correction) + (1 - b1) * (g / correction)


def scale_by_adam(
    b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *, nesterov: bool = False,
    nu_dtype=None,
) -> GradientTransformation:
    """Adam scaling (Kingma & Ba, 2015).

    .. math::
       m_t = \\beta_1 m_{t-1} + (1 - \\beta_1) g_t, \\quad
       v_t = \\beta_2 v_{t-1} + (1 - \\beta_2) g_t^2, \\\\
       \\hat m_t = \\frac{m_t}{1 - \\beta_1^t}, \\quad
       \\hat v_t = \\frac{v_t}{1 - \\beta_2^t}, \\quad
       u_t = \\frac{\\hat m_t}{\\sqrt{\\hat v_t + \\epsilon_{root}} + \\epsilon}

    With ``nesterov=True`` (NAdam, Dozat 2016) :math:`\\hat m_t` is replaced by
    :math:`\\beta_1 m_t / (1 - \\beta_1^{t+1}) + (1 - \\beta_1) g_t / (1 - \\beta_1^t)`.

    Args:
      b1: :math:`\\beta_1 \\in [0, 1)`.
      b2: :math:`\\beta_2 \\in [0, 1)`.
      eps: :math:`\\epsilon`, outside the square root; must be > 0 unless ``eps_root > 0``.
      eps_root: :math:`\\epsilon_{root} \\ge 0`, inside the square root.
      mu_dtype: the dtype :math:`m` is stored in (e.g. ``jnp.bfloat16``), or ``None`` for
        each parameter's dtype. As in optax, the update is computed before :math:`m` is
        rounded to it, in the wider of its and the gradient's dtypes.
      nesterov: use Nesterov momentum (NAdam).
      nu_dtype: the same for :math:`v` (optax has no such argument). A bfloat16 :math:`v`
        loses any change under half its rounding step (2^-9 to 2^-8 of itself): with
        :math:`\\beta_2 = 0.999` it rises where :math:`g_t^2` exceeds about
        :math:`3 v_{t-1}` but never decays, so the steps stay small after large gradients.
    """
    checks.adam_moments(b1, b2, eps, eps_root)
    mu_dtype = checks.state_dtype("mu_dtype", mu_dtype)
    nu_dtype = checks.state_dtype("nu_dtype", nu_dtype)

    def init(params):
        return ScaleByAdamState(numerics.zero_count(), tree.zeros_like(params, mu_dtype),
                                tree.zeros_like(params, nu_dtype))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = numerics.safe_increment(state.count)
        mean = debiased_mean(b1, count, nesterov=nesterov)
        correction2 = numerics.bias_correction(b2, count)
        rate1, rate2 = 1 - b1, 1 - b2

        def rule(g, m, v):
            m = rate1 * g + b1 * numerics.widened(m, g)
            v = rate2 * numerics.abs_sq(g) + b2 * numerics.widened(v, g)
            return mean(g, m) / (jnp.sqrt(v / correction2 + eps_root) + eps), m, v

        updates, mu, nu = tree.map_rule(rule, updates, state.mu, state.nu, names=("mu", "nu"))
        return updates, ScaleByAdamState(count, mu, nu)

    return flatten_invariant(GradientTransformation(init, update))


class ScaleByAmsgradState(NamedTuple):
    """Step count, moving averages :math:`m`, :math:`v` and the running maximum
    :math:`\\hat v^{max}`."""

    count: jax.Array
    mu: Updates
    nu: Updates
    nu_max: Updates


def scale_by_amsgrad(
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    mu_dtype=None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    nu_dtype=None,
) -> GradientTransformation:
    """AMSGrad scaling (Reddi et al., 2018): Adam with a non-increasing denominator.

    .. math::
       m_t = \\beta_1 m_{t-1} + (1 - \\beta_1) g_t, \\quad
       v_t = \\beta_2 v_{t-1} + (1 - \\beta_2) g_t^2, \\\\
       \\hat v^{max}_t = \\max(\\hat v^{max}_{t-1}, \\hat v_t), \\quad
       u_t = \\frac{\\hat m_t}{\\sqrt{\\hat v^{max}_t + \\epsilon_{root}} + \\epsilon}

    with :math:`\\hat m_t = m_t / (1 - \\beta_1^t)` and :math:`\\hat v_t = v_t / (1 - \\beta_2^t)`
    (each correction can be switched off; the paper uses neither).

    Args:
      b1: :math:`\\beta_1 \\in [0, 1)`.
      b2: :math:`\\beta_2 \\in [0, 1)`.
      eps: :math:`\\epsilon`, outside the square root; > 0 unless ``eps_root > 0``.
      eps_root: :math:`\\epsilon_{root} \\ge 0`, inside the square root.
      mu_dtype: the dtype :math:`m` is stored in, or ``None`` for each parameter's dtype
        (see :func:`jaxgd.scale_by_adam`).
      bias_correction_mu: debias :math:`m_t`.
      bias_correction_nu: debias :math:`v_t` before taking the maximum.
      nu_dtype: the same for :math:`v` and :math:`\\hat v^{max}` (not in optax).
    """
    checks.adam_moments(b1, b2, eps, eps_root)
    mu_dtype = checks.state_dtype("mu_dtype", mu_dtype)
    nu_dtype = checks.state_dtype("nu_dtype", nu_dtype)

    def init(params):
        # A separate buffer per field: a jitted step may donate the state.
        nu = (tree.zeros_like(params, nu_dtype) for _ in range(2))  # nu, nu_max
        return ScaleByAmsgradState(numerics.zero_count(), tree.zeros_like(params, mu_dtype),
                                   *nu)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = numerics.safe_increment(state.count)
        mean = debiased_mean(b1, count, debias=bias_correction_mu)
        correction2 = numerics.bias_correction(b2, count) if bias_correction_nu else 1

        def rule(g, m, v, v_max):
            m = (1 - b1) * g + b1 * numerics.widened(m, g)
            v = (1 - b2) * numerics.abs_sq(g) + b2 * numerics.widened(v, g)
            v_max = jnp.maximum(numerics.widened(v_max, g), v / correction2)
            return mean(g, m) / (jnp.sqrt(v_max + eps_root) + eps), m, v, v_max

        updates, mu, nu, nu_max = tree.map_rule(
            rule, updates, state.mu, state.nu, state.nu_max, names=("mu", "nu", "nu_max")
        )
        return updates, ScaleByAmsgradState(count, mu, nu, nu_max)

    return flatten_invariant(GradientTransformation(init, update))


def scale_by_adamax(b1=0.9, b2=0.999, eps=1e-8) -> GradientTransformation:
    """AdaMax scaling (Kingma & Ba, 2015, sec. 7): Adam with the infinity norm.

    .. math::
       m_t = \\beta_1 m_{t-1} + (1 - \\beta_1) g_t, \\quad
       v_t = \\max(\\beta_2 v_{t-1}, |g_t| + \\epsilon), \\quad
       u_t = \\frac{m_t}{(1 - \\beta_1^t)\\, v_t}

    :math:`v_t` needs no bias correction. State: ``ScaleByAdamState(count, mu, nu)``.

    Args:
      b1: :math:`\\beta_1 \\in [0, 1)`.
      b2: :math:`\\beta_2 \\in [0, 1)`, the decay of the running maximum.
      eps: :math:`\\epsilon > 0`, keeps :math:`v_t` away from zero.
    """
    checks.decay_rate("b1", b1)
    checks.decay_rate("b2", b2)
    checks.positive("eps", eps)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = numerics.safe_increment(state.count)
        mean = debiased_mean(b1, count)

        def rule(g, m, v):
            m = (1 - b1) * g + b1 * m
            v = jnp.maximum(jnp.abs(g) + eps, b2 * v)
            return mean(g, m) / v, m, v

        updates, mu, nu = tree.map_rule(rule, updates, state.mu, state.nu, names=("mu", "nu"))
        return updates, ScaleByAdamState(count, mu, nu)

    return flatten_invariant(GradientTransformation(zero_moments, update))

