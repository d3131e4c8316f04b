"""Pytree helpers shared by every transformation: structure checks and per-leaf rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core import sharding
from jaxgd.core.numerics import abs_sq


def describe_structure(structure) -> str:
    """A tree structure as text, cut to 400 characters for error messages."""
    text = str(structure)
    return text if len(text) <= 400 else text[:400] + "..."


def check_same_structure(a: Any, b: Any, name_a: str, name_b: str, *,
                         none_is_leaf: bool = False) -> None:
    """Raise a ``ValueError`` naming both trees when their structures differ.

    With ``none_is_leaf``, a ``None`` in one tree matches any leaf of the other (a frozen
    parameter, as optax allows in ``apply_updates``)."""
    is_leaf = is_none if none_is_leaf else None
    structure_a = jax.tree.structure(a, is_leaf=is_leaf)
    structure_b = jax.tree.structure(b, is_leaf=is_leaf)
    if structure_a != structure_b:
        raise ValueError(
            f"{name_a} and {name_b} must have the same tree structure, but\n"
            f"  {name_a}: {describe_structure(structure_a)}\n"
            f"  {name_b}: {describe_structure(structure_b)}"
        )


def is_none(x) -> bool:
    """``is_leaf`` for trees whose ``None`` entries stand for absent (frozen) leaves."""
    return x is None


def dtype_of(x) -> Any:
    """The dtype of an array, read from the attribute when there is one (fast), else as
    JAX would give it to a Python scalar."""
    dtype = getattr(x, "dtype", None)
    return dtype if dtype is not None else jnp.result_type(x)


def shapes_key(tree: Any) -> tuple:
    """The structure, shapes and dtypes of ``tree`` (hashable): what a program traced on
    it depends on, to remember work done for it."""
    return jax.tree.structure(tree), tuple((np.shape(x), dtype_of(x))
                                           for x in jax.tree.leaves(tree))


def as_traced(tree: Any) -> Any:
    """The shapes and dtypes a jitted function sees for ``tree``'s leaves (NumPy float64
    and Python floats become float32 unless x64 is on), without tracing anything."""
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(np.shape(x), jax.dtypes.canonicalize_dtype(dtype_of(x))),
        tree)


def check_float_params(params: Any) -> None:
    """Raise a ``TypeError`` naming the first leaf whose dtype is not floating point."""
    leaves = jax.tree.leaves(params)
    if all(jnp.issubdtype(dtype_of(x), jnp.inexact) for x in leaves):
        return
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        dtype = dtype_of(leaf)
        if not jnp.issubdtype(dtype, jnp.inexact):
            raise TypeError(
                f"parameters must be floating point, but the leaf at "
                f"{jax.tree_util.keystr(path) or '(root)'} has dtype {dtype}. "
                "Cast it, e.g. with jnp.asarray(x, jnp.float32), or keep it out of the "
                "optimized tree."
            )


def full_like(params: Any, value, dtype: Any = None) -> Any:
    """A tree like ``params`` filled with ``value`` (the moments of a fresh state), each
    leaf of its param's dtype (or ``dtype``) and sharded like it (see
    :mod:`jaxgd.core.sharding`)."""
    check_float_params(params)
    return jax.tree.map(
        lambda p: sharding.full_like(p, value, dtype or jnp.result_type(p)), params)


def zeros_like(params: Any, dtype: Any = None) -> Any:
    """A tree of zeros like ``params`` (of ``dtype``, else each leaf's own)."""
    return full_like(params, 0, dtype)


def map_rule(rule: Callable, updates: Any, *states: Any, names: tuple[str, ...] = ()) -> tuple:
    """Lift a per-array update rule to pytrees.

    ``rule(g, *s) -> (g_new, *s_new)`` is applied to every leaf of ``updates`` together
    with the matching leaves of each tree in ``states``. Each new state keeps the dtype of
    its old one, and the new update takes the dtype JAX promotes ``g`` and ``s`` to, so
    bfloat16 gradients with a float32 state give float32 updates, as in optax, while a
    tree all in bfloat16 stays bfloat16 whatever the dtype of the hyperparameters.
    ``None`` leaves of ``updates`` are skipped.

    Returns a tuple ``(updates_new, *states_new)`` of trees shaped like ``updates``.
    """
    names = (*names, *(f"state tree {i}" for i in range(len(names), len(states))))[:len(states)]
    for s, name in zip(states, names, strict=True):
        check_same_structure(updates, s, "updates", name)
    leaves, treedef = jax.tree.flatten(updates)
    state_leaves = [treedef.flatten_up_to(s) for s in states]
    columns: list[list] = [[] for _ in range(1 + len(states))]
    for index, inputs in enumerate(zip(leaves, *state_leaves, strict=True)):
        try:
            outputs = rule(*inputs)
        except (TypeError, ValueError) as error:
            _raise_on_shape_mismatch(updates, index, inputs, names, error)
            raise
        dtypes = [dtype_of(x) for x in inputs]
        if any(d != dtypes[0] for d in dtypes):
            dtypes[0] = jnp.result_type(*dtypes)
        for column, dtype, out in zip(columns, dtypes, outputs, strict=True):
            column.append(jnp.asarray(out).astype(dtype))
    if not leaves:
        return (updates, *states)
    return tuple(treedef.unflatten(column) for column in columns)


def _raise_on_shape_mismatch(updates, index, inputs, names, error) -> None:
    """Name the leaf and the shapes when a rule failed on state leaves shaped unlike the
    update: a state built by ``init`` for other params, which JAX reports only as a
    broadcasting error deep in the rule."""
    shape = np.shape(inputs[0])
    others = [f"{name} {np.shape(x)}" for name, x in zip(names, inputs[1:], strict=True)
              if np.shape(x) != shape]
    if not others:
        return
    path = jax.tree_util.keystr(jax.tree_util.tree_leaves_with_path(updates)[index][0])
    raise ValueError(
        f"the update at {path or '(root)'} has shape {shape} but its state has "
        f"{', '.join(others)}. Was the state built by init() for params of other shapes? "
        "Call init() on params shaped like the gradients."
    ) from error


def global_norm(tree: Any) -> jax.Array:
    """:math:`\\sqrt{\\sum_i \\|x_i\\|^2}` over all leaves of ``tree``."""
    leaves = jax.tree.leaves(tree)
    return jnp.sqrt(sum(jnp.sum(abs_sq(x)) for x in leaves))


def squared_norm(tree: Any) -> jax.Array:
    """:math:`\\sum_i \\|x_i\\|^2` over all leaves of ``tree``."""
    return sum(jnp.sum(abs_sq(x)) for x in jax.tree.leaves(tree))


def real_vdot(a: Any, b: Any) -> jax.Array:
    """:math:`\\sum_i \\mathrm{Re}(a_i b_i)` over all leaves, e.g. the slope
    :math:`\\langle d, \\nabla f \\rangle` of a line search (for complex leaves ``b`` is
    JAX's gradient, which is already the conjugate of the Wirtinger derivative)."""
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    products = [jnp.sum(jnp.real(x * y)) for x, y in pairs]
    return sum(products, jnp.zeros([], jnp.result_type(float)))


def scalar_state_dtype(params: Any) -> Any:
    """The dtype of a global rule's scalar state (a distance, a step size): the widest of
    the params' (float32 for an empty tree), so that a tree mixing bfloat16 and float32
    leaves keeps it in float32. optax takes the narrowest."""
    return jnp.result_type(float, *jax.tree.leaves(params))
