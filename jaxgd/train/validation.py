"""Validation and early stopping for :func:`jaxgd.fit`.

The validation loss :math:`v_e = \\ell(p, D_{val})` is evaluated on the whole of
``val_data`` after every epoch :math:`e` (and after the last step, if the run stops within
an epoch). An epoch *improves* when :math:`v_e < \\min_{e' < e} v_{e'}` (NaN never does);
the run stops with "patience" once ``patience`` consecutive epochs have not improved.
The best parameters and optimizer state are kept (when ``restore_best``) so that the run
can return them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class Validation(NamedTuple):
    """The validation part of the loop's state."""

    losses: jax.Array  # (num_epochs,), NaN until evaluated
    best_loss: jax.Array
    best_epoch: jax.Array  # -1 until a finite loss is seen
    bad_epochs: jax.Array  # consecutive epochs without improvement
    best_params: Any  # None unless restore_best: the copies cost memory
    best_opt_state: Any


def init(params: Any, opt_state: Any, num_epochs: int, dtype: Any, keep_best: bool) -> Validation:
    """The state before any evaluation; the best params start as the initial ones."""
    return Validation(
        losses=jnp.full((num_epochs,), jnp.nan, dtype),
        best_loss=jnp.asarray(jnp.inf, dtype),
        best_epoch=jnp.asarray(-1, jnp.int32),
        bad_epochs=jnp.asarray(0, jnp.int32),
        best_params=params if keep_best else None,
        best_opt_state=opt_state if keep_best else None,
    )


def _keep_best(improved: jax.Array, new: Any, best: Any) -> Any:
    if best is None:
        return None
    return jax.tree.map(lambda a, b: jnp.where(improved, a, b), new, best)


def record(
    val: Validation,
    loss: jax.Array,
    epoch: jax.Array,
    epoch_end: jax.Array,
    patience: jax.Array,
    params: Any,
    opt_state: Any,
) -> tuple[Validation, jax.Array]:
    """Record the validation ``loss`` of ``params`` in ``epoch``; return the new state and
    whether patience has run out (tested only at an epoch's end)."""
    loss = loss.astype(val.losses.dtype)
    improved = loss < val.best_loss
    bad_epochs = jnp.where(improved, 0, val.bad_epochs + epoch_end.astype(jnp.int32))
    new = Validation(
        losses=val.losses.at[epoch].set(loss),
        best_loss=jnp.where(improved, loss, val.best_loss),
        best_epoch=jnp.where(improved, epoch, val.best_epoch),
        bad_epochs=bad_epochs,
        best_params=_keep_best(improved, params, val.best_params),
        best_opt_state=_keep_best(improved, opt_state, val.best_opt_state),
    )
    return new, epoch_end & (bad_epochs >= patience)
