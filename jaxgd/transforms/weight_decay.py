"""Decoupled weight decay."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from jaxgd.core import checks, tree
from jaxgd.core.base import GradientTransformation, flatten_invariant, identity, init_empty_state
from jaxgd.transforms.masking import masked


def add_decayed_weights(weight_decay=0.0, mask: Any | Callable[[Any], Any] = None):
    """Add the weights, scaled, to the updates: :math:`u \\leftarrow g + \\lambda\\,p`.

    Placed before the learning-rate scaling this is decoupled weight decay (AdamW,
    Loshchilov & Hutter, 2019).

    Args:
      weight_decay: :math:`\\lambda \\ge 0`.
      mask: a tree of booleans with the structure of the params (or a prefix of it), or
        a function ``params -> mask``; only leaves marked ``True`` are decayed. Leaves
        marked ``False`` pass through unchanged (typical: no decay for biases and norms).
    """
    checks.non_negative("weight_decay", weight_decay)
    if isinstance(weight_decay, (int, float)) and weight_decay == 0:
        return identity()  # as optax: a literal zero decay reads no params at all

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(
                "add_decayed_weights needs params: call update(updates, state, params)."
            )
        tree.check_same_structure(updates, params, "updates", "params")
        decayed = jax.tree.map(lambda g, p: (g + weight_decay * p).astype(g.dtype), updates,
                               params)
        return decayed, state

    decay = flatten_invariant(GradientTransformation(init_empty_state, update))
    return decay if mask is None else masked(decay, mask)
