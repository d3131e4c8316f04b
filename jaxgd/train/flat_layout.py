"""How a parameter tree maps to one flat vector, and the conversions between the two.

:class:`FlatLayout` converts inside a program (:meth:`~FlatLayout.ravel`,
:meth:`~FlatLayout.unravel`, :meth:`~FlatLayout.unravel_at`) and outside one
(:meth:`~FlatLayout.raveler`, :meth:`~FlatLayout.unraveler`: small programs that move
:data:`CHUNK` leaves of one shape per call, each compiled once per process for every
layout with that vector length). :func:`state_mask` tells which parts of an optimizer's
state are params-shaped. :mod:`jaxgd.train.flat` uses them to run ``fit``'s loop on the
vector.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core.base import GradientTransformation
from jaxgd.core.cache import BoundedCache
from jaxgd.core.tree import dtype_of

#: Leaves moved by one call of a conversion program outside the loop (XLA:CPU, big
#: trees): the program's compile time grows with its leaf count, a call's cost per leaf
#: does not, up to about this many.
CHUNK = 8

#: On XLA:CPU, up to this many leaves the loop's own program converts the params and
#: its result: the extra outputs cost less to compile than dispatches outside cost on
#: every call.
IN_PROGRAM_LEAVES = 8


class FlatLayout(NamedTuple):
    """How a parameter tree maps to one vector (hashable: it keys compiled programs)."""

    treedef: Any
    shapes: tuple[tuple[int, ...], ...]
    dtype: np.dtype

    @classmethod
    def of(cls, params) -> FlatLayout:
        leaves, treedef = jax.tree.flatten(params)
        return cls(treedef, tuple(np.shape(x) for x in leaves), np.dtype(dtype_of(leaves[0])))

    @property
    def size(self) -> int:
        return sum(math.prod(s) for s in self.shapes)

    def ravel(self, tree) -> jax.Array:
        """The vector of ``tree``, traceable (inside a program)."""
        return jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(tree)])

    def raveler(self) -> Callable:
        """:meth:`ravel` for use outside a program, the same function object for equal
        layouts; it traces :meth:`ravel` when given tracers."""
        return _CHUNKED.get(self, lambda: _Chunked(self)).ravel

    @property
    def offsets(self) -> np.ndarray:
        """Where each leaf starts in the vector."""
        sizes = [math.prod(s) for s in self.shapes]
        dtype = np.int32 if self.size <= np.iinfo(np.int32).max else np.int64
        return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(dtype)

    def unravel(self, flat: jax.Array):
        """The tree of ``flat``, traceable (inside a program)."""
        # split, not slices: the transpose of a slice is a full-size pad, so the gradient
        # of L slices would cost L passes over the vector; split's is one concatenate.
        parts = jnp.split(flat, self.offsets[1:])
        return self.treedef.unflatten([p.reshape(s) for p, s in zip(parts, self.shapes,
                                                                    strict=True)])

    def offset_inputs(self) -> tuple[jax.Array, ...]:
        """:attr:`offsets` as one device scalar per leaf (the same ones for equal
        layouts), to pass into a program for :meth:`unravel_at`."""
        def build():
            with jax.ensure_compile_time_eval():  # arrays, even when first asked in a trace
                return tuple(jnp.asarray(o) for o in self.offsets)

        return _OFFSETS.get(self, build)

    def unravel_at(self, flat: jax.Array, offsets: tuple[jax.Array, ...] | None):
        """:meth:`unravel` with the leaves cut at ``offsets`` (:meth:`offset_inputs`,
        inputs of the program), or as :meth:`unravel` when ``offsets`` is None.

        XLA:CPU compiles each slice at a constant offset as a kernel of its own, while
        slices of one shape at offsets it cannot see share one. The derivative is still
        one ``concatenate`` of the leaves' cotangents, as for :meth:`unravel`."""
        if offsets is None:
            return self.unravel(flat)
        # Offsets known when the program is compiled (a caller's jit around fit, which
        # captures them as constants) would be folded into constant slices again.
        return _unravel_at(self, flat, jax.lax.optimization_barrier(tuple(offsets)))

    def unraveler(self) -> Callable:
        """:meth:`unravel` for use outside a program, the same function object for equal
        layouts; it traces :meth:`unravel` when given a tracer."""
        return _CHUNKED.get(self, lambda: _Chunked(self)).unravel

    def ravel_state(self, state, mask: StateMask, ravel: Callable | None = None):
        """The flat-layout version of a per-leaf optimizer ``state`` (e.g. to resume
        from it): each params-shaped part raveled by ``ravel`` (default :meth:`ravel`),
        counts and the like passed through."""
        ravel = ravel or self.ravel
        parts = mask.structure.flatten_up_to(state)
        return mask.structure.unflatten(
            [ravel(part) if is_params else part
             for part, is_params in zip(parts, mask.is_params, strict=True)])

    def unravel_state(self, flat_state, mask: StateMask, unravel: Callable | None = None):
        """The per-leaf version of a flat-layout optimizer state, by ``unravel`` (default
        :meth:`unravel`)."""
        unravel = unravel or self.unravel
        return mask.structure.unflatten(
            [unravel(leaf) if is_params else leaf
             for leaf, is_params in zip(jax.tree.leaves(flat_state), mask.is_params,
                                        strict=True)])


class StateMask(NamedTuple):
    """The structure of an optimizer's state in the flat layout, and which of its leaves
    are params-shaped (a whole params tree in the per-leaf layout)."""

    structure: Any
    is_params: tuple[bool, ...]


