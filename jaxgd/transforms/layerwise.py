"""Layer-wise scaling, each parameter block by its own norms: the trust ratio
‖p‖ / ‖u‖ (LARS, LAMB, Fromage) and NovoGrad's one second-moment scalar per layer."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import checks, numerics, tree
from jaxgd.core.base import GradientTransformation, Updates, init_empty_state
from jaxgd.core.numerics import abs_sq


def safe_norm(x: jax.Array, min_norm) -> jax.Array:
    """:math:`\\max(\\|x\\|_F, n_{min})` whose gradient is 0, not NaN, where it is clipped.

    ``jnp.maximum(norm(x), min_norm)`` differentiates through ``sqrt`` at 0 and gives NaN;
    replacing ``x`` by ones where the norm is clipped keeps both branches finite.
    """
    norm = jnp.sqrt(jnp.sum(abs_sq(x)))
    clipped = norm <= min_norm
    x = jnp.where(clipped, jnp.ones_like(x), x)
    return jnp.where(clipped, min_norm, jnp.sqrt(jnp.sum(abs_sq(x))))


def scale_by_trust_ratio(
    min_norm=0.0,
    trust_coefficient=1.0,
    eps=0.0,
) -> GradientTransformation:
    """Scale each parameter block (leaf) by its trust ratio (You et al., 2017).

    .. math::
       u_\\ell \\leftarrow \\tau\\,\\frac{\\max(\\|p_\\ell\\|, n_{min})}
       {\\max(\\|g_\\ell\\|, n_{min}) + \\epsilon}\\; g_\\ell

    with :math:`\\|\\cdot\\|` the Frobenius norm of the whole leaf. Where either norm is 0 the
    ratio is 1, so a zero-initialised layer (or a zero update) still moves.

    Args:
      min_norm: :math:`n_{min} \\ge 0`, a floor on both norms.
      trust_coefficient: :math:`\\tau`, a multiplier of the ratio.
      eps: :math:`\\epsilon \\ge 0`, added to the update norm.

    Reference:
      You, Gitman & Ginsburg, `Large Batch Training of Convolutional Networks
      <https://arxiv.org/abs/1708.03888>`_, 2017.
    """
    checks.non_negative("min_norm", min_norm)
    checks.finite("trust_coefficient", trust_coefficient)
    checks.non_negative("eps", eps)

    def scale_leaf(g, p):
        param_norm = safe_norm(p, min_norm)
        update_norm = safe_norm(g, min_norm)
        ratio = trust_coefficient * param_norm / (update_norm + eps)
        ratio = jnp.where((param_norm == 0) | (update_norm == 0), 1.0, ratio)
        return (g * ratio).astype(jnp.result_type(g, p))

    def update(updates, state, params=None, **extra_args):
        del extra_args
        checks.params_given("scale_by_trust_ratio", params)
        tree.check_same_structure(updates, params, "updates", "params")
        return jax.tree.map(scale_leaf, updates, params), state

    return GradientTransformation(init_empty_state, update)


class ScaleByNovogradState(NamedTuple):
    """Step count, the momentum :math:`m` (per coordinate) and :math:`v` (one per leaf)."""

    count: jax.Array
    mu: Updates
    nu: Updates


def scale_by_novograd(
    b1=0.9, b2=0.25, eps=1e-8, eps_root=0.0, weight_decay=0.0
) -> GradientTransformation:
    """NovoGrad scaling (Ginsburg et al., 2019): layer-wise normalised gradients with momentum.

    For each leaf (layer) :math:`\\ell`:

    .. math::
       v_t = \\beta_2 v_{t-1} + (1 - \\beta_2)\\,\\|g_t\\|^2, \\qquad
       m_t = \\beta_1 m_{t-1} + \\frac{g_t}{\\sqrt{v_t + \\epsilon_{root}} + \\epsilon}
             + \\lambda\\,p_t, \\qquad u_t = m_t

    initialised at the first step with :math:`v_1 = \\|g_1\\|^2` and
    :math:`m_1 = g_1 / (\\sqrt{v_1 + \\epsilon_{root}} + \\epsilon) + \\lambda p_1` (no
    zero-initialisation bias to correct). The norm is the Frobenius norm of the whole leaf,
    so :math:`v` costs one scalar per layer instead of one number per weight.

    Args:
      b1: :math:`\\beta_1 \\in [0, 1)`, the momentum.
      b2: :math:`\\beta_2 \\in [0, 1)`, the decay of the squared-norm average.
      eps: :math:`\\epsilon \\ge 0`, outside the square root.
      eps_root: :math:`\\epsilon_{root} \\ge 0`, inside it.
      weight_decay: :math:`\\lambda \\ge 0` (needs ``params`` in ``update``).

    Reference:
      Ginsburg et al., `Stochastic Gradient Methods with Layer-wise Adaptive Moments for
      Training of Deep Networks <https://arxiv.org/abs/1905.11286>`_, 2019.
    """
    checks.decay_rate("b1", b1)
    checks.decay_rate("b2", b2)
    checks.non_negative("eps", eps)
    checks.non_negative("eps_root", eps_root)
    checks.non_negative("weight_decay", weight_decay)

    def init(params):
        tree.check_float_params(params)
        nu = jax.tree.map(lambda p: jnp.zeros([], jnp.result_type(p)), params)
        return ScaleByNovogradState(numerics.zero_count(), tree.zeros_like(params), nu)

    def update(updates, state, params=None, **extra_args):
        del extra_args
        checks.params_given("scale_by_novograd", params)
        count = numerics.safe_increment(state.count)
        first = count == 1

        def rule(g, m, v, p):
            squared_norm = jnp.sum(numerics.abs_sq(g))
            v = jnp.where(first, squared_norm, (1 - b2) * squared_norm + b2 * v)
            # m starts at 0, so m_1 is the first normalised gradient without a branch.
            m = b1 * m + g / (jnp.sqrt(v + eps_root) + eps) + weight_decay * p
            return m, m, v, p

        updates, mu, nu, _ = tree.map_rule(
            rule, updates, state.mu, state.nu, params, names=("mu", "nu", "params")
        )
        return updates, ScaleByNovogradState(count, mu, nu)

    return GradientTransformation(init, update)
