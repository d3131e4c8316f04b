"""Per-coordinate adaptive scaling: AdaGrad, RMSProp (plain and centered) and Adam."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import checks, numerics, tree
from jaxgd.core.base import GradientTransformation, Updates, flatten_invariant


class ScaleByAdagradState(NamedTuple):
    """The running sum of squared gradients :math:`G`."""

    sum_of_squares: Updates


def scale_by_adagrad(initial_accumulator_value=0.1, eps=1e-7) -> GradientTransformation:
    """AdaGrad scaling (Duchi et al., 2011).

    .. math::
       G_t = G_{t-1} + g_t^2, \\qquad u_t = \\frac{g_t}{\\sqrt{G_t + \\epsilon}}
       \\quad (u_t = 0 \\text{ where } G_t = 0)

    Args:
      initial_accumulator_value: :math:`G_0 \\ge 0` (optax: 0.1; PyTorch: 0).
      eps: :math:`\\epsilon > 0` inside the square root.
    """
    checks.non_negative("initial_accumulator_value", initial_accumulator_value)
    checks.positive("eps", eps)

    def rule(g, acc):
        acc = numerics.abs_sq(g) + acc
        return jnp.where(acc > 0, jax.lax.rsqrt(acc + eps), 0.0) * g, acc

    def init(params):
        return ScaleByAdagradState(tree.full_like(params, initial_accumulator_value))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        updates, acc = tree.map_rule(rule, updates, state.sum_of_squares, names=("sum_of_squares",))
        return updates, ScaleByAdagradState(acc)

    return flatten_invariant(GradientTransformation(init, update))


class ScaleByRmsState(NamedTuple):
    """Step count and the moving average of squared gradients :math:`\\nu`."""

    count: jax.Array
    nu: Updates


def _rms_denominator(nu, eps, eps_in_sqrt: bool):
    return jax.lax.rsqrt(nu + eps) if eps_in_sqrt else 1 / (jnp.sqrt(nu) + eps)


def scale_by_rms(
    decay=0.9,
    eps=1e-8,
    initial_scale=0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> GradientTransformation:
    """RMSProp scaling (Hinton, 2012).

    .. math::
       \\nu_t = \\rho\\,\\nu_{t-1} + (1 - \\rho)\\,g_t^2, \\qquad
       u_t = \\frac{g_t}{\\sqrt{\\hat\\nu_t + \\epsilon}}

    with :math:`\\hat\\nu_t = \\nu_t / (1 - \\rho^t)` if ``bias_correction`` else
    :math:`\\nu_t`.

    Args:
      decay: :math:`\\rho \\in [0, 1)` (optax: 0.9; PyTorch's ``alpha``: 0.99).
      eps: :math:`\\epsilon > 0`.
      initial_scale: :math:`\\nu_0`.
      eps_in_sqrt: ``True`` (optax) puts :math:`\\epsilon` inside the square root;
        ``False`` gives PyTorch's :math:`g / (\\sqrt{\\hat\\nu} + \\epsilon)`.
      bias_correction: divide by :math:`1 - \\rho^t` as Adam does.
    """
    checks.decay_rate("decay", decay)
    checks.non_negative("initial_scale", initial_scale)
    checks.positive("eps", eps)

    def init(params):
        return ScaleByRmsState(numerics.zero_count(), tree.full_like(params, initial_scale))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = numerics.safe_increment(state.count)
        correction = numerics.bias_correction(decay, count) if bias_correction else None
        rate = 1 - decay

        def rule(g, nu):
            nu = rate * numerics.abs_sq(g) + decay * nu
            nu_hat = nu if correction is None else nu / correction
            return _rms_denominator(nu_hat, eps, eps_in_sqrt) * g, nu

        updates, nu = tree.map_rule(rule, updates, state.nu, names=("nu",))
        return updates, ScaleByRmsState(count, nu)

    return flatten_invariant(GradientTransformation(init, update))


class ScaleByStddevState(NamedTuple):
    """Step count and the moving averages of gradients :math:`\\mu` and squares :math:`\\nu`."""

    count: jax.Array
    mu: Updates
    nu: Updates


def scale_by_stddev(
    decay=0.9,
    eps=1e-8,
    initial_scale=0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> GradientTransformation:
    """Centered RMSProp scaling: divide by a running estimate of the standard deviation.

    .. math::
       \\mu_t = \\rho\\,\\mu_{t-1} + (1 - \\rho)\\,g_t, \\quad
       \\nu_t = \\rho\\,\\nu_{t-1} + (1 - \\rho)\\,g_t^2, \\quad
       u_t = \\frac{g_t}{\\sqrt{\\hat\\nu_t - \\hat\\mu_t^2 + \\epsilon}}

    Args: as :func:`scale_by_rms`.
    """
    checks.decay_rate("decay", decay)
    checks.non_negative("initial_scale", initial_scale)
    checks.positive("eps", eps)

    def init(params):
        return ScaleByStddevState(
            numerics.zero_count(), tree.zeros_like(params), tree.full_like(params, initial_scale)
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = numerics.safe_increment(state.count)
        correction = numerics.bias_correction(decay, count) if bias_correction else None
        rate = 1 - decay

        def rule(g, mu, nu):
            mu = rate * g + decay * mu
            nu = rate * numerics.abs_sq(g) + decay * nu
            mu_hat, nu_hat = (mu, nu) if correction is None else (mu / correction,
                                                                   nu / correction)
            return _rms_denominator(nu_hat - numerics.abs_sq(mu_hat), eps, eps_in_sqrt) * g, mu, nu

        updates, mu, nu = tree.map_rule(rule, updates, state.mu, state.nu, names=("mu", "nu"))
        return updates, ScaleByStddevState(count, mu, nu)

    return flatten_invariant(GradientTransformation(init, update))


class ScaleByAdamState(NamedTuple):
    """Step count and the moving averages of gradients :math:`m` and squares :math:`v`."""

    count: jax.Array
    mu: Updates
    nu: Updates


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
        correction1 = numerics.bias_correction(b1, count)
        correction2 = numerics.bias_correction(b2, count)
        if nesterov:
            next_correction1 = numerics.bias_correction(b1, numerics.safe_increment(count))

        rate1, rate2 = 1 - b1, 1 - b2

        def rule(g, m, v):
            m = rate1 * g + b1 * numerics.widened(m, g)
            v = rate2 * numerics.abs_sq(g) + b2 * numerics.widened(v, g)
            if nesterov:
                m_hat = b1 * (m / next_correction1) + rate1 * (g / correction1)
            else:
                m_hat = m / correction1
            return m_hat / (jnp.sqrt(v / correction2 + eps_root) + eps), m, v

        updates, mu, nu = tree.map_rule(rule, updates, state.mu, state.nu, names=("mu", "nu"))
        return updates, ScaleByAdamState(count, mu, nu)

    return flatten_invariant(GradientTransformation(init, update))
