"""Validation and early stopping for :func:`jaxgd.fit`.

The validation loss :math:`v_e = \\ell(p, D_{val})` is evaluated on the whole of
``val_data`` after every epoch :math:`e` (and after the last step, if the run stops within
an epoch). An epoch *improves* when :math:`v_e < \\min_{e' < e} v_{e'}` (NaN never does);
the run stops with "patience" once ``patience`` consecutive epochs have not improved.
With ``restore_best`` the loop keeps the best parameters and optimizer state
(:class:`jaxgd.train.step.Kept`) so that the run can return them.

The params :math:`p` are those to evaluate at: for a schedule-free optimizer the average
:math:`x` (:func:`evaluation_params`), not the params the gradients are taken at.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core.base import OptState, Params
from jaxgd.transforms.schedule_free import evaluation_params as _schedule_free_evaluation


class Validation(NamedTuple):
    """The validation part of the loop's state."""

    losses: jax.Array  # (num_epochs,), NaN until evaluated
    best_loss: jax.Array
    best_epoch: jax.Array  # -1 until a finite loss is seen
    bad_epochs: jax.Array  # consecutive epochs without improvement


def evaluation_params(opt_state: OptState, params: Params) -> Params:
    """The params to evaluate at: :func:`jaxgd.schedule_free_eval_params` when
    ``opt_state`` holds a schedule-free state (decided while tracing, by the state's
    structure), else ``params`` themselves (the same object)."""
    return _schedule_free_evaluation(opt_state, params)


def init(num_epochs: int, dtype: Any) -> Validation:
    """The state before any evaluation."""
    return Validation(
        losses=jnp.full((num_epochs,), jnp.nan, dtype),
        best_loss=jnp.asarray(jnp.inf, dtype),
        best_epoch=jnp.asarray(-1, jnp.int32),
        bad_epochs=jnp.asarray(0, jnp.int32),
    )


def record(val: Validation, loss: jax.Array, epoch: jax.Array, epoch_end: jax.Array,
           patience: jax.Array) -> tuple[Validation, jax.Array, jax.Array]:
    """Record the validation ``loss`` after ``epoch`` (``epoch_end``: the run went through
    the whole epoch rather than stopping within it); return the new state, whether it
    improved on the best, and whether patience has run out (tested only at an epoch's
    end)."""
    loss = loss.astype(val.losses.dtype)
    improved = loss < val.best_loss
    bad_epochs = jnp.where(improved, 0, val.bad_epochs + epoch_end.astype(jnp.int32))
    new = Validation(
        losses=val.losses.at[epoch].set(loss),
        best_loss=jnp.where(improved, loss, val.best_loss),
        best_epoch=jnp.where(improved, epoch, val.best_epoch),
        bad_epochs=bad_epochs,
    )
    return new, improved, epoch_end & (bad_epochs >= patience)
