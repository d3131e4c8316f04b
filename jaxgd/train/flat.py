"""Parameters held as one flat vector inside :func:`jaxgd.fit`: the many-leaf path.

An optimizer step on a tree of ``L`` leaves runs at least one kernel per leaf, whatever
the leaves' sizes. Inside ``fit`` nobody sees the parameters between steps, so when the
optimizer is flatten-invariant (:func:`jaxgd.core.base.flatten_invariant`: elementwise
rules and global norms) the loop can run on one vector instead: the loss sees the
vector unflattened (slices that XLA fuses into their consumers), the gradient arrives
as one vector, and the whole update is a handful of kernels. Numbers agree with the
per-leaf loop to float rounding.

:class:`FlatPath` is that whole change in one object: :func:`plan` decides, and ``fit``
then runs its ordinary loop with

* the loss :meth:`FlatPath.loss`, ``loss(unravel(v))``;
* the params and state raveled once on the way in (:meth:`FlatPath.enter`) and
  unflattened once on the way out (:meth:`FlatPath.run`, :func:`finish`).

The rule (``flat_params=None``): flatten when the optimizer is flatten-invariant, the
parameters have at least :data:`MIN_LEAVES` leaves, all of one floating dtype, on one
device. ``fit(..., flat_params=True / False)`` overrides it.

On XLA:CPU, whose compile time grows with the number of output arrays and of distinct
slices of a program, a tree of more than :data:`IN_PROGRAM_LEAVES` leaves takes two
compile-time measures (``benchmarks/RESULTS.md``, section ``many_leaf``, says what each
buys); other backends convert inside the loop's program, with plain slices:

* its conversions run outside the loop's program, by small programs that move
  :data:`CHUNK` leaves of one shape per call (:meth:`FlatLayout.raveler`,
  :meth:`FlatLayout.unraveler`): the result leaves the loop flat, held in
  :class:`Raveled` nodes until :func:`finish` unflattens it;
* the loss cuts its leaves at offsets that are inputs of the program
  (:meth:`FlatLayout.unravel_at`), so that slices of one shape share one kernel; a
  caller that traces ``fit`` in a program of its own passes them in
  (:func:`program_inputs`). A loss that concatenates its leaves again itself
  (:func:`loss_reflattens`) keeps constant slices, which XLA cancels against that
  concatenation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
from jax.tree_util import register_pytree_node_class

from jaxgd.core import sharding
from jaxgd.core.base import GradientTransformation, is_flatten_invariant
from jaxgd.core.cache import BoundedCache
from jaxgd.core.tree import dtype_of, shapes_key
from jaxgd.train.flat_layout import IN_PROGRAM_LEAVES, FlatLayout, StateMask, state_mask

#: Fewest leaves for which ``fit`` holds the parameters flat by default.
MIN_LEAVES = 2


class TreePath(NamedTuple):
    """The loop on the caller's tree: nothing to convert (the interface of
    :class:`FlatPath`)."""

    def loss(self, loss_fn: Callable, inputs: Any = None) -> tuple[Callable, tuple]:
        return loss_fn, ()

    def enter(self, params, opt_state, init: Callable | None):
        if opt_state is None and init is not None:
            opt_state = init(params)
        return params, opt_state

    def run(self, run_loop: Callable, config: Any, inputs: Any):
        return run_loop(config, inputs)


class FlatLoss(NamedTuple):
    """``loss_fn`` of the vector: ``loss_fn(layout.unravel_at(vector, offsets), *batch)``
    (hashable, so that equal ones share compiled programs)."""

    loss_fn: Callable
    layout: FlatLayout

    def __call__(self, offsets, vector, *batch):
        return self.loss_fn(self.layout.unravel_at(vector, offsets), *batch)


@register_pytree_node_class
class Raveled:
    """A params tree (``mask`` None) or an optimizer state held in the flat ``layout``,
    as a big tree's run on XLA:CPU returns it: :func:`finish` unflattens it."""

    def __init__(self, value: Any, layout: FlatLayout, mask: StateMask | None = None):
        self.value, self.layout, self.mask = value, layout, mask

    def tree_flatten(self):
        return (self.value,), (self.layout, self.mask)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(children[0], *aux)

    def restore(self) -> Any:
        unravel = self.layout.unraveler()
        if self.mask is None:
            return unravel(self.value)
        return self.layout.unravel_state(self.value, self.mask, unravel)


def _is_raveled(x) -> bool:
    return isinstance(x, Raveled)


#: The params-like fields of a FitResult, converted with its params.
_PARAMS_FIELDS = ("params", "train_params", "ema_params")


def finish(result: Any) -> Any:
    """``result`` (a :class:`~jaxgd.train.result.FitResult`, or a batch of them) with its
    :class:`Raveled` fields unflattened, outside any program; batches of vectors (a
    leading trial axis) give batched trees."""
    def restored(x):
        return x.restore() if _is_raveled(x) else x

    return _converted(result, restored, restored)


