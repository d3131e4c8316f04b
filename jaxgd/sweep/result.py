"""What :func:`jaxgd.sweep` returns: the trial table, the loss curves, the best trial."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from jaxgd.sweep.trials import Trials
from jaxgd.train.result import NONFINITE, FitResult, stop_reason_name


@dataclass(frozen=True)
class SweepResult:
    """The trials of a sweep and how each one went.

    Attributes:
      trials: the hyperparameter values and seed of each trial (row ``i`` = trial ``i``).
      fit: the :class:`jaxgd.FitResult` of all trials, each field with a leading trial axis.
      final_loss: ``(T,)`` the loss at each trial's returned params (on all of ``data``).
    """

    trials: Trials
    fit: FitResult
    final_loss: np.ndarray

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
        """``(T,)`` the lowest loss each trial recorded."""
        with np.errstate(all="ignore"):
            return np.nanmin(np.where(np.isfinite(self.losses), self.losses, np.nan), axis=1)

    @property
    def best_index(self) -> int:
        """The trial with the lowest final loss among those that did not diverge."""
        score = np.where(self.diverged | ~np.isfinite(self.final_loss), np.inf, self.final_loss)
        if np.all(np.isinf(score)):
            raise ValueError("every trial diverged: there is no best trial.")
        return int(np.argmin(score))

    @property
    def best(self) -> dict[str, Any]:
        """The best trial's row of :meth:`table`."""
        i = self.best_index
        row = {name: column[i] for name, column in self.table().items()}
        return {name: getattr(v, "item", lambda v=v: v)() for name, v in row.items()}

    @property
    def best_params(self) -> Any:
        """The params returned by the best trial."""
        i = self.best_index
        return jax.tree.map(lambda x: x[i], self.fit.params)

    def table(self) -> dict[str, np.ndarray]:
        """One column per hyperparameter, then seed, final and best loss, steps, diverged,
        and the stop reason."""
        return {
            **self.trials.hyperparams,
            "seed": self.trials.seeds,
            "final_loss": self.final_loss,
            "best_loss": self.best_loss,
            "steps": self.num_steps,
            "diverged": self.diverged,
            "stop_reason": np.asarray(stop_reason_name(np.asarray(self.fit.stop_code))),
        }

    def to_pandas(self):
        """The :meth:`table` as a ``pandas.DataFrame`` (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as err:
            raise ImportError("to_pandas() needs pandas: pip install pandas.") from err
        return pd.DataFrame(self.table())

    def plot(self, path: str | None = None, x: str | None = None):
        """Final loss against ``x`` (the classic U curve; default: the first swept
        hyperparameter) and the loss curves; saved to ``path`` if given. Needs matplotlib.
        Returns the figure."""
        from jaxgd.plot import plot_sweep

        return plot_sweep(self, path, x=x)

    def __repr__(self) -> str:
        names = ", ".join(self.trials.hyperparams)
        return (f"SweepResult({self.trials.count} trials over {names}; "
                f"{int(self.diverged.sum())} diverged; best: {self.best})")
