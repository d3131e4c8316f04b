"""Polyak's step size: the step that would reach a known optimal value on a linear model."""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

from jaxgd.core import checks, tree
from jaxgd.core.base import GradientTransformation, flatten_invariant, init_empty_state

PolyakVariant = Literal["sps", "sps+"]
_VARIANTS = ("sps", "sps+")
# Below this squared norm the step is 0: the gradient vanishes and the gap/norm ratio
# would be inf or NaN (optax's threshold, float64 machine epsilon).
_TINY = float(jnp.finfo(jnp.float64).eps)


def scale_by_polyak(
    f_min=0.0, max_learning_rate=1.0, eps=0.0, variant: PolyakVariant = "sps"
) -> GradientTransformation:
    """Scale by the (stochastic) Polyak step size (Loizou et al., 2021).

    .. math::
       u \\leftarrow \\min\\left\\{\\frac{f(x) - f^\\star}{\\|g\\|^2 + \\epsilon},\\;
       \\gamma_{max}\\right\\} g

    (:math:`u = 0` where :math:`\\|g\\|^2 + \\epsilon` is 0). ``"sps+"`` (Garrigos et al.,
    2023) uses :math:`\\max(f(x) - f^\\star, 0)`, so that an underestimated :math:`f^\\star`
    never gives an ascent step. ``update`` needs the current loss as ``value=``.

    Args:
      f_min: :math:`f^\\star`, a lower bound on (a guess of) the minimum of the loss.
      max_learning_rate: :math:`\\gamma_{max} \\ge 0`, the largest step size.
      eps: :math:`\\epsilon \\ge 0`, added to the squared gradient norm.
      variant: ``"sps"`` or ``"sps+"``.

    Reference:
      Loizou et al., `Stochastic Polyak Step-size for SGD
      <https://arxiv.org/abs/2002.10542>`_, 2021.
    """
    checks.finite("f_min", f_min)
    checks.non_negative("max_learning_rate", max_learning_rate)
    checks.non_negative("eps", eps)
    if variant not in _VARIANTS:
        raise ValueError(f"variant must be one of {_VARIANTS}, got {variant!r}.")

    def update(updates, state, params=None, *, value=None, **extra_args):
        del params, extra_args
        if value is None:
            raise ValueError(
                "the Polyak step size needs the current loss: call "
                "update(grads, state, params, value=loss)."
            )
        squared_norm = jnp.square(tree.global_norm(updates))
        gap = jnp.asarray(value - f_min).astype(squared_norm.dtype)
        if variant == "sps+":
            gap = jnp.maximum(gap, 0)
        denominator = squared_norm + eps
        step = jnp.where(
            denominator <= _TINY, 0.0, jnp.minimum(gap / denominator, max_learning_rate)
        )
        return jax.tree.map(lambda g: (step * g).astype(g.dtype), updates), state

    return flatten_invariant(GradientTransformation(init_empty_state, update))
