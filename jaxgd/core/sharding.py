"""Where arrays live: optimizer state placed like the params it mirrors.

A state leaf shaped like a param (a moment, an accumulator) is sharded like that param,
and the other leaves (counters, hyperparameters) are replicated over the params' mesh, as
``optax``'s eager ``init`` places them. Three cases, one rule:

* a concrete param: ``jnp.full_like`` keeps its sharding;
* a param traced under ``jit`` over an explicit mesh: its type carries the sharding, and
  ``jnp.full_like`` keeps that too;
* a param traced under ``jit`` over an auto mesh: the sharding is not known while
  tracing, so :func:`jax.experimental.shard_alike.shard_alike` ties the new leaf to the
  param and XLA's sharding propagation gives both one sharding.

On one device none of this adds anything to a program.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.experimental.shard_alike import shard_alike
from jax.sharding import NamedSharding, PartitionSpec


def _traced_mesh(x: jax.core.Tracer):
    return jax.typeof(x).sharding.mesh


def spans_devices(x: Any) -> bool:
    """Whether ``x`` is split over, or traced in a program over, more than one device."""
    if isinstance(x, jax.core.Tracer):
        mesh = _traced_mesh(x)
        return not mesh.empty and mesh.size > 1
    sharding = getattr(x, "sharding", None)
    return sharding is not None and len(sharding.device_set) > 1


def full_like(p: Any, value: Any, dtype: Any = None) -> jax.Array:
    """``jnp.full_like(p, value, dtype)``, sharded like ``p`` in every case above."""
    x = jnp.full_like(p, value, dtype)
    if isinstance(p, jax.core.Tracer) and _traced_mesh(p).auto_axes and spans_devices(p):
        _, x = shard_alike(p, x)
    return x


def check_explicit_mesh_is_set(tree: Any, name: str) -> None:
    """Arrays split over an explicit mesh are computed on under ``jax.set_mesh`` (as JAX
    requires of a ``jit`` of them); raise a ``ValueError`` saying so otherwise."""
    if not jax.sharding.get_abstract_mesh().empty:
        return
    for x in jax.tree.leaves(tree):
        if isinstance(x, jax.core.Tracer):  # traced: the caller's jit has its mesh
            continue
        sharding = getattr(x, "sharding", None)
        if isinstance(sharding, NamedSharding) and sharding.mesh.explicit_axes:
            raise ValueError(
                f"{name} are sharded over a mesh with explicit axes "
                f"{sharding.mesh.explicit_axes}: call this inside `with jax.set_mesh(mesh):`, "
                "or build the mesh with AxisType.Auto axes.")


def mesh_of(tree: Any):
    """The mesh of the first leaf of ``tree`` sharded over several devices, or None."""
    for x in jax.tree.leaves(tree):
        sharding = getattr(x, "sharding", None)
        if isinstance(sharding, NamedSharding) and sharding.mesh.size > 1:
            return sharding.mesh
    return None


def replicate_loose_leaves(tree: Any, params: Any) -> Any:
    """``tree`` with every concrete leaf that sits uncommitted on one device (a counter,
    the hyperparameters) replicated over the mesh of concrete ``params``, if they have one."""
    mesh = mesh_of(params)
    if mesh is None:
        return tree
    replicated = NamedSharding(mesh, PartitionSpec())

    def place(x):
        if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer) and (
                len(x.sharding.device_set) == 1 and not x.committed):
            return jax.device_put(x, replicated)
        return x

    return jax.tree.map(place, tree)


def _explicitly_split(x: Any) -> bool:
    spec = jax.typeof(x).sharding
    return bool(spec.mesh.explicit_axes) and any(a is not None for a in spec.spec)


def gathered(x: Any) -> Any:
    """``x`` replicated where its type splits it over an explicit mesh (there, one
    vector of differently split arrays is a type error); ``x`` itself otherwise."""
    if isinstance(x, jax.Array) and _explicitly_split(x):
        return jax.sharding.reshard(x, PartitionSpec())
    return x


def placed_like(tree: Any, like: Any) -> Any:
    """``tree`` with each leaf placed like the matching leaf of ``like``: the way back
    from :func:`gathered` (and from any computation on one flat vector)."""
    def place(x, p):
        if not isinstance(p, jax.Array):
            return x
        if _explicitly_split(p):
            return jax.sharding.reshard(x, jax.typeof(p).sharding.spec)
        if isinstance(p, jax.core.Tracer):
            return shard_alike(p, x)[1] if spans_devices(p) else x
        return jax.device_put(x, p.sharding) if spans_devices(p) else x
    return jax.tree.map(place, tree, like)


class ParamsPlacement(NamedTuple):
    """Where ``fit`` keeps params and state (on an auto mesh, where nothing else says
    it): each param leaf's sharding, and the replicated sharding of the other state."""

    params: tuple[NamedSharding, ...]
    replicated: NamedSharding

    @classmethod
    def of(cls, params: Any) -> ParamsPlacement | None:
        """The placement of concrete ``params`` spread over an auto mesh (a leaf on one
        device counts as replicated over it), else None: one device, traced params
        (XLA's propagation places them), or an explicit mesh (the types place them)."""
        mesh = mesh_of(params)
        if mesh is None or mesh.explicit_axes:
            return None
        replicated = NamedSharding(mesh, PartitionSpec())

        def leaf(x):
            sharding = getattr(x, "sharding", None)
            return sharding if isinstance(sharding, NamedSharding) else replicated
        return cls(tuple(leaf(x) for x in jax.tree.leaves(params)), replicated)

    def keep(self, params: Any, opt_state: Any) -> tuple[Any, Any]:
        """``(params, opt_state)`` held where they started: the params by their leaves'
        shardings, every params-shaped subtree of the state like the params, the rest of
        the state replicated."""
        treedef = jax.tree.structure(params)
        shapes = [jnp.shape(x) for x in jax.tree.leaves(params)]

        def like_params(node):
            leaves, structure = jax.tree.flatten(node)
            return structure == treedef and [jnp.shape(x) for x in leaves] == shapes

        def place(node):
            if like_params(node):
                return treedef.unflatten(
                    jax.lax.with_sharding_constraint(x, s)
                    for x, s in zip(jax.tree.leaves(node), self.params, strict=True))
            return jax.tree.map(
                lambda x: jax.lax.with_sharding_constraint(x, self.replicated), node)

        return place(params), jax.tree.map(place, opt_state, is_leaf=like_params)
