"""Annealed Gaussian gradient noise."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core import checks, numerics
from jaxgd.core.base import GradientTransformation


class AddNoiseState(NamedTuple):
    """Step count (for the annealing) and the PRNG key of the next draw."""

    count: jax.Array
    rng_key: jax.Array


def as_prng_key(key: jax.Array | int) -> jax.Array:
    """A typed PRNG key from an int seed, a typed key, or a raw ``uint32[2]`` key."""
    if isinstance(key, int) and not isinstance(key, bool):
        return jax.random.key(key)
    if isinstance(key, jax.Array | np.ndarray):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            return key
        if key.shape == () and jnp.issubdtype(key.dtype, jnp.integer):
            return jax.random.key(key)
        if key.shape == (2,) and key.dtype == jnp.uint32:
            return jax.random.wrap_key_data(jnp.asarray(key))
    raise TypeError(
        f"key must be an int seed or a PRNG key (jax.random.key(...)), got {key!r}."
    )


def add_noise(eta, gamma, key: jax.Array | int | None = None, *, seed: int | None = None):
    """Add annealed Gaussian noise to the updates (Neelakantan et al., 2015).

    .. math::
       u_t \\leftarrow g_t + \\sigma_t\\,\\xi_t, \\qquad
       \\sigma_t^2 = \\frac{\\eta}{t^{\\gamma}}, \\qquad \\xi_t \\sim \\mathcal N(0, I),
       \\quad t = 1, 2, \\dots

    The PRNG key lives in the state and is split at every step, so a jitted or scanned
    loop draws fresh noise without the caller threading keys.

    Args:
      eta: :math:`\\eta \\ge 0`, the initial variance.
      gamma: :math:`\\gamma \\ge 0`, the decay exponent of the variance.
      key: a PRNG key or an int seed. ``None`` (and no ``seed``) uses seed 0, as optax.
      seed: an int seed; optax's older spelling of ``key`` (give one of the two).

    Reference:
      Neelakantan et al., `Adding Gradient Noise Improves Learning for Very Deep Networks
      <https://arxiv.org/abs/1511.06807>`_, 2015.
    """
    checks.non_negative("eta", eta)
    checks.non_negative("gamma", gamma)
    if seed is not None:
        if key is not None:
            raise ValueError("add_noise takes key or seed, not both.")
        key = seed
    prng_key = as_prng_key(0 if key is None else key)

    def init(params):
        del params
        return AddNoiseState(numerics.zero_count(), prng_key)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = numerics.safe_increment(state.count)
        std = jnp.sqrt(eta / count**gamma)
        rng_key, sample_key = jax.random.split(state.rng_key)
        leaves, treedef = jax.tree.flatten(updates)
        # One key per leaf in flattening order: the same draws as optax for the same key.
        keys = jax.random.split(sample_key, len(leaves))
        noisy = [
            (g + std * jax.random.normal(k, jnp.shape(g), jnp.result_type(g))).astype(g.dtype)
            for g, k in zip(leaves, keys, strict=True)
        ]
        return treedef.unflatten(noisy), AddNoiseState(count, rng_key)

    return GradientTransformation(init, update)
