"""Parameters held as one flat vector inside :func:`jaxgd.fit`: the many-leaf fast path.

An optimizer step on a tree of ``L`` leaves runs at least one kernel per leaf; on the CPU
that costs microseconds per leaf whatever its size (about 10 µs for Adam), and on a GPU
one launch per leaf. Inside ``fit`` nobody sees the parameters between steps, so when the
optimizer is flatten-invariant (:func:`jaxgd.core.base.flatten_invariant`: elementwise
rules and global norms) the loop can hold them as one vector: the loss sees them
unflattened (slices that XLA fuses into their consumers), the gradient arrives as one
vector, and the whole update is a handful of kernels. The result is unflattened again,
so ``FitResult`` looks the same either way; numbers agree with the per-leaf loop to
float rounding.

For a big tree, the conversions between the tree and the vector are done outside the
loop's program. XLA:CPU spends about 5 ms compiling each output array of a program, so
a program returning params and Adam state of 1000 leaves (3000 arrays) would compile
for about 15 s; raveling 1000 input leaves inside the loop's program adds about 0.3 s to
its compile. :meth:`FlatLayout.unraveler` and :meth:`FlatLayout.raveler` instead move
the leaves of each shape :data:`CHUNK` at a time, by one small program per leaf shape
that takes the leaves' offsets as an input (a slice out of the vector, an update of the
vector in place): compiled once per process, it serves every chunk of every layout with
that vector length, so compile time does not grow with the leaf count. Trees of at most
:data:`IN_PROGRAM_LEAVES` leaves are converted inside the loop's program.

Which parts of the optimizer state are params-shaped (and so flat inside the loop) is
told by :func:`state_mask`, from the optimizer's state on the flat vector and on a small
stand-in tree.

The rule (``flat_params=None``): flatten when the optimizer is flatten-invariant, the
parameters have at least :data:`MIN_LEAVES` leaves, and all leaves share one floating
dtype. ``fit(..., flat_params=True / False)`` overrides it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core.base import GradientTransformation, is_flatten_invariant
from jaxgd.core.cache import BoundedCache
from jaxgd.core.tree import dtype_of

#: Fewest leaves for which ``fit`` holds the parameters flat by default. Measured on
#: the CPU (``benchmarks/fit_loop.py``): from 2 leaves on, the flat loop is no slower,
#: and the gain grows with the leaf count.
MIN_LEAVES = 2

#: Leaves moved by one call of a conversion program outside the loop. Its compile time
#: grows with its number of leaves (about 5 ms per output), and on the CPU a call costs
#: about the same per leaf from 1 to 8 leaves, more above (the copies are then spread
#: over threads).
CHUNK = 8

#: Up to this many leaves, the loop's own program ravels the params and unflattens its
#: result: a few more inputs and outputs to compile (about 5 ms per output on the CPU)
#: cost less than the dispatches outside (about 2 µs per leaf, on every call).
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
        """:meth:`ravel` for use outside a program (the module docstring says why), the
        same function object for equal layouts; it traces :meth:`ravel` when given
        tracers."""
        return _CHUNKED.get(self, lambda: _Chunked(self)).ravel

    def unravel(self, flat: jax.Array):
        """The tree of ``flat``, traceable (inside a program)."""
        # split, not slices: the transpose of a slice is a full-size pad, so the gradient
        # of L slices would cost L passes over the vector; split's is one concatenate.
        offsets = np.cumsum([math.prod(s) for s in self.shapes])[:-1]
        parts = jnp.split(flat, offsets)
        return self.treedef.unflatten([p.reshape(s) for p, s in zip(parts, self.shapes,
                                                                    strict=True)])

    def unraveler(self) -> Callable:
        """:meth:`unravel` for use outside a program (the module docstring says why), the
        same function object for equal layouts; it traces :meth:`unravel` when given a
        tracer."""
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


def should_flatten(params, optimizer: GradientTransformation, flat_params: bool | None) -> bool:
    """Apply the rule in the module docstring; ``flat_params`` forces it either way."""
    leaves = jax.tree.leaves(params)
    one_dtype = len({dtype_of(x) for x in leaves}) == 1
    if flat_params:
        if not is_flatten_invariant(optimizer):
            raise ValueError(
                "flat_params=True needs a flatten-invariant optimizer (elementwise rules "
                "and global norms, e.g. jaxgd.adam); this one is not marked as such, so "
                "flattening could change its results."
            )
        if not one_dtype:
            raise ValueError("flat_params=True needs all parameter leaves to share one dtype.")
        return True
    if flat_params is None:
        return is_flatten_invariant(optimizer) and len(leaves) >= MIN_LEAVES and one_dtype
    return False


_CHUNKED = BoundedCache()
_FLAT_LOSSES = BoundedCache()
_STATE_MASKS = BoundedCache()
_RESTORERS = BoundedCache()


def state_mask(optimizer: GradientTransformation, layout: FlatLayout) -> StateMask:
    """Which leaves of ``optimizer.init(flat params)`` are params-shaped, remembered per
    optimizer setting (its shared ``update``) and layout.

    ``init`` is traced twice, on the flat vector and on a two-leaf stand-in tree: a
    position of the flat state that holds a two-leaf tree in the stand-in's state is
    params-shaped. (Tracing ``init`` on the caller's tree would tell the same at about
    0.15 ms per leaf; the stand-in also keeps a one-leaf tree's count, itself one leaf,
    apart from its params, and keeps state that an optimizer holds flat in either layout,
    like L-BFGS's memory, as it is.)
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


class _Chunked:
    """A layout's ravel and unravel outside a program: the leaves of each shape in chunks
    of at most :data:`CHUNK`, each chunk moved by one call of :func:`_slices_at` or
    :func:`_place_at`. A shape with more leaves than a chunk ends on a chunk that
    overlaps the one before it, so that every chunk of that shape has the same length
    (one program)."""

    def __init__(self, layout: FlatLayout):
        self.layout = layout
        sizes = [math.prod(s) for s in layout.shapes]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        offset_dtype = np.int32 if layout.size <= np.iinfo(np.int32).max else np.int64
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, shape in enumerate(layout.shapes):
            by_shape.setdefault(shape, []).append(i)
        self.chunks = []
        for shape, leaves in by_shape.items():
            for k in range(0, len(leaves), CHUNK):
                chunk = leaves[max(0, min(k, len(leaves) - CHUNK)):][:CHUNK]
                starts = jnp.asarray(offsets[chunk].astype(offset_dtype))
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
        if isinstance(flat, jax.core.Tracer):
            return self.layout.unravel(flat)
        leaves: list[Any] = [None] * len(self.layout.shapes)
        for shape, chunk, starts in self.chunks:
            for i, leaf in zip(chunk, _slices_at(flat, starts, shape), strict=True):
                leaves[i] = leaf
        return self.layout.treedef.unflatten(leaves)


@functools.partial(jax.jit, static_argnums=2)
def _slices_at(flat: jax.Array, starts: jax.Array, shape: tuple[int, ...]):
    """The leaves of ``shape`` that start at ``starts`` in ``flat``, as separate arrays
    (compiled once per vector length and dtype, shape and chunk length)."""
    size = math.prod(shape)
    return tuple(jax.lax.dynamic_slice(flat, (starts[i],), (size,)).reshape(shape)
                 for i in range(starts.shape[0]))


@functools.partial(jax.jit, donate_argnums=0)
def _place_at(flat: jax.Array, starts: jax.Array, *leaves: jax.Array) -> jax.Array:
    """``flat`` with ``leaves`` written in place from ``starts`` on (compiled once per
    vector length and dtype, leaf shape and chunk length)."""
    for i, leaf in enumerate(leaves):
        flat = jax.lax.dynamic_update_slice(flat, jnp.ravel(leaf).astype(flat.dtype),
                                            (starts[i],))
    return flat


def restorer(layout: FlatLayout, mask: StateMask) -> Callable:
    """``(flat_params, flat_state) -> (params, state)`` in the caller's layout, by
    :meth:`FlatLayout.unraveler` (outside the loop's program)."""
    def build():
        unravel = layout.unraveler()
        return lambda params, state: (unravel(params),
                                      layout.unravel_state(state, mask, unravel))

    return _RESTORERS.get((layout, mask), build)


def flat_loss(loss_fn: Callable, layout: FlatLayout, with_data: bool) -> Callable:
    """``loss_fn`` as a function of the flat vector, one function per (loss, layout), so
    that ``fit``'s compiled programs are reused across calls."""
    def build():
        if with_data:
            return lambda flat, batch: loss_fn(layout.unravel(flat), batch)
        return lambda flat: loss_fn(layout.unravel(flat))

    return _FLAT_LOSSES.get((loss_fn, layout, with_data), build)
