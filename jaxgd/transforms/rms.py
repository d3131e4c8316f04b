"""Per-coordinate scaling by a root mean square of past gradients: AdaGrad (the sum),
RMSProp (a moving average, plain and centered) and Adadelta (the ratio of two of them)."""

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


class ScaleByAdaDeltaState(NamedTuple):
    """Moving averages of squared gradients :math:`E[g^2]` and squared steps
    :math:`E[\\Delta x^2]`."""

    e_g: Updates
    e_x: Updates


def scale_by_adadelta(rho=0.9, eps=1e-6) -> GradientTransformation:
    """Adadelta scaling (Zeiler, 2012): the ratio of two RMS values gives the step its
    units, so no learning rate is needed.

    .. math::
       E[g^2]_t = \\rho E[g^2]_{t-1} + (1 - \\rho) g_t^2, \\quad
       u_t = \\frac{\\sqrt{E[\\Delta x^2]_{t-1} + \\epsilon}}{\\sqrt{E[g^2]_t + \\epsilon}}\\,g_t,
       \\\\
       E[\\Delta x^2]_t = \\rho E[\\Delta x^2]_{t-1} + (1 - \\rho) u_t^2

    :math:`u_t` points *up* the gradient, like every ``scale_by_*`` block: follow it with
    :func:`jaxgd.scale_by_learning_rate` (or use :func:`jaxgd.adadelta`) to descend.

    Args:
      rho: :math:`\\rho \\in [0, 1)`.
      eps: :math:`\\epsilon > 0`; it also sets the size of the first steps,
        :math:`\\sqrt{\\epsilon}` per coordinate at most.
    """
    checks.decay_rate("rho", rho)
    checks.positive("eps", eps)

    def init(params):
        return ScaleByAdaDeltaState(tree.zeros_like(params), tree.zeros_like(params))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args

        def rule(g, e_g, e_x):
            e_g = (1 - rho) * numerics.abs_sq(g) + rho * e_g
            u = jnp.sqrt(e_x + eps) / jnp.sqrt(e_g + eps) * g
            e_x = (1 - rho) * numerics.abs_sq(u) + rho * e_x
            return u, e_g, e_x

        updates, e_g, e_x = tree.map_rule(
            rule, updates, state.e_g, state.e_x, names=("e_g", "e_x")
        )
        return updates, ScaleByAdaDeltaState(e_g, e_x)

    return flatten_invariant(GradientTransformation(init, update))
