"""Layer-wise adaptive optimizers: each parameter block's step is scaled by its own norms.

LAMB, LARS, NovoGrad and Fromage. Arguments, defaults and formulas are optax's (0.2.8),
except that ``weight_decay`` is a number, not a schedule.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import checks, numerics, tree
from jaxgd.core.base import GradientTransformation, chain
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.transforms.adam import scale_by_adam
from jaxgd.transforms.layerwise import scale_by_novograd, scale_by_trust_ratio
from jaxgd.transforms.masking import masked
from jaxgd.transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxgd.transforms.sgd import trace
from jaxgd.transforms.weight_decay import Mask, add_decayed_weights


@inject_hyperparams
def lamb(
    learning_rate: ScalarOrSchedule,
    b1=0.9,
    b2=0.999,
    eps=1e-6,
    eps_root=0.0,
    weight_decay=0.0,
    mask: Mask = None,
    *,
    mu_dtype=None,
    nu_dtype=None,
) -> GradientTransformation:
    """LAMB (You et al., 2020): AdamW whose step is rescaled per layer by a trust ratio.

    .. math::
       r_t = \\frac{\\hat m_t}{\\sqrt{\\hat v_t + \\epsilon_{root}} + \\epsilon}
             + \\lambda\\,p_t, \\qquad
       p_{t+1} = p_t - \\eta_t\\,\\frac{\\|p_t\\|}{\\|r_t\\|}\\,r_t

    per leaf (layer), with Adam's debiased moments :math:`\\hat m_t, \\hat v_t` and the
    ratio 1 where either norm is 0.

    Args:
      learning_rate: :math:`\\eta_t`, or a schedule.
      b1: :math:`\\beta_1 \\in [0, 1)`.
      b2: :math:`\\beta_2 \\in [0, 1)`.
      eps: :math:`\\epsilon > 0`, outside the square root.
      eps_root: :math:`\\epsilon_{root} \\ge 0`, inside it.
      weight_decay: :math:`\\lambda \\ge 0`.
      mask: which leaves get weight decay: a tree of bools shaped like the params (or a
        prefix), or a function ``params -> mask``; ``None`` decays every leaf.
      mu_dtype, nu_dtype: the dtypes the moments are stored in, as :func:`jaxgd.adam`
        (optax's ``lamb`` has neither).

    Reference:
      You et al., `Large Batch Optimization for Deep Learning: Training BERT in 76 minutes
      <https://arxiv.org/abs/1904.00962>`_, 2020.
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_trust_ratio(),
        scale_by_learning_rate(learning_rate),
    )


@inject_hyperparams
def lars(
    learning_rate: ScalarOrSchedule,
    weight_decay=0.0,
    weight_decay_mask: Mask = True,
    trust_coefficient=0.001,
    eps=0.0,
    trust_ratio_mask: Mask = True,
    momentum=0.9,
    nesterov: bool = False,
) -> GradientTransformation:
    """LARS (You et al., 2017): SGD with momentum and a per-layer trust ratio.

    .. math::
       r_t = g_t + \\lambda\\,p_t, \\qquad
       d_t = \\tau\\,\\frac{\\|p_t\\|}{\\|r_t\\| + \\epsilon}\\,r_t, \\qquad
       v_t = -\\eta_t d_t + \\mu\\,v_{t-1}, \\qquad p_{t+1} = p_t + v_t

    per leaf (ratio 1 where a norm is 0); Nesterov momentum uses
    :math:`-\\eta_t d_t + \\mu v_t`.

    Args:
      learning_rate: :math:`\\eta_t`, or a schedule.
      weight_decay: :math:`\\lambda \\ge 0`.
      weight_decay_mask: leaves that get weight decay (bools shaped like the params, a
        prefix, or a function of them); ``True``: all.
      trust_coefficient: :math:`\\tau`.
      eps: :math:`\\epsilon \\ge 0`.
      trust_ratio_mask: leaves whose update is rescaled; the others take plain
        (momentum) SGD steps. Typical: exclude biases and norm scales.
      momentum: :math:`\\mu \\in [0, 1)`.
      nesterov: Nesterov momentum.

    Reference:
      You, Gitman & Ginsburg, `Large Batch Training of Convolutional Networks
      <https://arxiv.org/abs/1708.03888>`_, 2017.
    """
    return chain(
        add_decayed_weights(weight_decay, weight_decay_mask),
        masked(scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps),
               trust_ratio_mask),
        scale_by_learning_rate(learning_rate),
        trace(decay=momentum, nesterov=nesterov),
    )


