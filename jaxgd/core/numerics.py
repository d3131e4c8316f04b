"""Small numerical helpers used by the update rules."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def abs_sq(x: jax.Array) -> jax.Array:
    """:math:`|x|^2` elementwise, real for complex ``x``."""
    return (x.conj() * x).real if jnp.iscomplexobj(x) else x * x


def safe_increment(count: jax.Array) -> jax.Array:
    """``count + 1``, saturating at the dtype's maximum instead of wrapping around."""
    top = jnp.iinfo(count.dtype).max
    return jnp.where(count < top, count + 1, top).astype(count.dtype)


def zero_count() -> jax.Array:
    """A fresh step counter (int32 scalar)."""
    return jnp.zeros([], jnp.int32)


def bias_correction(decay, count) -> jax.Array:
    """:math:`1 - \\beta^t`, the factor that unbiases a zero-initialised moving average."""
    return 1 - decay**count


def widened(stored: jax.Array, g: jax.Array) -> jax.Array:
    """An accumulator read for arithmetic with ``g``: in the wider of the two dtypes.

    A bfloat16 accumulator is only *stored* in bfloat16. Multiplied as stored by a Python
    float decay, the decay would be rounded to bfloat16 first (0.999 becomes 1.0, and the
    average never forgets); read in float32, only the stored value is rounded.
    """
    # the real dtype of a complex g: a real accumulator (of |g|^2) stays real
    return stored.astype(jnp.promote_types(stored.dtype, jnp.finfo(g.dtype).dtype))
