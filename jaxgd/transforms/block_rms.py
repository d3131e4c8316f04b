"""Per-block RMS: clip each leaf's update RMS, or scale it by its parameter's RMS (Adafactor)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgd.core import checks, tree
from jaxgd.core.base import GradientTransformation, init_empty_state
from jaxgd.core.numerics import abs_sq


def _rms(x: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.mean(abs_sq(x)))


def safe_rms(x: jax.Array, min_rms) -> jax.Array:
    """:math:`\\max(\\operatorname{RMS}(x), r_{min})`, with a finite gradient where clipped."""
    clipped = _rms(x) <= min_rms
    return jnp.where(clipped, min_rms, _rms(jnp.where(clipped, jnp.ones_like(x), x)))


def clip_by_block_rms(threshold) -> GradientTransformation:
    """Shrink each leaf (block) whose RMS exceeds a threshold.

    .. math:: u_\\ell \\leftarrow \\frac{g_\\ell}{\\max(1, \\operatorname{RMS}(g_\\ell) / d)}

    Args:
      threshold: :math:`d > 0`, the largest RMS a block keeps (Adafactor: 1).
    """
    checks.positive("threshold", threshold)

    def clip_leaf(g):
        return (g / jnp.maximum(1.0, _rms(g) / threshold)).astype(g.dtype)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        return jax.tree.map(clip_leaf, updates), state

    return GradientTransformation(init_empty_state, update)


def scale_by_param_block_rms(min_scale=1e-3) -> GradientTransformation:
    """Scale each leaf's update by its parameter's RMS: relative step sizes (Adafactor).

    .. math:: u_\\ell \\leftarrow \\max(\\operatorname{RMS}(p_\\ell), s_{min})\\; g_\\ell

    Args:
      min_scale: :math:`s_{min} \\ge 0`, so that zero-initialised leaves still move.
    """
    checks.non_negative("min_scale", min_scale)

    def update(updates, state, params=None, **extra_args):
        del extra_args
        checks.params_given("scale_by_param_block_rms", params)
        tree.check_same_structure(updates, params, "updates", "params")
        def scale(g, p):
            return (g * safe_rms(p, min_scale)).astype(jnp.result_type(g, p))

        return jax.tree.map(scale, updates, params), state

    return GradientTransformation(init_empty_state, update)
