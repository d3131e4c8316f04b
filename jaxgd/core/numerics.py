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
