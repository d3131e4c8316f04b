"""Gradient descent variants: noisy, sign-based, Rprop, Polyak step size, optimistic.

Arguments, defaults and formulas are optax's (0.2.8), except where a docstring says so.
"""

from __future__ import annotations

import jax

from jaxgd.core.base import GradientTransformation, chain
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.transforms.noise import add_noise
from jaxgd.transforms.optimistic import scale_by_optimistic_gradient
from jaxgd.transforms.polyak import PolyakVariant, scale_by_polyak
from jaxgd.transforms.rprop import scale_by_rprop
from jaxgd.transforms.scaling import ScalarOrSchedule, scale, scale_by_learning_rate
from jaxgd.transforms.sign import scale_by_sign


def noisy_sgd(
    learning_rate: ScalarOrSchedule,
    eta=0.01,
    gamma=0.55,
    key: jax.Array | int | None = None,
    *,
    seed: int | None = None,
) -> GradientTransformation:
    """Gradient descent with annealed Gaussian gradient noise (Neelakantan et al., 2015).

    .. math::
       p_{t+1} = p_t - \\eta_t\\,(g_t + \\sigma_t \\xi_t), \\qquad
       \\sigma_t^2 = \\frac{\\eta}{t^{\\gamma}}, \\quad \\xi_t \\sim \\mathcal N(0, I)

    The PRNG key is held in the state and split at every step. The same ``key`` gives the
    same noise as ``optax.noisy_sgd``.

    Args:
      learning_rate: :math:`\\eta_t`, or a schedule.
      eta: :math:`\\eta \\ge 0`, the initial noise variance.
      gamma: :math:`\\gamma \\ge 0`, the decay exponent of the variance.
      key: a PRNG key (``jax.random.key(0)``) or an int seed; ``None`` means seed 0.
      seed: an int seed, optax's older spelling of ``key`` (give at most one of the two).

    Reference:
      Neelakantan et al., `Adding Gradient Noise Improves Learning for Very Deep Networks
      <https://arxiv.org/abs/1511.06807>`_, 2015.
    """
    return chain(add_noise(eta, gamma, key, seed=seed), scale_by_learning_rate(learning_rate))


# The key is not a hyperparameter: an int seed must stay an int, not become a float array.
noisy_sgd = inject_hyperparams(noisy_sgd, static_args=("key", "seed"))


@inject_hyperparams
def sign_sgd(learning_rate: ScalarOrSchedule) -> GradientTransformation:
    """signSGD (Bernstein et al., 2018): step by the sign of each gradient coordinate.

    .. math:: p_{t+1} = p_t - \\eta_t\\,\\operatorname{sign}(g_t)

    Args:
      learning_rate: :math:`\\eta_t`, or a schedule.

    Reference:
      Bernstein et al., `signSGD: Compressed Optimisation for Non-Convex Problems
      <https://arxiv.org/abs/1802.04434>`_, 2018.
    """
    return chain(scale_by_sign(), scale_by_learning_rate(learning_rate))


@inject_hyperparams
def rprop(
    learning_rate, eta_minus=0.5, eta_plus=1.2, min_step_size=1e-6, max_step_size=50.0
) -> GradientTransformation:
    """Rprop (Riedmiller & Braun, 1993): per-coordinate step sizes adapted to sign changes.

    iRprop⁻ variant: each step size grows by :math:`\\eta^+` while the gradient keeps its
    sign and shrinks by :math:`\\eta^-` when it flips (skipping that step).

    .. math::
       p_{t+1} = p_t - \\Delta_t \\operatorname{sign}(g_t), \\qquad
       \\Delta_t = \\operatorname{clip}(\\eta^{\\pm} \\Delta_{t-1},
       \\Delta_{min}, \\Delta_{max})

    See :func:`jaxgd.transforms.rprop.scale_by_rprop` for the exact rule.

    Differs from optax 0.2.8 on purpose: optax returns the step computed at the
    *previous* call (its first update is 0, and every step uses the last gradient's
    sign); here step :math:`t` uses :math:`g_t`, as in the papers. The states are the same.

    Args:
      learning_rate: :math:`\\Delta_0 > 0`, the initial step size. It is read by ``init``
        only: changing it with :func:`jaxgd.set_hyperparams` later has no effect.
      eta_minus: :math:`\\eta^- \\in (0, 1)`.
      eta_plus: :math:`\\eta^+ > 1`.
      min_step_size: :math:`\\Delta_{min}`.
      max_step_size: :math:`\\Delta_{max}`.

    Reference:
      Igel & Hüsken, `Empirical evaluation of the improved Rprop learning algorithms
      <https://doi.org/10.1016/S0925-2312(01)00700-7>`_, 2003.
    """
    return chain(
        scale_by_rprop(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size),
        scale(-1.0),
    )


