"""Apply a transformation to part of the parameter tree (``masked``), or a different one to
each labelled part (``partition``)."""

from __future__ import annotations

import functools
from collections.abc import Hashable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core.base import GradientTransformation, OptState, update_with_extra_args
from jaxgd.core.interop import MaskedNode, is_params_placeholder
from jaxgd.core.tree import describe_structure


class MaskedState(NamedTuple):
    """State of :func:`masked`: the inner state, covering the masked-in leaves only."""

    inner_state: OptState


class PartitionState(NamedTuple):
    """State of :func:`partition`: one :class:`MaskedState` per label."""

    inner_states: dict[Hashable, MaskedState]


def _check_prefix(prefix: Any, full: Any, name_prefix: str, name_full: str) -> None:
    try:
        jax.tree.structure(prefix).flatten_up_to(full)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"{name_prefix} must have the tree structure of {name_full} or a prefix of it, but\n"
            f"  {name_prefix}: {describe_structure(jax.tree.structure(prefix))}\n"
            f"  {name_full}: {describe_structure(jax.tree.structure(full))}"
        ) from error


def _as_flag(leaf) -> bool:
    if isinstance(leaf, jax.core.Tracer):
        raise TypeError(
            "masked(): the mask must be static (Python or numpy bools), not a traced array: "
            "build it outside jit, or pass a function of the params."
        )
    if jnp.shape(leaf) != () or jnp.result_type(leaf) != jnp.bool_:
        raise TypeError(
            f"masked(): mask leaves must be scalar bools, got {leaf!r}; use True to transform "
            "a leaf (or subtree) and False to pass its updates through."
        )
    return bool(leaf)


def _is_function(mask_or_labels) -> bool:
    """Whether a mask (or a label tree) is a function of the params rather than a tree.
    A callable pytree, such as an equinox Module of bools, is a tree: it has children
    (``jax.tree_util.Partial`` has too, but is a function)."""
    if isinstance(mask_or_labels, functools.partial):
        return True
    return callable(mask_or_labels) and jax.tree_util.treedef_is_leaf(
        jax.tree.structure(mask_or_labels))


def _mask_for(mask, tree: Any, name: str) -> Any:
    mask_tree = mask(tree) if _is_function(mask) else mask
    _check_prefix(mask_tree, tree, "mask", name)
    return jax.tree.map(_as_flag, mask_tree)


def _select(mask_tree: Any, tree: Any) -> Any:
    return jax.tree.map(lambda m, x: x if m else MaskedNode(), mask_tree, tree)


def masked(inner: GradientTransformation, mask) -> GradientTransformation:
    """Apply ``inner`` to the leaves where ``mask`` is True; pass the others' updates through.

    .. math::
       u_i \\leftarrow \\begin{cases} T(g)_i & m_i \\\\ g_i & \\text{otherwise} \\end{cases}

    The inner transformation sees a tree whose masked-out subtrees are
    :class:`MaskedNode` (nodes without leaves), so its state covers only the masked-in
    leaves: e.g. ``masked(add_decayed_weights(1e-4), mask)`` to skip biases, or
    ``masked(adam(1e-3), mask)`` to keep Adam's moments only where they are used. Same
    semantics as ``optax.masked``; extra arguments reach ``inner`` unmasked.

    Args:
      inner: the transformation to apply to the masked-in leaves.
      mask: a tree of bools shaped like the params or a prefix of them (a bool for a whole
        subtree), or a function ``params -> such a tree``. It must be static (not traced).
        A callable pytree (e.g. an equinox Module of bools) is a tree, not a function.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgd
      >>> params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
      >>> no_bias = lambda p: jax.tree.map(lambda x: x.ndim > 1, p)
      >>> opt = jaxgd.chain(jaxgd.masked(jaxgd.add_decayed_weights(1e-4), no_bias),
      ...                   jaxgd.sgd(0.1))
    """
    inner_update = update_with_extra_args(inner)

    def init(params):
        if is_params_placeholder(params):  # optax.tree.map_params asks for the layout
            return MaskedState(inner.init(params))
        return MaskedState(inner.init(_select(_mask_for(mask, params, "params"), params)))

    def update(updates, state, params=None, **extra_args):
        mask_tree = _mask_for(mask, updates, "updates")
        inner_params = None if params is None else _select(mask_tree, params)
        new_updates, inner_state = inner_update(
            _select(mask_tree, updates), state.inner_state, inner_params, **extra_args
        )
        merged = jax.tree.map(lambda m, new, old: new if m else old, mask_tree, new_updates,
                              updates)
        return merged, MaskedState(inner_state)

    return GradientTransformation(init, update)


def partition(
    transforms: Mapping[Hashable, GradientTransformation], param_labels
) -> GradientTransformation:
    """Apply a different transformation to each labelled part of the parameter tree.

    .. math::
       u_i \\leftarrow T_{\\ell(i)}(g)_i

    Each transformation runs as :func:`masked` on the leaves carrying its label, so its
    state covers only those. Same semantics as ``optax.partition`` (formerly
    ``optax.multi_transform``). To freeze a part, label it and map the label to
    ``jaxgd.scale(0.0)`` (or wrap with :func:`masked`).

    Args:
      transforms: label -> transformation.
      param_labels: a tree of labels shaped like the params or a prefix of them, or a
        function ``params -> such a tree``. Every label must be a key of ``transforms``.

    Example:
      >>> import jax.numpy as jnp, jaxgd
      >>> params = {"encoder": {"w": jnp.ones(3)}, "head": {"w": jnp.ones(2)}}
      >>> opt = jaxgd.partition({"slow": jaxgd.sgd(1e-4), "fast": jaxgd.adam(1e-3)},
      ...                       {"encoder": "slow", "head": "fast"})
    """
    if not isinstance(transforms, Mapping) or not transforms:
        raise TypeError("partition(): transforms must be a non-empty dict label -> transform.")

    def labels_for(tree: Any, name: str) -> Any:
        labels = param_labels(tree) if _is_function(param_labels) else param_labels
        _check_prefix(labels, tree, "param_labels", name)
        unknown = set(jax.tree.leaves(labels)) - set(transforms)
        if unknown:
            raise ValueError(
                f"partition(): labels {sorted(map(repr, unknown))} have no transformation; "
                f"transforms has {sorted(map(repr, transforms))}."
            )
        return labels

    def part(label: Hashable, labels: Any) -> GradientTransformation:
        return masked(transforms[label], jax.tree.map(lambda x: x == label, labels))

    def init(params):
        if is_params_placeholder(params):  # optax.tree.map_params asks for the layout
            return PartitionState({label: MaskedState(t.init(params))
                                   for label, t in transforms.items()})
        labels = labels_for(params, "params")
        return PartitionState({label: part(label, labels).init(params) for label in transforms})

    def update(updates, state, params=None, **extra_args):
        labels = labels_for(updates, "updates")
        inner_states = {}
        for label in transforms:
            updates, inner_states[label] = part(label, labels).update(
                updates, state.inner_states[label], params, **extra_args
            )
        return updates, PartitionState(inner_states)

    return GradientTransformation(init, update)
