"""Parameter-free optimizers: Prodigy, D-Adapt AdamW, COCOB, DoG and DoWG, which estimate
their own step size; the learning rate they take is a multiplier (1 by default) or a
schedule over that estimate. (:func:`jaxgd.mechanize` learns the scale of any optimizer.)

Arguments, defaults and formulas are ``optax.contrib``'s (0.2.8), except that Prodigy and
D-Adapt AdamW keep their estimate finite when all gradients so far are zero (see
:func:`jaxgd.transforms.prodigy.scale_by_prodigy`), and the scalar state is kept in the
widest dtype of the params, not the narrowest. The pairs ``betas`` and ``init_step`` are
fixed when built; the numbers that stand alone live in ``state.hyperparams``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jaxgd.core.base import GradientTransformation, chain, identity
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.transforms.cocob import scale_by_cocob
from jaxgd.transforms.dog import InitStep, scale_by_dog, scale_by_dowg
from jaxgd.transforms.prodigy import scale_by_dadapt_adamw, scale_by_prodigy
from jaxgd.transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxgd.transforms.weight_decay import add_decayed_weights

Mask = Any | Callable[[Any], Any] | None


@inject_hyperparams
def prodigy(
    learning_rate: ScalarOrSchedule = 1.0,
    betas=(0.9, 0.999),
    beta3=None,
    eps=1e-8,
    estim_lr0=1e-6,
    estim_lr_coef=1.0,
    weight_decay=0.0,
    safeguard_warmup: bool = False,
) -> GradientTransformation:
    """Prodigy (Mishchenko & Defazio, 2023): AdamW that learns its own step size :math:`d`.

    .. math::
       p_{t+1} = p_t - \\hat\\eta_t \\Big(\\frac{m_t}{\\sqrt{v_t} + d_{t+1}\\epsilon}
                 + \\lambda p_t\\Big), \\qquad
       \\hat\\eta_t = d_t \\eta_t \\frac{\\sqrt{1 - \\beta_2^t}}{1 - \\beta_1^t}

    with the moments of :math:`d_t g_t` and :math:`d` grown from :math:`d_0` by the
    weighted correlation of the gradients with :math:`x_0 - x_t` (the full rule is in
    :func:`jaxgd.transforms.prodigy.scale_by_prodigy`).

    Args:
      learning_rate: :math:`\\eta_t`, a multiplier of :math:`d` (default 1), or a schedule
        (the authors suggest a linear decay from 1 to 0 after a 0-20 % warm-up).
      betas: :math:`(\\beta_1, \\beta_2)` of the underlying AdamW (fixed when built).
      beta3: :math:`\\beta_3`, the decay of the estimate's sums; default :math:`\\sqrt{\\beta_2}`.
      eps: :math:`\\epsilon > 0`, relative to :math:`d`.
      estim_lr0: :math:`d_0 > 0`, the initial under-estimate.
      estim_lr_coef: :math:`c > 0`, multiplies each new estimate.
      weight_decay: :math:`\\lambda \\ge 0`, decoupled (chain
        :func:`jaxgd.add_decayed_weights` before it for Adam-style decay).
      safeguard_warmup: keep the learning rate out of the estimate's denominator.

    Example:
      >>> import jax.numpy as jnp, jaxgd
      >>> opt = jaxgd.prodigy()
      >>> params = {"w": jnp.ones(3)}
      >>> state = opt.init(params)
      >>> updates, state = opt.update({"w": jnp.array([0.5, -2.0, 1.0])}, state, params)
    """
    return scale_by_prodigy(learning_rate, betas, beta3, eps, estim_lr0, estim_lr_coef,
                            weight_decay, safeguard_warmup)


@inject_hyperparams
def dadapt_adamw(
    learning_rate: ScalarOrSchedule = 1.0,
    betas=(0.9, 0.999),
    eps=1e-8,
    estim_lr0=1e-6,
    weight_decay=0.0,
) -> GradientTransformation:
    """D-Adapt AdamW (Defazio & Mishchenko, 2023): AdamW whose base step size :math:`d`
    is a growing lower bound on the distance to a solution.

    .. math::
       p_{t+1} = p_t - \\frac{m_t}{\\sqrt{v_t} + \\epsilon} - \\lambda\\,\\hat\\eta_t p_t,
       \\qquad m_t = \\beta_1 m_{t-1} + (1 - \\beta_1)\\,\\hat\\eta_t g_t, \\qquad
       \\hat\\eta_t = d_t \\eta_t \\frac{\\sqrt{1 - \\beta_2^t}}{1 - \\beta_1^t}

    (the estimate of :math:`d` is in :func:`jaxgd.transforms.prodigy.scale_by_dadapt_adamw`).

    Args:
      learning_rate: :math:`\\eta_t`, a multiplier of :math:`d` (default 1), or a schedule.
      betas: :math:`(\\beta_1, \\beta_2)` of the underlying AdamW (fixed when built).
      eps: :math:`\\epsilon > 0`.
      estim_lr0: :math:`d_0 > 0`, the initial under-estimate.
      weight_decay: :math:`\\lambda \\ge 0`, decoupled.
    """
    return scale_by_dadapt_adamw(learning_rate, betas, eps, estim_lr0, weight_decay)


@inject_hyperparams
def cocob(
    learning_rate: ScalarOrSchedule = 1.0,
    alpha=100.0,
    eps=1e-8,
    weight_decay=0.0,
    mask: Mask = None,
) -> GradientTransformation:
    """COCOB-Backprop (Orabona & Tommasi, 2017): each coordinate bets on the sign of its
    gradient, with no step size (rule in :func:`jaxgd.scale_by_cocob`).

    .. math::
       \\tilde g_t = \\eta_t (g_t + \\lambda p_t), \\qquad
       p_{t+1} = p_0 + \\frac{\\theta_t}{L_t \\max(G_t + L_t, \\alpha L_t)}\\,(L_t + R_t)

    with :math:`\\theta, L, G, R` the sums, maximum and wealth of :math:`\\tilde g`.

    Args:
      learning_rate: :math:`\\eta_t`, which scales the *gradients* (not the step), e.g.
        to inject a schedule; default 1.
      alpha: :math:`\\alpha > 0`, bounds the fraction of the wealth bet early on.
      eps: :math:`\\epsilon > 0`, the initial :math:`L`.
      weight_decay: :math:`\\lambda \\ge 0`, an L2 penalty added to the gradients.
      mask: which leaves to decay, see :func:`jaxgd.add_decayed_weights`.
    """
    return chain(
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate, flip_sign=False),
        scale_by_cocob(alpha, eps),
    )


def _decay_then(block, learning_rate, weight_decay, mask) -> GradientTransformation:
    """``weight_decay`` (none when ``None``), ``block``, then the learning rate."""
    decay = identity() if weight_decay is None else add_decayed_weights(weight_decay, mask)
    return chain(decay, block, scale_by_learning_rate(learning_rate))


@inject_hyperparams
def dog(
    learning_rate: ScalarOrSchedule = 1.0,
    init_step: InitStep = ("heuristic", 1e-6),
    eps=1e-8,
    weight_decay=None,
    mask: Mask = None,
) -> GradientTransformation:
    """Distance over Gradients (Ivgi et al., 2023): SGD with the step size
    :math:`\\bar r_t / \\sqrt{\\sum_{k \\le t} \\|g_k\\|^2 + \\epsilon}`.

    .. math::
       \\bar r_t = \\max_{k \\le t} \\|x_k - x_0\\|, \\qquad
       p_{t+1} = p_t - \\eta_t\\,\\frac{\\bar r_t}{\\sqrt{G_t + \\epsilon}}\\,g_t

    The authors recommend averaging the iterates.

    Args:
      learning_rate: :math:`\\eta_t`, a multiplier (default 1), or a schedule.
      init_step: the first step, fixed when built: ``("heuristic", a)`` (the default,
        :math:`\\bar r_0 = a(1 + \\|x_0\\|)`, so ``init`` needs the real params; 1e-6, or
        1e-4 with batch normalisation), ``("distance", r)`` or ``("learning_rate", s)``;
        see :func:`jaxgd.scale_by_dog`.
      eps: :math:`\\epsilon \\ge 0`, added to the sum of squared gradient norms.
      weight_decay: :math:`\\lambda`, added to the gradients (:math:`g + \\lambda p`), or
        ``None`` for none.
      mask: which leaves to decay, see :func:`jaxgd.add_decayed_weights`.
    """
    return _decay_then(scale_by_dog(init_step, eps), learning_rate, weight_decay, mask)


@inject_hyperparams
def dowg(
    learning_rate: ScalarOrSchedule = 1.0,
    init_estim_sq_dist=None,
    eps=1e-4,
    weight_decay=None,
    mask: Mask = None,
) -> GradientTransformation:
    """Distance over Weighted Gradients (Khaled et al., 2023).

    .. math::
       \\bar r_t^2 = \\max_{k \\le t} \\|x_k - x_0\\|^2, \\quad
       v_t = \\sum_{k \\le t} \\bar r_k^2 \\|g_k\\|^2, \\quad
       p_{t+1} = p_t - \\eta_t\\,\\frac{\\bar r_t^2}{\\sqrt{v_t} + \\epsilon}\\,g_t

    Args:
      learning_rate: :math:`\\eta_t`, a multiplier (default 1), or a schedule.
      init_estim_sq_dist: :math:`\\bar r_0^2 > 0`, the initial guess of the squared
        distance to a solution; default :math:`\\epsilon`.
      eps: :math:`\\epsilon > 0`.
      weight_decay: :math:`\\lambda`, added to the gradients, or ``None`` for none.
      mask: which leaves to decay, see :func:`jaxgd.add_decayed_weights`.
    """
    return _decay_then(scale_by_dowg(init_estim_sq_dist, eps), learning_rate, weight_decay,
                       mask)