def _converted(result: Any, of_params: Callable, of_state: Callable) -> Any:
    """``result`` with ``of_params`` applied to its params-like fields (those it has)
    and ``of_state`` to its optimizer state."""
    fields = {name: of_params(getattr(result, name)) for name in _PARAMS_FIELDS
              if getattr(result, name) is not None}
    return result._replace(opt_state=of_state(result.opt_state), **fields)


def loss_value(loss_fn: Callable, loss: tuple[Callable, tuple], params: Any, *batch) -> Any:
    """The output of the user's ``loss_fn`` at ``params`` as a run returned them:
    through the run's ``loss`` (:meth:`FlatPath.loss`) when they are still flat."""
    if _is_raveled(params):
        flat_loss, args = loss
        return flat_loss(*args, params.value, *batch)
    return loss_fn(params, *batch)


class FlatPath(NamedTuple):
    """The loop on one vector: how the params and state enter it and leave it."""

    layout: FlatLayout
    mask: StateMask
    outside: bool  # conversions outside the loop's program (big trees, XLA:CPU)
    cuts: bool  # the loss cuts its leaves at offsets passed in as inputs

    def loss(self, loss_fn: Callable, inputs: Any = None) -> tuple[Callable, tuple]:
        """``(loss, args)``: ``loss(*args, vector[, batch])`` is ``loss_fn`` of the
        vector; ``args`` holds the offsets it cuts at (``inputs`` from
        :func:`program_inputs`, or this layout's own), to pass in as program inputs."""
        offsets = None
        if self.cuts:
            offsets = self.layout.offset_inputs() if inputs is None else inputs
        return FlatLoss(loss_fn, self.layout), (offsets,)

    def enter(self, params, opt_state, init: Callable | None):
        """``(params, opt_state)`` as the loop's program takes them; ``init(params)``
        builds the state when neither it nor the program does."""
        if not self.outside:  # converted inside the program: see run
            return TreePath().enter(params, opt_state, init)
        ravel = self.layout.raveler()
        params = ravel(params)
        if opt_state is not None:
            opt_state = self.layout.ravel_state(opt_state, self.mask, ravel)
        elif init is not None:
            opt_state = init(params)
        return params, opt_state

    def run(self, run_loop: Callable, config: Any, inputs: Any):
        """``run_loop(config, inputs)`` on the vector. Outside conversions: the result
        holds :class:`Raveled` parts (see :func:`finish`); otherwise it is converted
        back inside the same program."""
        if self.outside:
            return self._hold(run_loop(config, inputs))
        if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(inputs)):
            return _converted_run(self, run_loop, config, inputs)
        return _compiled_converted_run(self, run_loop, config, inputs)

    def _hold(self, result):
        return _converted(result, lambda p: Raveled(p, self.layout),
                          lambda state: Raveled(state, self.layout, self.mask))


def _converted_run(path: FlatPath, run_loop: Callable, config: Any, inputs: Any):
    layout, mask = path.layout, path.mask
    state = inputs.opt_state
    inputs = inputs._replace(params=layout.ravel(inputs.params),
                             opt_state=None if state is None else layout.ravel_state(state, mask))
    return _converted(run_loop(config, inputs), layout.unravel,
                      lambda state: layout.unravel_state(state, mask))


_compiled_converted_run = jax.jit(_converted_run, static_argnums=(0, 1, 2))


#: The backends whose big trees take the compile-time measures of the module docstring
#: (empty it to measure the plain path: ``benchmarks/many_leaf.py`` does).
COMPILE_TIME_MEASURES = frozenset({"cpu"})


def _converts_outside(leaves: list) -> bool:
    return len(leaves) > IN_PROGRAM_LEAVES and _backend(leaves) in COMPILE_TIME_MEASURES


def _backend(leaves) -> str:
    devices = getattr(leaves[0], "devices", None)
    if callable(devices) and not isinstance(leaves[0], jax.core.Tracer):
        return next(iter(devices())).platform
    return jax.default_backend()


def program_inputs(params) -> Any:
    """The arrays a program that traces ``fit`` itself (``jaxgd.sweep``'s) passes in as
    inputs and on to :func:`jaxgd.train.fit.fit_traced`'s ``caller_inputs=``, so that
    they are not constants of it: a big tree's leaf offsets on XLA:CPU (see the module
    docstring), else None."""
    if not _converts_outside(jax.tree.leaves(params)):
        return None
    return FlatLayout.of(params).offset_inputs()


def plan(loss_fn: Callable, params, optimizer: GradientTransformation,
         flat_params: bool | None, batch: Any, with_data: bool) -> FlatPath | TreePath:
    """The path of ``fit``'s loop: :class:`FlatPath` when the rule of the module
    docstring (or ``flat_params``) says so, else :class:`TreePath`."""
    leaves = jax.tree.leaves(params)
    if not _should_flatten(leaves, optimizer, flat_params):
        return TreePath()
    layout = FlatLayout.of(params)
    outside = _converts_outside(leaves)
    cuts = outside and not loss_reflattens(loss_fn, layout, batch, with_data)
    return FlatPath(layout, state_mask(optimizer, layout), outside, cuts)


def _should_flatten(leaves: list, optimizer: GradientTransformation,
                    flat_params: bool | None) -> bool:
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


_REFLATTENS = BoundedCache()


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
