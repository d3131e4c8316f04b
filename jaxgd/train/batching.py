"""Data regimes: which examples each step of :func:`jaxgd.fit` sees.

``data`` is a pytree of arrays sharing a leading example axis of size :math:`n`.

* ``batch_size=None``, batch gradient descent: every step sees the whole data set, in
  its stored order; an epoch is one step.
* ``batch_size=k`` (``1`` for stochastic gradient descent): epoch :math:`e` draws the
  permutation :math:`\\pi_e` of :math:`0..n-1` from ``fold_in(key, e)`` and step
  :math:`j` of the epoch sees examples :math:`\\pi_e[jk], \\dots, \\pi_e[jk + k - 1]`.
  An epoch is :math:`\\lfloor n / k \\rfloor` steps.

Last partial batch: the :math:`n \\bmod k` examples at the end of each permutation are
dropped, so every batch has exactly ``k`` examples and the compiled step has static
shapes (no padding, no masking, no second compiled variant). When ``k`` divides
:math:`n` every example is used exactly once per epoch. Otherwise each example is used
at most once per epoch, and the dropped ones differ from epoch to epoch because the
permutation is redrawn, so every example keeps the same chance of being used.
Batches keep the example axis: with ``batch_size=1`` each leaf has leading size 1.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def num_examples(data: Any) -> int:
    """The shared leading size of the leaves of ``data`` (checked by ``checks.check_data``)."""
    return int(jnp.shape(jax.tree.leaves(data)[0])[0])


def steps_per_epoch(n: int, batch_size: int | None) -> int:
    """Steps in one pass over ``n`` examples; the remainder of ``n / batch_size`` is dropped."""
    return 1 if batch_size is None else n // batch_size


def epoch_permutation(key: jax.Array, epoch: jax.Array, n: int) -> jax.Array:
    """The order of the examples in ``epoch``: a permutation of ``0..n-1``.

    Derived from ``fold_in(key, epoch)`` rather than by splitting a carried key, so that
    the order of any epoch can be recomputed from ``key`` alone.
    """
    return jax.random.permutation(jax.random.fold_in(key, epoch), n)


def take_batch(data: Any, permutation: jax.Array, index_in_epoch: jax.Array, size: int) -> Any:
    """The ``index_in_epoch``-th batch of ``size`` examples of ``data`` in ``permutation``
    order; a pytree like ``data`` with leading size ``size``."""
    indices = jax.lax.dynamic_slice_in_dim(permutation, index_in_epoch * size, size)
    return jax.tree.map(lambda x: jnp.take(x, indices, axis=0), data)
