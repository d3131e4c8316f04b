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
      params: the returned parameters. Without ``val_data`` (or with
        ``restore_best=False``) they are the parameters after the last step taken, which
        are always finite when the steps' losses and gradients were (a step whose loss,
        gradient or new parameters are not finite is not applied). With ``val_data`` and
        ``restore_best=True``, the parameters of the best validation loss.
      opt_state: the optimizer state that goes with ``params`` (resume with
        ``fit(..., opt_state=result.opt_state)``).
      losses: ``(T,)``; ``losses[t]`` is the loss (on step ``t``'s batch) at the parameters
        that step ``t`` started from, for ``t < num_steps``; NaN from ``num_steps`` on.
      grad_norms: ``(T,)``; the global norm of the gradient of ``losses[t]``; NaN from
        ``num_steps`` on.
      num_steps: ``int32``, the number of updates applied.
      stop_code: ``int32``, index into :data:`STOP_REASONS`; see :attr:`stop_reason`.
      converged: ``bool``, whether a convergence test (``tol`` or ``grad_tol``) stopped
        the run. Early stopping on ``patience`` is reported by its own stop reason.
      aux: with ``has_aux=True``, the auxiliary output of the last step taken (zeros of its
        shape if none was taken); else ``None``.
      val_losses: ``(E,)``, with ``val_data``: ``val_losses[e]`` is the validation loss
        after epoch ``e`` (or after the last step, if the run stopped within epoch ``e``);
        NaN for the epochs not reached. ``None`` without ``val_data``.
      best_val_loss: the smallest validation loss seen (``inf`` if none was finite);
        ``None`` without ``val_data``.
      best_epoch: ``int32``, the epoch of ``best_val_loss`` (-1 if none); ``None``
        without ``val_data``.
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

    @property
    def stop_reason(self) -> str | np.ndarray:
        """Why the run stopped: one of :data:`STOP_REASONS` (an array of them for a
        vmapped result). Needs a concrete result (outside ``jit`` / ``vmap``)."""
        return stop_reason_name(self.stop_code)
