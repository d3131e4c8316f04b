"""The result of :func:`jaxgd.fit` and the codes of the reasons a run stops.

Every field of :class:`FitResult` is an array (or ``None``), so that a whole run can be
``jax.vmap``-ed: the reason a run stopped is stored as an ``int32`` code, and
:attr:`FitResult.stop_reason` turns concrete codes back into names.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np

#: The names of the stop codes, indexed by code. ``RUNNING`` (-1) never leaves the loop.
STOP_REASONS: tuple[str, ...] = ("max_steps", "tol", "grad_tol", "patience", "nonfinite")

RUNNING = -1
MAX_STEPS, TOL, GRAD_TOL, PATIENCE, NONFINITE = range(len(STOP_REASONS))


def converged(code: Any) -> Any:
    """Whether a convergence test (``tol`` or ``grad_tol``) stopped the run, for stop
    codes as jax or NumPy arrays (:attr:`FitResult.converged`)."""
    return (code == TOL) | (code == GRAD_TOL)


def stop_reason_name(code: Any) -> str | np.ndarray:
    """The name of a concrete stop code, or an array of names for an array of codes."""
    if isinstance(code, jax.core.Tracer):
        raise TypeError(
            "stop_reason needs a concrete stop code, but it is traced (inside jit or vmap); "
            "return FitResult.stop_code from the transformed function and name it outside."
        )
    codes = np.asarray(code)
    names = np.asarray(STOP_REASONS, dtype=object)
    if codes.ndim == 0:
        return str(names[int(codes)])
    return names[codes]


class FitResult(NamedTuple):
    """What :func:`jaxgd.fit` returns; a pytree of arrays, so runs can be vmapped.

    ``T`` below is the ``max_steps`` of the run (after converting ``num_epochs``) and
    ``E = ceil(T / steps_per_epoch)`` its number of epochs. Under ``jax.vmap`` every field
    gains the leading batch axis.

    Attributes:
      params: the returned parameters: those after the last step taken; after a
        non-finite stop, the last ones whose loss and gradient were finite (so their loss
        is ``losses[num_steps]``, finite); with ``restore_best``, those of the best
        validation loss (with ``val_data``) or of the best training loss (full batch).
        For a schedule-free optimizer, the evaluation params :math:`x` of that point
        (:func:`jaxgd.schedule_free_eval_params`); its training params are
        ``train_params``.
      opt_state: the optimizer state that goes with ``params`` (resume with
        ``fit(..., opt_state=result.opt_state)``; from ``train_params`` for a
        schedule-free optimizer).
      losses: ``(T,)``; ``losses[i]`` is the loss of step ``i``'s batch at the parameters
        that step ``i`` started from; NaN for a step that did not run or whose loss or
        gradient was not finite. Without skipped steps, step ``i`` starts from the
        parameters of ``i`` updates.
      grad_norms: ``(T,)``; the global norm of the gradient of ``losses[i]``, NaN likewise.
      num_steps: ``int32``, the number of updates behind the last parameters (after a
        non-finite stop, the last finite ones: the update that left them is undone).
      stop_code: ``int32``, index into :data:`STOP_REASONS`; see :attr:`stop_reason`.
      converged: ``bool``, whether a convergence test (``tol`` or ``grad_tol``) stopped
        the run. Early stopping on ``patience`` is reported by its own stop reason.
      aux: with ``has_aux=True``, the auxiliary output of the last finite step (zeros of
        its shape if there was none); else ``None``.
      val_losses: ``(E,)``, with ``val_data``: ``val_losses[e]`` is the validation loss
        after epoch ``e`` (or after the last step, if the run stopped within epoch ``e``;
        NaN if it stopped there on a non-finite value); NaN for the epochs not reached.
        ``None`` without ``val_data``.
      best_val_loss: the smallest validation loss seen (``inf`` if none was finite);
        ``None`` without ``val_data``.
      best_epoch: ``int32``, the epoch of ``best_val_loss`` (-1 if none); ``None``
        without ``val_data``.
      best_loss: the smallest finite training loss seen (``inf`` if none): the lowest of
        ``losses`` (batch losses with mini-batches, so a noisy figure there) and, with
        ``restore_best`` on full batches, the loss of the last parameters too.
      best_step: ``int32``, the number of updates behind the parameters of ``best_loss``
        (-1 if none).
      num_skipped: ``int32``, the batches dropped by ``on_nonfinite="skip"``.
      train_params: for a schedule-free optimizer, the params :math:`y` the run trained
        (the gradients' point, where ``losses`` are taken), which go with ``opt_state``;
        ``None`` otherwise (they are ``params``).
      ema_params: with ``fit(..., ema_decay=beta)``, the bias-corrected exponential
        moving average of the params after each step up to the returned point
        (:func:`jaxgd.params_ema_update`; the params the optimizer holds, ``train_params``
        for a schedule-free one); ``None`` otherwise.
      final_loss: the training loss at ``params`` on the whole data, where the loop
        evaluates it anyway: in :func:`jaxgd.sweep`'s full-batch runs of fixed length
        (no ``tol``, ``grad_tol``, validation or ``restore_best``), whose loop runs one
        step more for it; ``None`` otherwise (evaluate ``loss_fn(result.params, data)``).
    """

    params: Any
    opt_state: Any
    losses: jax.Array
    grad_norms: jax.Array
    num_steps: jax.Array
    stop_code: jax.Array
    converged: jax.Array
    aux: Any = None
    val_losses: jax.Array | None = None
    best_val_loss: jax.Array | None = None
    best_epoch: jax.Array | None = None
    best_loss: jax.Array | None = None
    best_step: jax.Array | None = None
    num_skipped: jax.Array | None = None
    train_params: Any = None
    ema_params: Any = None
    final_loss: jax.Array | None = None

    @property
    def stop_reason(self) -> str | np.ndarray:
        """Why the run stopped: one of :data:`STOP_REASONS` (an array of them for a
        vmapped result). Needs a concrete result (outside ``jit`` / ``vmap``)."""
        return stop_reason_name(self.stop_code)
