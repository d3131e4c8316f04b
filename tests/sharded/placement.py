"""Meshes and placements for the 4-device tests."""

import contextlib

import jax
from jax.sharding import AxisType, NamedSharding, PartitionSpec


def make_mesh(shape, names, axis_type):
    return jax.make_mesh(shape, names, axis_types=(axis_type,) * len(shape))


def on(mesh, axis_type):
    """The context a program on ``mesh`` runs in: an explicit mesh must be set."""
    return jax.set_mesh(mesh) if axis_type == AxisType.Explicit else contextlib.nullcontext()


def put(x, mesh, *spec):
    return jax.device_put(x, NamedSharding(mesh, PartitionSpec(*spec)))


def spec_of(x):
    """The partition spec of a concrete array, trailing Nones dropped (``P('d', None)``
    and ``P('d',)`` place an array alike)."""
    spec = tuple(x.sharding.spec) if isinstance(x.sharding, NamedSharding) else ()
    while spec and spec[-1] is None:
        spec = spec[:-1]
    return spec
