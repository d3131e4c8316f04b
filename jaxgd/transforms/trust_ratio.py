"""Layer-wise trust ratio: rescale each parameter block by ‖p‖ / ‖u‖ (LARS, LAMB, Fromage)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgd.core import checks, tree
from jaxgd.core.base import GradientTransformation, init_empty_state
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
