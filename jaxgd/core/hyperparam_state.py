"""The state that holds an optimizer's hyperparameters, and reading and changing them by
name: :func:`get_hyperparams` and :func:`set_hyperparams`, with paths for nested
optimizers (``"a/learning_rate"``, or ``{"a": {"learning_rate": ...}}``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import checks
from jaxgd.core.base import OptState


class InjectHyperparamsState(NamedTuple):
    """State of an optimizer whose hyperparameters live in the state (optax's layout).

    Attributes:
      count: the number of updates so far (int32), kept only when a hyperparameter
        follows a schedule; ``None`` otherwise.
      hyperparams: ``name -> scalar array``, the values the next ``update`` uses; a
        schedule's entry is its value at the last update (at step 0 after ``init``).
        Assign an entry (``state.hyperparams["learning_rate"] = 3e-4``), or use
        :func:`set_hyperparams`, which also keeps the dtype and checks the value.
      inner_state: the state of the wrapped transformation.
    """

    count: jax.Array | None
    hyperparams: dict[str, jax.Array]
    inner_state: OptState


_FIELDS = frozenset(InjectHyperparamsState._fields)


def is_inject_state(x) -> bool:
    """An :class:`InjectHyperparamsState`, or the dict flax's ``nnx.state`` makes of one
    (its fields by name, without those that hold no array)."""
    if isinstance(x, InjectHyperparamsState):
        return True
    return (isinstance(x, Mapping) and "hyperparams" in x and set(x) <= _FIELDS
            and isinstance(x["hyperparams"], Mapping))


def _hyperparams_of(node) -> Mapping:
    return node["hyperparams"] if isinstance(node, Mapping) else node.hyperparams


def _unboxed(value):
    """The array in flax's ``nnx.Variable`` boxes, other values as they are."""
    return value.get_value() if hasattr(value, "get_value") else value


def _path_name(path: tuple, with_attributes: bool) -> str:
    """``"a/0"`` for a state found at ``.inner_states["a"].inner_state[0]``: the keys of
    dicts and the indices of sequences, the attribute names only if needed to tell two
    optimizers apart."""
    parts = []
    for entry in path:
        if isinstance(entry, (jax.tree_util.DictKey, jax.tree_util.FlattenedIndexKey)):
            parts.append(str(entry.key))
        elif isinstance(entry, jax.tree_util.SequenceKey):
            parts.append(str(entry.idx))
        elif with_attributes and isinstance(entry, jax.tree_util.GetAttrKey):
            parts.append(entry.name)
    return "/".join(parts)


def _optimizers(opt_state: OptState) -> tuple[dict[str, int], list, Any]:
    """The outermost optimizer states in ``opt_state``: their paths ('' if there is one)
    to their positions in the leaves of ``opt_state`` (those states taken as leaves),
    the leaves and the tree's structure."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(opt_state, is_leaf=is_inject_state)
    found = [(path, i) for i, (path, node) in enumerate(flat) if is_inject_state(node)]
    leaves = [node for _, node in flat]
    if len(found) == 1:
        return {"": found[0][1]}, leaves, treedef
    by_path = {_path_name(path, False): i for path, i in found}
    if len(by_path) < len(found):
        by_path = {_path_name(path, True): i for path, i in found}
    return by_path, leaves, treedef


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, name = key.split("/")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[name] = value
    return nested


def _flatten(values: Mapping, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, full + "/"))
        else:
            flat[full] = value
    return flat


def get_hyperparams(opt_state: OptState) -> dict[str, Any]:
    """The hyperparameters held in ``opt_state``.

    With one optimizer in the state (however deep: under ``chain``, ``masked``,
    ``MultiSteps``, flax's ``nnx.Optimizer``), ``{name: value}``. With several (under
    ``partition``, or a ``chain`` of two aliases), one such dict per optimizer, nested
    by its path: the dict keys and sequence indices that lead to it, e.g.
    ``{"a": {"learning_rate": ...}, "b": {...}}`` or ``{"0": {...}, "1": {...}}``.
    """
    positions, leaves, _ = _optimizers(opt_state)
    optimizers = {path: leaves[i] for path, i in positions.items()}
    found = {f"{path}/{name}".lstrip("/"): _unboxed(value) for path, node in optimizers.items()
             for name, value in _hyperparams_of(node).items()}
    return found if list(optimizers) == [""] else _nest(found)


def set_hyperparams(opt_state: OptState, values: Mapping[str, Any] | None = None,
                    /, **named: Any) -> OptState:
    """Return ``opt_state`` with new hyperparameter values; nothing is recompiled.

    Name them as :func:`get_hyperparams` shows them: ``learning_rate=3e-4`` with one
    optimizer in the state; with several, by path, as a nested dict
    (``set_hyperparams(state, {"a": {"learning_rate": 3e-4}})``) or a ``"a/learning_rate"``
    key (``set_hyperparams(state, {"a/learning_rate": 3e-4})``).

    Each value keeps the dtype and shape of the one it replaces, so a jitted step sees
    the same input types and is not traced again. Concrete values are checked like the
    optimizer's arguments (e.g. a negative learning rate raises ``ValueError``).

    Example:
      >>> import jax, jax.numpy as jnp, jaxgd
      >>> opt = jaxgd.adam(1e-3)
      >>> state = opt.init({"w": jnp.ones(3)})
      >>> state = jaxgd.set_hyperparams(state, learning_rate=3e-4)
      >>> float(jaxgd.get_hyperparams(state)["learning_rate"])
      0.0003...
    """
    wanted = _flatten({**(values or {}), **named})
    positions, leaves, treedef = _optimizers(opt_state)
    optimizers = {path: leaves[i] for path, i in positions.items()}
    held = {f"{path}/{name}".lstrip("/"): (path, name)
            for path, node in optimizers.items() for name in _hyperparams_of(node)}
    unknown = sorted(set(wanted) - set(held))
    if unknown:
        raise ValueError(_unknown_message(unknown, optimizers, held))
    for key, value in wanted.items():
        checks.check_by_name(held[key][1], value)
    for path, node in optimizers.items():
        new = dict(_hyperparams_of(node))
        for key, (where, name) in held.items():
            if where == path and key in wanted:
                new[name] = _like(new[name], wanted[key])
        leaves[positions[path]] = (type(node)({**node, "hyperparams": new})
                                   if isinstance(node, Mapping) else node._replace(hyperparams=new))
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _like(old, value):
    """``value`` with the dtype and shape of ``old`` (the batch axes of a vmapped state);
    into ``old`` itself if it is a mutable box of a value (flax's ``nnx.Variable``)."""
    box = old if hasattr(old, "set_value") else None
    old = _unboxed(old)
    new = jnp.broadcast_to(jnp.asarray(value, jnp.result_type(old)), jnp.shape(old))
    if box is None:
        return new
    box.set_value(new)
    return box


def _unknown_message(unknown: list[str], optimizers: dict, held: dict) -> str:
    fix = "Schedules and flags are fixed when the optimizer is built."
    if not optimizers:
        return f"unknown hyperparameter(s) {unknown}: this state holds none."
    if list(optimizers) != [""]:
        paths = sorted(optimizers)
        bare = [k for k in unknown if "/" not in k]
        if bare:
            return (f"hyperparameter(s) {bare} need a path: this state holds "
                    f"{len(paths)} optimizers, at {paths}. Name each value by its path, e.g. "
                    f"set_hyperparams(state, {{{paths[0]!r}: {{{bare[0]!r}: ...}}}}) or "
                    f"{{'{paths[0]}/{bare[0]}': ...}}; the names there are {sorted(held)}.")
        no_path = sorted({k.rsplit("/", 1)[0] for k in unknown} - set(paths))
        if no_path:
            return (f"no optimizer at path(s) {no_path}: this state holds optimizers at "
                    f"{paths}, with hyperparameters {sorted(held)}.")
    return (f"unknown hyperparameter(s) {unknown}: this optimizer state holds "
            f"{sorted(held) or 'none'}. {fix}")
