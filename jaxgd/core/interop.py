"""What jaxgd shares with optax when optax is installed.

optax recognises transformations and masked-out nodes by type: ``optax.chain``,
``optax.MultiSteps`` and the other optax wrappers pass extra arguments (``value``,
``grad``, ``value_fn``) only to instances of ``optax.GradientTransformationExtraArgs``,
and ``optax.tree.map_params`` walks ``init`` with a private placeholder in place of the
params. So when optax can be imported, jaxgd's protocol types are built on optax's
(:class:`jaxgd.GradientTransformation` subclasses ``optax.GradientTransformationExtraArgs``,
:class:`jaxgd.MaskedNode` is ``optax.MaskedNode``) and jaxgd's wrappers recognise the
placeholder. Without optax, they are plain named tuples and nothing here imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

try:
    import optax
except ImportError:
    optax = None


class _PlainGradientTransformation(NamedTuple):
    init: Callable[[Any], Any]
    update: Callable[..., tuple[Any, Any]]


class _PlainMaskedNode(NamedTuple):
    """Stands in for a masked-out subtree: a node without leaves, so every ``jax.tree.map``
    over the masked tree (and every inner transformation) skips it."""


def _params_placeholder_type() -> type | None:
    """The type of the object ``optax.tree.map_params`` gives ``init`` in place of the
    params, read through the public API because optax keeps the class private."""
    seen = []
    optax.tree_utils.tree_map_params(seen.append, lambda x: x, None)
    return type(seen[0])


if optax is None:
    GradientTransformationBase: type = _PlainGradientTransformation
    MaskedNode: type = _PlainMaskedNode
    _PLACEHOLDER_TYPE = None
else:
    GradientTransformationBase = optax.GradientTransformationExtraArgs
    MaskedNode = optax.MaskedNode
    _PLACEHOLDER_TYPE = _params_placeholder_type()


def is_params_placeholder(params: Any) -> bool:
    """Whether ``params`` is ``optax.tree.map_params``'s stand-in for the params: an
    ``init`` given it builds the state's layout without reading any param."""
    return _PLACEHOLDER_TYPE is not None and isinstance(params, _PLACEHOLDER_TYPE)
