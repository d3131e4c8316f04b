"""Where a sweep runs: its mesh (trials over one axis, the data's examples over the
others), moving its inputs there, and, over several processes, checking that all of them
sweep the same trials and giving each one every trial's results."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxgd.sweep.trials import Trials
from jaxgd.train.result import FitResult


class Placement(NamedTuple):
    """Where a sweep runs: its mesh, the mesh axis its trials are split over, and the
    axes (the others) that the data's examples are split over."""

    mesh: Mesh
    trial_axis: str
    data_axes: tuple[str, ...]

    @property
    def lanes(self) -> int:
        """How many groups of devices the trials are split over."""
        return self.mesh.shape[self.trial_axis]

    def sharding(self, *spec) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec(*spec))

    def data_sharding(self, tree: Any) -> Any:
        """Every leaf of ``tree`` (data) split over the data axes along its examples."""
        axes = self.data_axes[0] if len(self.data_axes) == 1 else (self.data_axes or None)
        return jax.tree.map(lambda _: self.sharding(axes), tree)


def placement_of(devices: Sequence[jax.Device] | None, mesh: Mesh | None,
               trial_axis: str) -> Placement:
    if mesh is None:
        return Placement(Mesh(np.array(list(devices or jax.devices())), (trial_axis,)),
                         trial_axis, ())
    if devices is not None:
        raise ValueError("give devices or mesh, not both: a mesh names its devices.")
    if trial_axis not in mesh.axis_names:
        raise ValueError(f"trial_axis={trial_axis!r} is not an axis of the mesh, whose axes "
                         f"are {mesh.axis_names}; pass trial_axis= one of them.")
    return Placement(mesh, trial_axis, tuple(a for a in mesh.axis_names if a != trial_axis))


def _fingerprint(trials: Trials) -> np.ndarray:
    """A digest of the trials (names, values, seeds, optimizers) that is the same in
    every process given the same grid: callables count by name, not by address."""
    def text(v):
        return (getattr(v, "__qualname__", None) or repr(v)) if callable(v) else repr(v)

    digest = hashlib.sha256()
    for name in sorted(trials.hyperparams):
        column = trials.hyperparams[name]
        digest.update(name.encode())
        digest.update(column.tobytes() if column.dtype != object
                      else "|".join(map(text, column)).encode())
    digest.update(np.asarray(trials.seeds).tobytes())
    if trials.optimizer is not None:
        digest.update("|".join(map(str, trials.optimizer)).encode())
    return np.frombuffer(digest.digest()[:8], np.uint32)


def check_same_grid_everywhere(trials: Trials) -> None:
    """Every process of a multi-host sweep must sweep the same trials."""
    if jax.process_count() == 1:
        return
    seen = np.asarray(multihost_utils.process_allgather(_fingerprint(trials)))
    differ = [i for i in range(len(seen)) if not np.array_equal(seen[i], seen[0])]
    if differ:
        raise ValueError(
            f"process(es) {differ} passed other hyperparameters, seeds or optimizers than "
            "process 0: every process of a multi-host sweep must make the same sweep call "
            "(same grid, in the same order).")


def check_data_split(data: Any, placement: Placement, name: str) -> None:
    """The data's examples must split evenly over the devices of the data axes."""
    if data is None or not placement.data_axes:
        return
    devices = math.prod(placement.mesh.shape[a] for a in placement.data_axes)
    n = int(np.shape(jax.tree.leaves(data)[0])[0])
    if n % devices:
        raise ValueError(
            f"{name} has {n} examples, which do not split evenly over the {devices} "
            f"devices of the mesh axes {placement.data_axes}; drop the last {n % devices} "
            f"examples, or use a mesh whose data axes hold a divisor of {n} devices.")


def moved_onto(x: Any, sharding: NamedSharding) -> Any:
    """An array committed to other devices moved onto the sweep's (jit refuses it);
    anything else as it is (jit places it)."""
    if isinstance(x, jax.Array) and x.committed and x.sharding != sharding:
        return jax.device_put(x, sharding)
    return x


def gather_trials(results: FitResult, finals: jax.Array, vals: jax.Array | None) -> tuple:
    """A multi-host sweep's per-trial results, every trial's copied to every process
    (small: losses, codes, steps); the params and optimizer states stay global arrays,
    split over the processes (see :meth:`SweepResult.best_params`)."""
    small = results._replace(params=None, opt_state=None)
    small, finals, vals = multihost_utils.process_allgather((small, finals, vals), tiled=True)
    return small._replace(params=results.params, opt_state=results.opt_state), finals, vals