@inject_hyperparams
def novograd(
    learning_rate: ScalarOrSchedule,
    b1=0.9,
    b2=0.25,
    eps=1e-6,
    eps_root=0.0,
    weight_decay=0.0,
) -> GradientTransformation:
    """NovoGrad (Ginsburg et al., 2019): momentum on layer-wise normalised gradients.

    Each layer's gradient is divided by a moving average of its squared norm (one scalar
    per layer): half of Adam's memory.

    .. math::
       v_t = \\beta_2 v_{t-1} + (1 - \\beta_2)\\,\\|g_t\\|^2, \\quad
       m_t = \\beta_1 m_{t-1} + \\frac{g_t}{\\sqrt{v_t + \\epsilon_{root}} + \\epsilon}
             + \\lambda p_t, \\quad p_{t+1} = p_t - \\eta_t m_t

    per leaf, starting from :math:`v_1 = \\|g_1\\|^2` and :math:`m_1` = the first
    normalised gradient (see :func:`jaxgd.transforms.layerwise.scale_by_novograd`).

    Args:
      learning_rate: :math:`\\eta_t`, or a schedule.
      b1: :math:`\\beta_1 \\in [0, 1)`.
      b2: :math:`\\beta_2 \\in [0, 1)`.
      eps: :math:`\\epsilon \\ge 0`.
      eps_root: :math:`\\epsilon_{root} \\ge 0`.
      weight_decay: :math:`\\lambda \\ge 0`.

    References:
      Ginsburg et al., `Stochastic Gradient Methods with Layer-wise Adaptive Moments for
      Training of Deep Networks <https://arxiv.org/abs/1905.11286>`_, 2019.
    """
    return chain(
        scale_by_novograd(b1=b1, b2=b2, eps=eps, eps_root=eps_root, weight_decay=weight_decay),
        scale_by_learning_rate(learning_rate),
    )


class FromageStepState(NamedTuple):
    """The step count fed to a learning-rate schedule."""

    count: jax.Array


def _fromage_step(learning_rate: ScalarOrSchedule) -> GradientTransformation:
    """:math:`u = \\frac{-\\eta\\,d - (\\sqrt{1 + \\eta^2} - 1)\\,p}{\\sqrt{1 + \\eta^2}}`,
    with :math:`\\eta` constant or scheduled."""
    checks.learning_rate(learning_rate)

    def init(params):
        del params
        return FromageStepState(numerics.zero_count())

    def update(updates, state, params=None, **extra_args):
        del extra_args
        checks.params_given("fromage", params)
        tree.check_same_structure(updates, params, "updates", "params")
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        root = jnp.sqrt(1 + lr**2)
        # 1/root - 1 without the cancellation: written so, float32 loses ~1e-3 of it at
        # lr = 0.01 (the learning rate is a float32 array here, not a Python float).
        decay = -(lr**2) / (root * (1 + root))
        step = jax.tree.map(
            lambda d, p: (-(lr / root) * d + decay * p).astype(jnp.result_type(d)),
            updates, params,
        )
        return step, FromageStepState(numerics.safe_increment(state.count))

    return GradientTransformation(init, update)


@inject_hyperparams
def fromage(learning_rate: ScalarOrSchedule, min_norm=1e-6) -> GradientTransformation:
    """Fromage (Bernstein et al., 2020): relative steps per layer, then a norm-keeping shrink.

    Each layer moves by :math:`\\eta` times its own norm; the shrink keeps the weight norms
    from growing.

    .. math::
       p_{t+1} = \\frac{1}{\\sqrt{1 + \\eta_t^2}}
       \\left(p_t - \\eta_t\\,\\frac{\\|p_t\\|}{\\|g_t\\|}\\,g_t\\right)

    per leaf, with both norms floored at ``min_norm``.

    Args:
      learning_rate: :math:`\\eta_t`, or a schedule (typical: 0.01).
      min_norm: floor of the norms in the trust ratio.

    Reference:
      Bernstein, Vahdat, Yue & Liu, `On the distance between two neural networks and the
      stability of learning <https://arxiv.org/abs/2002.03432>`_, 2020.
    """
    return chain(scale_by_trust_ratio(min_norm), _fromage_step(learning_rate))
