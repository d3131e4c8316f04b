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

Unflattening the result of a big tree is done outside the loop's program: XLA:CPU
spends about 6 ms compiling each output array of a program, so a program returning
params and Adam state of 1000 leaves (3000 arrays) would compile for about 20 s.
:meth:`FlatLayout.unraveler` instead gathers the leaves of each shape into stacks of at
most :data:`UNSTACK_CHUNK` (one small program per layout) and splits each stack with one
program per stack shape, compiled once per process: a few dozen dispatches per call, and
compile time that does not grow with the leaf count. Small trees (at most
:data:`UNRAVEL_IN_PROGRAM_LEAVES` leaves) are unflattened inside the loop's program.

The rule (``flat_params=None``): flatten when the optimizer is flatten-invariant, the
parameters have at least :data:`MIN_LEAVES` leaves, and all leaves share one floating
dtype. ``fit(..., flat_params=True / False)`` overrides it.
"""

from __future__ import annotations

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

#: Most leaves split out of one stack by one compiled program (its compile time grows
#: with its number of outputs).
UNSTACK_CHUNK = 64

#: Up to this many leaves, the loop's own program unflattens its result: a few more
#: outputs to compile (about 6 ms each on the CPU) cost less than the dispatches of the
#: grouped unravel (about 8 µs each, on every call).
UNRAVEL_IN_PROGRAM_LEAVES = 8


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
        return jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(tree)])

    def raveler(self) -> Callable:
        """:meth:`ravel` as one compiled program (one dispatch rather than one per leaf),
        the same function object for equal layouts."""
        return _RAVELERS.get(self, lambda: jax.jit(self.ravel))

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
        return _UNRAVELERS.get(self, lambda: _GroupedUnravel(self))

    def map_state(self, state, template, to_flat: bool, unravel: Callable | None = None):
        """Ravel (``to_flat``) or unravel (with ``unravel``, default :meth:`unravel`) the
        params-shaped parts of an optimizer state.

        ``template`` is the state in the other layout (or its shapes). Walking the flat
        state's structure, every position that holds a whole params-shaped subtree in the
        per-leaf state is converted; counts, hyperparameters and the like pass through.
        """
        unravel = unravel or self.unravel
        flat_state, tree_state = (template, state) if to_flat else (state, template)
        positions = jax.tree.structure(flat_state).flatten_up_to(tree_state)
        converted = [
            (self.ravel(part) if to_flat else unravel(part))
            if jax.tree.structure(per_leaf) == self.treedef else part
            for part, per_leaf in zip(
                positions if to_flat else jax.tree.leaves(flat_state), positions, strict=True
            )
        ]
        return jax.tree.structure(flat_state).unflatten(converted)


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


_RAVELERS = BoundedCache()
_UNRAVELERS = BoundedCache()
_FLAT_LOSSES = BoundedCache()
_TEMPLATES = BoundedCache()
_RESTORERS = BoundedCache()


def state_template(optimizer: GradientTransformation, params, layout: FlatLayout):
    """The shapes of ``optimizer.init(params)`` in the per-leaf layout, remembered per
    optimizer setting (its shared ``update``) and layout."""
    return _TEMPLATES.get((optimizer.update, layout),
                          lambda: jax.eval_shape(optimizer.init, params))


class _GroupedUnravel:
    """A layout's unravel as a few compiled programs: one gathers the leaves of each shape
    into stacks of at most :data:`UNSTACK_CHUNK`, then :func:`_unstack` splits each."""

    def __init__(self, layout: FlatLayout):
        self.layout = layout
        sizes = [math.prod(s) for s in layout.shapes]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, shape in enumerate(layout.shapes):
            by_shape.setdefault(shape, []).append(i)
        self.chunks = [(shape, leaves[k:k + UNSTACK_CHUNK])
                       for shape, leaves in by_shape.items()
                       for k in range(0, len(leaves), UNSTACK_CHUNK)]

        def stack(flat, shape, leaves):
            # One slice where the chunk's leaves lie back to back, else one gather (a
            # stack of per-leaf slices would compile a kernel per leaf).
            size, starts = math.prod(shape), offsets[leaves]
            if np.all(np.diff(starts) == size):
                block = flat[starts[0]:starts[0] + size * len(leaves)]
            else:
                block = flat[(starts[:, None] + np.arange(size)).ravel()]
            return block.reshape((len(leaves), *shape))

        def stacks(flat):
            return tuple(stack(flat, shape, leaves) for shape, leaves in self.chunks)

        self.stacks = jax.jit(stacks)

    def __call__(self, flat: jax.Array):
        if isinstance(flat, jax.core.Tracer):
            return self.layout.unravel(flat)
        leaves: list[Any] = [None] * len(self.layout.shapes)
        for (_, indices), stack in zip(self.chunks, self.stacks(flat), strict=True):
            for i, leaf in zip(indices, _unstack(stack), strict=True):
                leaves[i] = leaf
        return self.layout.treedef.unflatten(leaves)


@jax.jit
def _unstack(stack: jax.Array) -> tuple[jax.Array, ...]:
    """The rows of ``stack`` as separate arrays (compiled once per stack shape)."""
    return tuple(stack[i] for i in range(stack.shape[0]))


def restorer(layout: FlatLayout, template) -> Callable:
    """``(flat_params, flat_state) -> (params, state)`` in the caller's layout, by
    :meth:`FlatLayout.unraveler` (outside the loop's program)."""
    key = (layout, jax.tree.structure(template),
           tuple((x.shape, x.dtype) for x in jax.tree.leaves(template)))

    def build():
        unravel = layout.unraveler()
        return lambda params, state: (unravel(params), layout.map_state(
            state, template, to_flat=False, unravel=unravel))

    return _RESTORERS.get(key, build)


def flat_loss(loss_fn: Callable, layout: FlatLayout, with_data: bool) -> Callable:
    """``loss_fn`` as a function of the flat vector, one function per (loss, layout), so
    that ``fit``'s compiled programs are reused across calls."""
    def build():
        if with_data:
            return lambda flat, batch: loss_fn(layout.unravel(flat), batch)
        return lambda flat: loss_fn(layout.unravel(flat))

    return _FLAT_LOSSES.get((loss_fn, layout, with_data), build)