_CHUNKED = BoundedCache()
_OFFSETS = BoundedCache()
_STATE_MASKS = BoundedCache()



def state_mask(optimizer: GradientTransformation, layout: FlatLayout) -> StateMask:
    """Which leaves of ``optimizer.init(flat params)`` are params-shaped, remembered per
    optimizer setting (its shared ``update``) and layout.

    ``init`` is traced twice, on the flat vector and on a two-leaf stand-in tree: a
    position of the flat state that holds a two-leaf tree in the stand-in's state is
    params-shaped. (The stand-in, rather than the caller's tree, costs the same for any
    leaf count, keeps a one-leaf tree's count, itself one leaf, apart from its params,
    and keeps state that an optimizer holds flat in either layout, like L-BFGS's memory,
    as it is.)
    """
    def build():
        flat_state = jax.eval_shape(optimizer.init, jax.ShapeDtypeStruct((layout.size,),
                                                                         layout.dtype))
        stand_in = (jax.ShapeDtypeStruct((1,), layout.dtype),) * 2
        stand_in_state = jax.eval_shape(optimizer.init, stand_in)
        structure = jax.tree.structure(flat_state)
        params_tree = jax.tree.structure(stand_in)
        return StateMask(structure, tuple(
            jax.tree.structure(part) == params_tree
            for part in structure.flatten_up_to(stand_in_state)))

    return _STATE_MASKS.get((optimizer.update, layout), build)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _unravel_at(layout: FlatLayout, flat: jax.Array, offsets: tuple[jax.Array, ...]):
    leaves = [jax.lax.dynamic_slice_in_dim(flat, start, math.prod(shape)).reshape(shape)
              for start, shape in zip(offsets, layout.shapes, strict=True)]
    return layout.treedef.unflatten(leaves)


@_unravel_at.defjvp
def _unravel_at_jvp(layout, primals, tangents):
    # The tangent by split (linear in it, transposed to one concatenate), not by dynamic
    # slices (transposed to one full-size update of zeros per leaf).
    flat, offsets = primals
    return _unravel_at(layout, flat, offsets), layout.unravel(tangents[0])


class _Chunked:
    """A layout's ravel and unravel outside a program: the leaves of each shape in chunks
    of at most :data:`CHUNK`, each chunk moved by one call of :func:`_slices_at` or
    :func:`_place_at`. A shape with more leaves than a chunk ends on a chunk that
    overlaps the one before it, so that every chunk of that shape has the same length
    (one program)."""

    def __init__(self, layout: FlatLayout):
        self.layout = layout
        offsets = layout.offsets
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, shape in enumerate(layout.shapes):
            by_shape.setdefault(shape, []).append(i)
        self.chunks = []
        for shape, leaves in by_shape.items():
            for k in range(0, len(leaves), CHUNK):
                chunk = leaves[max(0, min(k, len(leaves) - CHUNK)):][:CHUNK]
                # device arrays (not tracers, even when first built while tracing a
                # program): this object is kept for later calls
                with jax.ensure_compile_time_eval():
                    starts = jnp.asarray(offsets[chunk])
                self.chunks.append((shape, chunk, starts))

    def ravel(self, tree) -> jax.Array:
        leaves = self.layout.treedef.flatten_up_to(tree)
        if any(isinstance(x, jax.core.Tracer) for x in leaves):
            return self.layout.ravel(tree)
        flat = jnp.empty((self.layout.size,), jnp.result_type(*leaves))
        for _, chunk, starts in self.chunks:
            flat = _place_at(flat, starts, *(leaves[i] for i in chunk))
        return flat

    def unravel(self, flat: jax.Array):
        """The tree of ``flat``; a batch of vectors ``(..., n)`` gives leaves with the same
        leading axes (e.g. the trials of a sweep)."""
        if isinstance(flat, jax.core.Tracer):  # in a program
            if len(self.layout.shapes) <= IN_PROGRAM_LEAVES:  # static slices are cheap
                return self.layout.unravel(flat)
            return self.layout.unravel_at(flat, self.layout.offset_inputs())
        leaves: list[Any] = [None] * len(self.layout.shapes)
        for shape, chunk, starts in self.chunks:
            for i, leaf in zip(chunk, _slices_at(flat, starts, shape), strict=True):
                leaves[i] = leaf
        return self.layout.treedef.unflatten(leaves)


@functools.partial(jax.jit, static_argnums=2)
def _slices_at(flat: jax.Array, starts: jax.Array, shape: tuple[int, ...]):
    """The leaves of ``shape`` that start at ``starts`` along the last axis of ``flat``,
    as separate arrays ``(*flat.shape[:-1], *shape)`` (compiled once per shape and dtype
    of ``flat``, leaf shape and chunk length)."""
    size, batch = math.prod(shape), flat.shape[:-1]
    return tuple(
        jax.lax.dynamic_slice_in_dim(flat, starts[i], size, axis=flat.ndim - 1)
        .reshape(batch + shape)
        for i in range(starts.shape[0]))


@functools.partial(jax.jit, donate_argnums=0)
def _place_at(flat: jax.Array, starts: jax.Array, *leaves: jax.Array) -> jax.Array:
    """``flat`` with ``leaves`` written in place from ``starts`` on (compiled once per
    vector length and dtype, leaf shape and chunk length)."""
    for i, leaf in enumerate(leaves):
        flat = jax.lax.dynamic_update_slice(flat, jnp.ravel(leaf).astype(flat.dtype),
                                            (starts[i],))
    return flat
