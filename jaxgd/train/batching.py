"""Data regimes: which examples each step of :func:`jaxgd.fit` sees.

``data`` is a pytree of arrays sharing a leading example axis of size :math:`n`.

* ``batch_size=None``, batch gradient descent: every step sees the whole data set, in
  its stored order; an epoch is one step.
* ``batch_size=k`` (``1`` for stochastic gradient descent): epoch :math:`e` draws the
  permutation :math:`\\pi_e` of :math:`0..n-1` from ``fold_in(key, e)``
  (:func:`epoch_permutation`) and step
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
from jax.sharding import NamedSharding


def num_examples(data: Any) -> int:
    """The shared leading size of the leaves of ``data`` (checked by
    ``input_checks.check_data``)."""
    return int(jnp.shape(jax.tree.leaves(data)[0])[0])


def steps_per_epoch(n: int, batch_size: int | None) -> int:
    """Steps in one pass over ``n`` examples; the remainder of ``n / batch_size`` is dropped."""
    return 1 if batch_size is None else n // batch_size


#: Rounds of the Feistel network of :func:`epoch_permutation` (four make a keyed
#: pseudo-random permutation in the Luby-Rackoff sense; two more for margin).
FEISTEL_ROUNDS = 6


def _mix(x: jax.Array) -> jax.Array:
    """A bijective avalanche of uint32 values (the murmur3 finalizer)."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def epoch_permutation(key: jax.Array, epoch: jax.Array, n: int) -> jax.Array:
    """The order of the examples in ``epoch``: a permutation of ``0..n-1`` (int32).

    Keyed by ``fold_in(key, epoch)`` rather than by splitting a carried key, so that the
    order of any epoch can be recomputed from ``key`` alone.

    It is a keyed pseudo-random permutation, not a sort of random keys as
    ``jax.random.permutation`` draws one: a balanced Feistel network on the indices
    (:data:`FEISTEL_ROUNDS` rounds, round keys drawn from the epoch's key) permutes the
    ``4**b >= n`` integers of ``2b`` bits, and *cycle walking* (encrypt again while the
    value is ``>= n``; the cycle through an index below ``n`` always comes back below
    ``n``) restricts it to ``0..n-1``. Every index is computed on its own, so an epoch
    costs a few elementwise passes over ``n`` integers (fewer than 4 walks are expected,
    since at least a quarter of the domain is below ``n``), where a sort costs
    ``n log n`` comparisons; with a million examples that is the difference between a
    shuffle that is free and one that costs more than the epoch's steps."""
    half = max(1, ((n - 1).bit_length() + 1) // 2)
    mask = jnp.uint32((1 << half) - 1)
    round_keys = jax.random.bits(jax.random.fold_in(key, epoch), (FEISTEL_ROUNDS,),
                                 jnp.uint32)

    def encrypt(x):
        left, right = x >> half, x & mask
        for r in range(FEISTEL_ROUNDS):
            left, right = right, left ^ (_mix(right ^ round_keys[r]) & mask)
        return (left << half) | right

    def out_of_range(x):
        return jnp.any(x >= n)

    def walk(x):
        return jnp.where(x >= n, encrypt(x), x)

    order = jax.lax.while_loop(out_of_range, walk, encrypt(jnp.arange(n, dtype=jnp.uint32)))
    return order.astype(jnp.int32)


def shardings(data: Any) -> tuple[NamedSharding | None, ...] | None:
    """Each leaf's sharding, where ``data`` is split over several devices (data
    parallelism): read from concrete arrays, or from the types of arrays traced over an
    explicit mesh; None for a leaf on one device, or all None (unknown) under ``jit``
    over an auto mesh, where XLA's propagation places the batches."""
    found = []
    for x in jax.tree.leaves(data):
        if isinstance(x, jax.core.Tracer):
            sharding = jax.typeof(x).sharding
            split = sharding.mesh.explicit_axes and sharding.spec and sharding.spec[0]
            found.append(sharding if split else None)
        else:
            sharding = getattr(x, "sharding", None)
            split = isinstance(sharding, NamedSharding) and len(sharding.device_set) > 1
            found.append(sharding if split else None)
    return tuple(found) if any(s is not None for s in found) else None


def batch_spec(data: Any, size: int | None, placement: tuple | None = None) -> Any:
    """Shapes, dtypes (and shardings) of one batch of ``size`` examples of ``data``
    (the whole of it for ``size=None``), to check or trace the loss on."""
    leaves, treedef = jax.tree.flatten(data)
    placement = placement or (None,) * len(leaves)
    return treedef.unflatten(
        jax.ShapeDtypeStruct(jnp.shape(x) if size is None else (size, *jnp.shape(x)[1:]),
                             jnp.result_type(x), sharding=s)
        for x, s in zip(leaves, placement, strict=True))


def take_batch(data: Any, permutation: jax.Array, index_in_epoch: jax.Array, size: int,
               placement: tuple | None = None) -> Any:
    """The ``index_in_epoch``-th batch of ``size`` examples of ``data`` in ``permutation``
    order; a pytree like ``data`` with leading size ``size``.

    A leaf split over devices along its examples (``placement``, see :func:`shardings`)
    gives a batch split the same way: each device holds ``size / devices`` of its
    examples, the loss's mean over them becomes a cross-device sum, and every device
    runs its share of the step (data parallelism). The examples are those of the
    one-device run: the permutation is global."""
    indices = jax.lax.dynamic_slice_in_dim(permutation, index_in_epoch * size, size)
    leaves, treedef = jax.tree.flatten(data)
    placement = placement or (None,) * len(leaves)

    def take(x, sharding):
        if sharding is None:
            return jnp.take(x, indices, axis=0)
        if sharding.mesh.explicit_axes:  # the type says where the batch goes
            return x.at[indices].get(out_sharding=sharding)
        return jax.lax.with_sharding_constraint(jnp.take(x, indices, axis=0), sharding)

    return treedef.unflatten(take(x, s) for x, s in zip(leaves, placement, strict=True))
