"""What :func:`jaxgd.sweep` returns: the trial table, the loss curves, the best trial."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxgd.sweep.trials import Trials
from jaxgd.train.result import NONFINITE, FitResult, stop_reason_name


@dataclass(frozen=True)
class SweepResult:
    """The trials of a sweep and how each one went.

    Attributes:
      trials: the optimizer, hyperparameter values and seed of each trial (row ``i`` =
        trial ``i``).
      fit: the :class:`jaxgd.FitResult` of all trials, each field with a leading trial
        axis, as the program left it on its devices, except the records derived from
        the trials' histories on the host (``losses``, ``grad_norms``, ``converged``
        and, unless the loop keeps them itself, the counts and best losses): NumPy
        arrays. Its ``opt_state`` is None when the trials' optimizer states differ in
        structure (several optimizers, or static values that change the state, such as
        ``momentum=None`` against ``0.9``): rerun a trial with :func:`jaxgd.fit` for it.
      final_loss: ``(T,)`` the loss at each trial's returned params (on all of ``data``).
      val_loss: ``(T,)`` the loss at each trial's returned params on ``val_data``; None
        without ``val_data``.
      mini_batch: whether the trials trained on mini-batches (``batch_size`` given), so
        that their loss curves are of single batches.
    """

    trials: Trials
    fit: FitResult
    final_loss: np.ndarray
    val_loss: np.ndarray | None = None
    mini_batch: bool = False

    @property
    def hyperparams(self) -> dict[str, np.ndarray]:
        return self.trials.hyperparams

    @property
    def losses(self) -> np.ndarray:
        """``(trials, max_steps)`` loss curves, NaN after each trial stopped."""
        return np.asarray(self.fit.losses)

    @property
    def num_steps(self) -> np.ndarray:
        return np.asarray(self.fit.num_steps)

    @property
    def diverged(self) -> np.ndarray:
        """``(T,)`` bool: the trial met a NaN/Inf loss or gradient and was stopped there."""
        return np.asarray(self.fit.stop_code) == NONFINITE

    @property
    def best_loss(self) -> np.ndarray:
        """``(T,)`` the lowest loss on all of ``data`` that each trial is known to reach.

        Full batch, that is ``min(nanmin(losses), final_loss)``: every point of the loss
        curve is a full-data loss. With mini-batches, a curve point is the loss of one
        batch, whose minimum is noise rather than a property of the params: it is then
        ``final_loss``, the full-data loss of the returned params.
        """
        if self.mini_batch:
            return self.final_loss
        both = np.column_stack([self.losses, self.final_loss])
        return np.fmin.reduce(np.where(np.isfinite(both), both, np.nan), axis=1)

    @property
    def score(self) -> np.ndarray:
        """``(T,)`` what :attr:`best_index` minimises: ``val_loss`` with validation data,
        else ``final_loss``."""
        return self.final_loss if self.val_loss is None else self.val_loss

    @property
    def best_index(self) -> int:
        """The trial with the lowest :attr:`score` among those that did not diverge."""
        i = self._best_index_or_none()
        if i is None:
            raise ValueError("every trial diverged: there is no best trial.")
        return i

    def _best_index_or_none(self) -> int | None:
        score = np.where(self.diverged | ~np.isfinite(self.score), np.inf, self.score)
        return None if np.all(np.isinf(score)) else int(np.argmin(score))

    @property
    def best(self) -> dict[str, Any]:
        """The best trial's row of :meth:`table`."""
        return self._row(self.best_index)

    def _row(self, i: int) -> dict[str, Any]:
        row = {name: column[i] for name, column in self.table().items()}
        return {name: getattr(v, "item", lambda v=v: v)() for name, v in row.items()}

    @property
    def best_params(self) -> Any:
        """The params returned by the best trial."""
        i = self.best_index
        return jax.tree.map(lambda x: _on_host(x[i]), self.fit.params)

    def table(self) -> dict[str, np.ndarray]:
        """One column per trial property: ``optimizer`` (with a dict of optimizers), one
        per hyperparameter, ``seed``, ``final_loss``, ``best_loss``; with ``val_data``,
        ``val_loss``, ``best_val_loss`` and ``best_epoch`` (from :class:`jaxgd.FitResult`);
        then ``steps``, ``diverged`` and ``stop_reason``."""
        columns = {} if self.trials.optimizer is None else {"optimizer": self.trials.optimizer}
        columns.update(self.trials.hyperparams)
        columns.update(seed=self.trials.seeds, final_loss=self.final_loss,
                       best_loss=self.best_loss)
        if self.val_loss is not None:
            columns.update(val_loss=self.val_loss,
                           best_val_loss=np.asarray(self.fit.best_val_loss),
                           best_epoch=np.asarray(self.fit.best_epoch))
        columns.update(steps=self.num_steps, diverged=self.diverged,
                       stop_reason=np.asarray(stop_reason_name(np.asarray(self.fit.stop_code))))
        return columns

    def to_pandas(self):
        """The :meth:`table` as a ``pandas.DataFrame`` (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as err:
            raise ImportError("to_pandas() needs pandas: pip install pandas.") from err
        return pd.DataFrame(self.table())

    def plot(self, path: str | None = None, x: str | None = None):
        """Final (or validation) loss against ``x``, one U curve per setting of the other
        swept columns, averaged over seeds with a min-max band (default ``x``: the first
        numeric hyperparameter that varies), and the loss curves; saved to ``path`` if
        given. Needs matplotlib. Returns the figure; see :func:`jaxgd.plot.plot_sweep`."""
        from jaxgd.plot import plot_sweep

        return plot_sweep(self, path, x=x)

    def __repr__(self) -> str:
        names = ", ".join(self.trials.hyperparams)
        if self.trials.optimizer is not None:
            names = f"{', '.join(dict.fromkeys(self.trials.optimizer))} x {names}"
        i = self._best_index_or_none()
        best = "none, every trial diverged" if i is None else self._row(i)
        return (f"SweepResult({self.trials.count} trials over {names}; "
                f"{int(self.diverged.sum())} diverged; best: {best})")


def _on_host(x: Any) -> Any:
    """``x``, or a NumPy copy of the whole of it where other processes hold parts of it
    (a multi-host sweep; every process must ask for it)."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return multihost_utils.process_allgather(x, tiled=True)
    return x
