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

Inside the loop, the loss of a big tree sees its leaves cut out of the vector at offsets
that are inputs of the program (:meth:`FlatLayout.unravel_at`): XLA:CPU compiles a slice
at a constant offset as its own kernel, about 6 ms per leaf, and each kernel the slice
fuses into becomes one of a kind too, while slices of one shape at offsets it cannot see
share one kernel (the loop of a 600-leaf MLP compiles in 3.7 s rather than 11 s). Under
a caller's ``jax.jit`` the offsets are constants of the caller's program, so they pass
through an optimization barrier that XLA does not fold (``jit(fit)`` on that MLP
returning its params: 14 s rather than 25 s); an unflattening traced in the caller's
program cuts at them too. A loss that concatenates all the leaves again, in order
(``ravel_pytree``), is the exception (:func:`loss_reflattens`): with constant offsets
XLA cancels the slices against the concatenation, so it keeps them (1000 leaves: 0.6 s
rather than 2.2 s).

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

from jaxgd.core import sharding
from jaxgd.core.base import GradientTransformation, is_flatten_invariant
from jaxgd.core.cache import BoundedCache
from jaxgd.core.tree import dtype_of, shapes_key

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

        Why: XLA:CPU compiles each slice at a constant offset as its own kernel, about
        6 ms per leaf (4 s for 600 leaves), while slices of one shape at offsets it
        cannot see share one kernel. The derivative is still one ``concatenate`` of the
        leaves' cotangents, as for :meth:`unravel`."""
        if offsets is None:
            return self.unravel(flat)
        # Offsets known when the program is compiled (a caller's jit around fit, which
        # captures them as constants) would be folded into constant slices again.
        return _unravel_at(self, flat, jax.lax.optimization_barrier(tuple(offsets)))

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


def loss_reflattens(loss_fn: Callable, layout: FlatLayout, batch: Any,
                    with_data: bool) -> bool:
    """Whether ``loss_fn`` concatenates all the leaves of its params, in order, as its
    own first step (``ravel_pytree``, ``concatenate([x.ravel() for x in leaves])``):
    then the loop gives it leaves at constant offsets, which XLA cancels against that
    concatenation, rather than at :meth:`FlatLayout.unravel_at`'s input offsets.
    Remembered per loss, layout and batch shapes."""
    key = (loss_fn, layout, with_data, shapes_key(batch))

    def build():
        def of_leaves(*leaves):
            params = layout.treedef.unflatten(leaves)
            return loss_fn(params, batch) if with_data else loss_fn(params)

        specs = [jax.ShapeDtypeStruct(s, layout.dtype) for s in layout.shapes]
        jaxpr = jax.make_jaxpr(of_leaves)(*specs).jaxpr
        source = {}  # a reshape's output -> the variable it reshapes
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "reshape":
                source[eqn.outvars[0]] = source.get(eqn.invars[0], eqn.invars[0])
            elif eqn.primitive.name == "concatenate":
                parts = [source.get(v, v) for v in eqn.invars]
                if parts == list(jaxpr.invars):
                    return True
        return False

    return _REFLATTENS.get(key, build)


def loss_offsets(loss_fn: Callable, layout: FlatLayout, batch: Any, with_data: bool,
                 offsets: tuple[jax.Array, ...] | None = None) -> tuple[jax.Array, ...] | None:
    """The offsets a big tree's leaves are cut at for ``loss_fn`` (see
    :meth:`FlatLayout.unravel_at`): ``offsets`` (default :meth:`FlatLayout.offset_inputs`),
    or None, constant offsets, for a loss that ravels the tree itself
    (:func:`loss_reflattens`)."""
    if loss_reflattens(loss_fn, layout, batch, with_data):
        return None
    return layout.offset_inputs() if offsets is None else offsets


def should_flatten(params, optimizer: GradientTransformation, flat_params: bool | None) -> bool:
    """Apply the rule in the module docstring; ``flat_params`` forces it either way."""
    leaves = jax.tree.leaves(params)
    one_dtype = len({dtype_of(x) for x in leaves}) == 1
    sharded = any(sharding.spans_devices(x) for x in leaves)
    if flat_params:
        if sharded:
            raise ValueError(
                "flat_params=True needs params on one device: these are sharded over "
                "several, and one vector of them would gather every shard onto each device.")
        if not is_flatten_invariant(optimizer):
            raise ValueError(
                "flat_params=True needs a flatten-invariant optimizer (elementwise rules "
                "and global norms, e.g. jaxgd.adam); this one is not marked as such, so "
                "flattening could change its results."
            )
        if not one_dtype:
            raise ValueError("flat_params=True needs all parameter leaves to share one dtype.")
        return True
    if flat_params is None:  # never for sharded params: see the error above
        return (is_flatten_invariant(optimizer) and len(leaves) >= MIN_LEAVES and one_dtype
                and not sharded)
    return False


_CHUNKED = BoundedCache()
_OFFSETS = BoundedCache()
_REFLATTENS = BoundedCache()
_STATE_MASKS = BoundedCache()


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


class Restorer(NamedTuple):
    """``restore(flat_params, flat_state) -> (params, state)`` in the caller's layout, by
    :meth:`FlatLayout.unraveler` (outside the loop's program). Batches of vectors (a
    leading trial axis) give batched trees."""

    layout: FlatLayout
    mask: StateMask

    def __call__(self, params: jax.Array, state: Any) -> tuple[Any, Any]:
        unravel = self.layout.unraveler()
        return unravel(params), self.layout.unravel_state(state, self.mask, unravel)
