"""Momentum: an exponentially decaying trace of past updates, and the dtype rule of every
accumulator kept in a chosen dtype (``accumulator_dtype``, ``mu_dtype``, ``nu_dtype``)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core import checks, tree
from jaxgd.core.base import GradientTransformation, Updates, flatten_invariant


def state_dtype(name: str, dtype: Any) -> Any:
    """``dtype`` made canonical (float64 is float32 unless x64 is on, as optax does), or
    ``None`` for "each parameter's dtype". Raises a ``ValueError`` naming ``name`` for a
    dtype that is not floating point: an integer accumulator would round every step to 0.
    """
    if dtype is None:
        return None
    try:
        canonical = jax.dtypes.canonicalize_dtype(dtype)
    except TypeError as error:
        raise ValueError(f"{name} must be a floating-point dtype or None, got {dtype!r}.") \
            from error
    if not jnp.issubdtype(canonical, jnp.inexact):
        raise ValueError(
            f"{name} must be a floating-point dtype (e.g. jnp.bfloat16) or None, got "
            f"{np.dtype(canonical).name}."
        )
    return canonical


def zeros_in(params: Any, dtype: Any) -> Any:
    """Zeros shaped (and sharded) like ``params``, of ``dtype`` or else each param's dtype."""
    return tree.full_like(params, 0, dtype)


def widened(stored: jax.Array, g: jax.Array) -> jax.Array:
    """An accumulator read for arithmetic with ``g``: in the wider of the two dtypes.

    A bfloat16 accumulator is only *stored* in bfloat16. Multiplied as stored by a Python
    float decay, the decay would be rounded to bfloat16 first (0.999 becomes 1.0, and the
    average never forgets); read in float32, only the stored value is rounded.
    """
    # the real dtype of a complex g: a real accumulator (of |g|^2) stays real
    return stored.astype(jnp.promote_types(stored.dtype, jnp.finfo(g.dtype).dtype))


class TraceState(NamedTuple):
    """The velocity :math:`v`."""

    trace: Updates


def trace(decay=0.9, nesterov: bool = False, accumulator_dtype=None) -> GradientTransformation:
    """Heavy-ball or Nesterov momentum.

    .. math::
       v_t = g_t + \\mu\\,v_{t-1}, \\qquad
       u_t = \\begin{cases} g_t + \\mu\\,v_t & \\text{Nesterov} \\\\ v_t & \\text{otherwise}
       \\end{cases}

    Args:
      decay: the momentum :math:`\\mu \\in [0, 1]`; 1 keeps the plain sum of the updates.
      nesterov: look ahead along the velocity (Sutskever et al., 2013).
      accumulator_dtype: the dtype :math:`v` is stored in (e.g. ``jnp.bfloat16`` to halve
        its memory), or ``None`` for each parameter's dtype. As in optax, the update is
        computed before :math:`v` is rounded to it, in the wider of the two dtypes.
    """
    checks.non_negative("decay", decay)
    value = checks.concrete(decay)
    if value is not None and np.any(value > 1):
        shown = value.item() if value.size == 1 else value
        raise ValueError(f"decay must be in [0, 1], got {shown!r}.")
    accumulator_dtype = state_dtype("accumulator_dtype", accumulator_dtype)

    def rule(g, v):
        v = g + decay * widened(v, g)
        return (g + decay * v if nesterov else v), v

    def init(params):
        return TraceState(zeros_in(params, accumulator_dtype))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        updates, velocity = tree.map_rule(rule, updates, state.trace, names=("trace",))
        return updates, TraceState(velocity)

    return flatten_invariant(GradientTransformation(init, update))
