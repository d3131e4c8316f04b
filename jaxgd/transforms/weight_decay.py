"""Decoupled weight decay."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxgd.core import checks, tree
from jaxgd.core.base import GradientTransformation, flatten_invariant, identity, init_empty_state
from jaxgd.transforms.masking import masked

# Which leaves a rule applies to: a tree of booleans shaped like the params (or a prefix of
# it), a function params -> such a tree, or None for all.
Mask = Any | Callable[[Any], Any] | None


def add_decayed_weights(weight_decay=0.0, mask: Any | Callable[[Any], Any] = None):
    """Add the weights, scaled, to the updates: :math:`u \\leftarrow g + \\lambda\\,p`.

    Placed before the learning-rate scaling this is decoupled weight decay (AdamW,
    Loshchilov & Hutter, 2019).

    Args:
      weight_decay: :math:`\\lambda \\ge 0`.
      mask: a tree of booleans with the structure of the params (or a prefix of it), or
        a function ``params -> mask``; only leaves marked ``True`` are decayed. Leaves
        marked ``False`` pass through unchanged (typical: no decay for biases and norms).

    ``None`` update leaves (frozen parameters) stay ``None``, as in optax.
    """
    checks.non_negative("weight_decay", weight_decay)
    if isinstance(weight_decay, (int, float)) and weight_decay == 0:
        return identity()  # as optax: a literal zero decay reads no params at all

    def update(updates, state, params=None, **extra_args):
        del extra_args
        checks.params_given("add_decayed_weights", params)
        tree.check_same_structure(updates, params, "updates", "params", none_is_leaf=True)
        decayed = jax.tree.map(
            lambda g, p: None if g is None else _decay(g, p, weight_decay), updates, params,
            is_leaf=lambda x: x is None)
        return decayed, state

    decay = flatten_invariant(GradientTransformation(init_empty_state, update))
    return decay if mask is None else masked(decay, mask)


def _decay(g, p, weight_decay):
    """:math:`g + \\lambda p` in the dtype of :math:`g + p` (bfloat16 gradients on float32
    params give float32, as in optax), whatever the dtype of :math:`\\lambda`."""
    return (g + weight_decay * p).astype(jnp.result_type(g, p))