@inject_hyperparams
def polyak_sgd(
    max_learning_rate=1.0,
    scaling: ScalarOrSchedule = 1.0,
    f_min=0.0,
    eps=0.0,
    variant: PolyakVariant = "sps",
) -> GradientTransformation:
    """Gradient descent with the stochastic Polyak step size (Loizou et al., 2021).

    .. math::
       p_{t+1} = p_t - s_t \\min\\left\\{\\frac{f(p_t) - f^\\star}{\\|g_t\\|^2 + \\epsilon},
       \\gamma_{max}\\right\\} g_t

    ``"sps+"`` (Garrigos et al., 2023) replaces :math:`f - f^\\star` by its positive part.
    ``update`` needs the current loss: ``opt.update(grads, state, params, value=loss)``.
    Choose :math:`f^\\star` with care: 0 suits losses that can reach 0 (interpolation);
    an overestimate stops short of the minimum.

    Differs from optax 0.2.8 on purpose: optax scales the gradient by ``scaling`` *before*
    computing the step size, which gives :math:`\\min\\{(f - f^\\star)/(s\\|g\\|^2),
    s\\gamma_{max}\\}` (a scaling of 0.5 *doubles* the Polyak step); here :math:`s`
    multiplies the step, as the formula above (and optax's own docstring) says. The two
    agree for the default ``scaling=1``.

    Args:
      max_learning_rate: :math:`\\gamma_{max} \\ge 0`.
      scaling: :math:`s_t`, a factor on the step (or a schedule).
      f_min: :math:`f^\\star`, the (estimated) minimum of the loss.
      eps: :math:`\\epsilon \\ge 0`, added to the squared gradient norm.
      variant: ``"sps"`` or ``"sps+"``.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgd
      >>> from jaxgd.optimizers.first_order import polyak_sgd
      >>> loss = lambda x: jnp.sum(x**2)
      >>> opt, x = polyak_sgd(), jnp.array([1.0, -2.0])
      >>> state = opt.init(x)
      >>> value, grad = jax.value_and_grad(loss)(x)
      >>> updates, state = opt.update(grad, state, x, value=value)
      >>> jaxgd.apply_updates(x, updates)  # step f / ||g||^2 = 5 / 20: halfway
      Array([ 0.5, -1. ], dtype=float32)

    References:
      Loizou et al., `Stochastic Polyak Step-size for SGD
      <https://arxiv.org/abs/2002.10542>`_, 2021. Garrigos et al., `Function value
      learning: Adaptive learning rates based on the Polyak stepsize and function
      splitting in ERM <https://arxiv.org/abs/2307.14528>`_, 2023.
    """
    return chain(
        scale_by_polyak(f_min=f_min, max_learning_rate=max_learning_rate, eps=eps,
                        variant=variant),
        scale_by_learning_rate(scaling),
    )


@inject_hyperparams
def optimistic_gradient_descent(
    learning_rate: ScalarOrSchedule, alpha=1.0, beta=1.0
) -> GradientTransformation:
    """Optimistic gradient descent (Mokhtari et al., 2019): extrapolate with the last gradient.

    It converges in the last iterate on min-max games, where plain simultaneous gradient
    descent cycles.

    .. math::
       p_{t+1} = p_t - \\eta_t\\,\\big((\\alpha + \\beta)\\,g_t - \\beta\\,g_{t-1}\\big),
       \\qquad g_0 := g_1

    Args:
      learning_rate: :math:`\\eta_t`, or a schedule.
      alpha: :math:`\\alpha`, the weight of the gradient step.
      beta: :math:`\\beta`, the weight of the extrapolation (negative momentum).

    Reference:
      Mokhtari, Ozdaglar & Pattathil, `A Unified Analysis of Extra-gradient and Optimistic
      Gradient Methods for Saddle Point Problems <https://arxiv.org/abs/1901.08511>`_, 2019.
    """
    return chain(
        scale_by_optimistic_gradient(alpha=alpha, beta=beta),
        scale_by_learning_rate(learning_rate),
    )
