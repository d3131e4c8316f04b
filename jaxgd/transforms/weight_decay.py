"""Decoupled weight decay."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from jaxgd.core import checks, tree
from jaxgd.core.base import GradientTransformation, init_empty_state


def _resolve_mask(mask, params):
    mask_tree = mask(params) if callable(mask) else mask
    try:
        jax.tree.map(lambda *_: None, mask_tree, params)
    except ValueError as err:
        raise ValueError(
            "mask must have the structure of params (or a prefix of it), but\n"
            f"  mask:   {jax.tree.structure(mask_tree)}\n"
            f"  params: {jax.tree.structure(params)}"
        ) from err
    return mask_tree


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

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(
                "add_decayed_weights needs params: call update(updates, state, params)."
            )
        tree.check_same_structure(updates, params, "updates", "params")

        def decay(g, p):
            return (g + weight_decay * p).astype(g.dtype)

        if mask is None:
            return jax.tree.map(decay, updates, params), state

        def decay_subtree(marked, g, p):
            return jax.tree.map(decay, g, p) if marked else g

        mask_tree = _resolve_mask(mask, params)
        return jax.tree.map(decay_subtree, mask_tree, updates, params), state

    return GradientTransformation(init_empty_state, update)
