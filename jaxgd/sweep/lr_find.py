"""``jaxgd.lr_find``: a learning rate chosen from short real trainings at many rates, all
run as one vmapped program by :func:`jaxgd.sweep`."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from jaxgd.core import checks
from jaxgd.core.base import Params
from jaxgd.sweep.result import SweepResult
from jaxgd.sweep.run import sweep

#: The defaults of :func:`lr_find`: the rates ``logspace(MIN_LR, MAX_LR, NUM_RATES)``,
#: each trained ``SHORT_STEPS`` steps; a rate is as good as the best one when it is
#: within ``TOLERANCE`` of the best improvement.
MIN_LR, MAX_LR, NUM_RATES, SHORT_STEPS, TOLERANCE = 1e-6, 10.0, 25, 100, 0.05

#: sweep's arguments that lr_find sets itself.
_SET_BY_LR_FIND = ("hyperparams", "mode", "init_fn")


class LRFindError(ValueError):
    """No rate of the range lowered the loss without diverging. ``result`` holds the
    curve (:class:`LRFindResult` with ``suggestion=None``), so it can still be plotted."""

    def __init__(self, message: str, result: LRFindResult):
        super().__init__(message)
        self.result = result


def best_index(losses: np.ndarray, diverged: np.ndarray) -> int | None:
    """The index of the lowest finite loss of a rate that did not diverge (None if none)."""
    losses = np.asarray(losses, np.float64)
    usable = ~np.asarray(diverged, bool) & np.isfinite(losses)
    return int(np.argmin(np.where(usable, losses, np.inf))) if usable.any() else None


def suggested_index(losses: np.ndarray, diverged: np.ndarray, initial_loss: float,
                    tolerance: float, overshot: np.ndarray | None = None) -> int | None:
    """The index of the suggested rate in ``losses`` (ordered by ascending rate), or None.

    Let ``f*`` be the lowest short-run loss among the rates that did not diverge and
    ``f0`` the loss at the start. A rate is *as good as the best* when its loss is at most
    ``f* + tolerance * (f0 - f*)``: it made all but ``tolerance`` of the best progress.
    The suggestion is the largest rate of the unbroken run of such rates that starts at
    the best one and goes up; a good rate above a bad or diverged one is not taken (an
    isolated lucky lane is not a stable region). The run also stops below a rate that
    ``overshot``, whose loss rose above its start at some step: it was unstable for a
    while and came back, which a longer run or another start need not repeat (the best
    rate itself is kept even so: nothing did better). None when every rate diverged or
    none lowered the loss.

    Measuring against the progress ``f0 - f*`` rather than against ``f*`` itself makes
    the rule unchanged when the loss is shifted or scaled (a loss whose minimum is
    negative or zero included).
    """
    losses = np.asarray(losses, np.float64)
    usable = ~np.asarray(diverged, bool) & np.isfinite(losses)
    if overshot is not None:
        usable &= ~np.asarray(overshot, bool)
    best = best_index(losses, diverged)
    if best is None or not losses[best] < initial_loss:
        return None
    threshold = losses[best] + tolerance * (initial_loss - losses[best])
    i = best
    while i + 1 < len(losses) and usable[i + 1] and losses[i + 1] <= threshold:
        i += 1
    return i


@dataclass(frozen=True)
class LRFindResult:
    """What :func:`jaxgd.lr_find` returns: the curve and the suggested rate.

    Attributes:
      rates: ``(K,)`` the rates tried, ascending.
      losses: ``(K,)`` the loss on all of ``data`` after each rate's short run (the mean
        over seeds with several seeds).
      diverged: ``(K,)`` whether the run at that rate met a NaN/Inf loss or gradient (with
        several seeds: in any of them).
      overshot: ``(K,)`` whether the run's full-batch loss rose above its start loss at
        some step (in any seed); all False with mini-batches, whose curve points are the
        losses of single batches.
      initial_loss: the loss at the start params.
      tolerance: the tolerance of the rule (see :func:`suggested_index`).
      suggestion: the suggested rate; None when no rate lowered the loss without
        diverging (then :func:`jaxgd.lr_find` raises :class:`LRFindError`).
      sweep: the :class:`jaxgd.SweepResult` of the short runs (their loss curves, params).
    """

    rates: np.ndarray
    losses: np.ndarray
    diverged: np.ndarray
    overshot: np.ndarray
    initial_loss: float
    tolerance: float
    suggestion: float | None
    sweep: SweepResult

    @property
    def best_rate(self) -> float | None:
        """The rate of the lowest short-run loss that did not diverge (None if all did)."""
        i = best_index(self.losses, self.diverged)
        return None if i is None else float(self.rates[i])

    @property
    def threshold(self) -> float | None:
        """The loss a rate must reach to count as good as the best (None if none did)."""
        i = best_index(self.losses, self.diverged)
        if i is None:
            return None
        f_best = float(self.losses[i])
        return f_best + self.tolerance * (self.initial_loss - f_best)

    def plot(self, path: str | None = None):
        """The short-run loss against the rate (diverged rates marked, the suggestion and
        the tolerance drawn) and the runs' loss curves; saved to ``path`` if given. Needs
        matplotlib. Returns the figure; see :func:`jaxgd.plot.plot_lr_find`."""
        from jaxgd.plot import plot_lr_find

        return plot_lr_find(self, path)

    def __repr__(self) -> str:
        shown = "none" if self.suggestion is None else f"{self.suggestion:.3g}"
        return (f"LRFindResult(suggestion={shown}; {len(self.rates)} rates from "
                f"{self.rates[0]:.3g} to {self.rates[-1]:.3g}, "
                f"{int(self.diverged.sum())} diverged)")


def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}.")
    checks.positive(name, value)
    return float(value)


def _check_arguments(min_lr, max_lr, num_rates, tolerance, sweep_kwargs) -> None:
    low, high = _check_number("min_lr", min_lr), _check_number("max_lr", max_lr)
    if not low < high:
        raise ValueError(f"min_lr must be below max_lr, got min_lr={min_lr!r} and "
                         f"max_lr={max_lr!r}.")
    if isinstance(num_rates, bool) or not isinstance(num_rates, (int, np.integer)) \
            or num_rates < 2:
        raise ValueError(f"num_rates must be an int >= 2 (the rates span a range), "
                         f"got {num_rates!r}.")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float, np.floating)) \
            or not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must be a fraction in [0, 1) of the best improvement, "
                         f"got {tolerance!r}.")
    taken = sorted(set(sweep_kwargs) & set(_SET_BY_LR_FIND))
    if taken:
        raise TypeError(f"lr_find sets {taken} itself (it sweeps learning_rate from the "
                        "params given); fix other hyperparameters with functools.partial.")


def _initial_loss(loss_fn: Callable, params: Params, data: Any, has_aux: bool) -> float:
    value = loss_fn(params) if data is None else loss_fn(params, data)
    return float(jax.device_get(value[0] if has_aux else value))


def _warn_if_cut_off(index: int, rates: np.ndarray, losses: np.ndarray,
                     diverged: np.ndarray) -> None:
    """Warn when the range cut the curve off: the suggestion at the top of the range, or
    the best loss at its bottom."""
    if index == len(rates) - 1:
        warnings.warn(f"the largest rate tried, max_lr={rates[-1]:.3g}, is still as good as "
                      "the best: larger rates may be good too; rerun with a larger max_lr "
                      "to find the edge.", stacklevel=3)
    elif best_index(losses, diverged) == 0:
        warnings.warn(f"the best short-run loss is at the smallest rate tried, "
                      f"min_lr={rates[0]:.3g}: rerun with a smaller min_lr.", stacklevel=3)


def lr_find(
    loss_fn: Callable,
    params: Params,
    optimizer_factory: Callable,
    data: Any = None,
    *,
    min_lr: float = MIN_LR,
    max_lr: float = MAX_LR,
    num_rates: int = NUM_RATES,
    max_steps: int | None = None,
    tolerance: float = TOLERANCE,
    seeds: int | None = None,
    **kwargs: Any,
) -> LRFindResult:
    """Suggest a learning rate from short trainings at ``num_rates`` log-spaced rates,
    run at once as one vmapped program (:func:`jaxgd.sweep` over ``learning_rate``).

    Each rate trains from ``params`` for ``max_steps`` steps (default 100) at that fixed
    rate, and scores the loss on all of ``data`` where it ends. The suggestion is the
    largest rate of the unbroken plateau of rates, starting at the best one and going up,
    whose loss made all but ``tolerance`` (default 5 %) of the best progress from the
    start, that did not diverge and (full batch) whose loss never rose above the start
    (:func:`suggested_index`). Why the largest: the rates of the plateau all reached
    about the best loss in the short run, and in a longer run of full-batch descent a
    larger stable rate keeps making more progress along the flat directions of the
    loss, while a rate near instability either has not converged in the short run or
    overshot on the way, and so falls off the plateau. With mini-batches the tolerance
    also bounds the extra noise floor that the larger rate is allowed.

    Relation to the learning-rate range test (Smith 2017; fastai's and PyTorch
    Lightning's ``lr_find``): the range test is one run whose rate grows exponentially at
    every step, and reads where the loss falls fastest or starts to blow up. It costs one
    short run, but each point of its curve mixes the rate with the history of the
    smaller rates before it, and where the loss blows up it measures the stability of
    the params reached so far rather than the rate's worth from the start; its
    suggestion is a heuristic (a tenth of the blow-up rate, or the steepest descent).
    Here every rate is a real training run of its own from the same start, so the curve
    is the quantity that matters, the loss after ``max_steps`` steps at that rate, and
    the suggestion needs no safety factor. The cost is ``num_rates`` short runs instead
    of one, vmapped into one compiled program: ``num_rates`` times the arithmetic, but
    for a model too small to fill an accelerator on its own, about the wall time of one
    run there.

    Args:
      loss_fn: as for :func:`jaxgd.fit`.
      params: the start params of every run.
      optimizer_factory: a factory taking ``learning_rate``, e.g. ``jaxgd.adam``; fix its
        other arguments with ``functools.partial``.
      data: training data, as for :func:`jaxgd.fit`.
      min_lr, max_lr: the range of rates, ``0 < min_lr < max_lr``.
      num_rates: the number of rates, log-spaced over the range (at least 2).
      max_steps: the steps of each short run (default 100; or give ``num_epochs``).
      tolerance: the share of the best improvement a rate may fall short by and still
        count as good as the best, in ``[0, 1)``; 0 suggests the best rate itself.
      seeds: a count of seeds (data orders) per rate; the losses are averaged over them,
        and a rate diverged if it did with any seed. Useful with mini-batches.
      **kwargs: passed to :func:`jaxgd.sweep` and from it to :func:`jaxgd.fit`
        (``batch_size``, ``has_aux``, ``max_parallel``, ``devices``, ...).

    Returns:
      An :class:`LRFindResult`; ``result.plot()`` draws the curve. Warns when the
      suggestion is the largest rate tried or the best loss the smallest (the range cut
      the curve off).

    Raises:
      LRFindError: when every rate diverged or none lowered the loss; it names the range
        tried, and its ``result`` holds the curve.

    Example:
      >>> import jax.numpy as jnp, jaxgd
      >>> res = jaxgd.lr_find(lambda p: jnp.sum(p ** 2), jnp.ones(3), jaxgd.sgd,
      ...                     max_lr=2.0, max_steps=20)
      >>> 0.1 < res.suggestion < 1.0
      True
    """
    _check_arguments(min_lr, max_lr, num_rates, tolerance, kwargs)
    if max_steps is None and kwargs.get("num_epochs") is None:
        max_steps = SHORT_STEPS
    rates = np.logspace(math.log10(min_lr), math.log10(max_lr), int(num_rates))
    runs = sweep(loss_fn, params, optimizer_factory, hyperparams={"learning_rate": rates},
                 seeds=seeds, data=data, max_steps=max_steps, **kwargs)
    per_seed = runs.final_loss.reshape(len(rates), -1)
    diverged = runs.diverged.reshape(len(rates), -1).any(axis=1) \
        | ~np.isfinite(per_seed).all(axis=1)
    losses = per_seed.mean(axis=1)
    curves = runs.losses
    # against each curve's own first point, the start loss computed in the same program
    overshot = np.any(curves[:, 1:] > curves[:, :1], axis=1).reshape(len(rates), -1)
    overshot = overshot.any(axis=1) & (kwargs.get("batch_size") is None)
    initial = _initial_loss(loss_fn, params, data, kwargs.get("has_aux", False))
    index = suggested_index(losses, diverged, initial, tolerance, overshot)
    result = LRFindResult(rates=rates, losses=losses, diverged=diverged, overshot=overshot,
                          initial_loss=initial, tolerance=float(tolerance),
                          suggestion=None if index is None else float(rates[index]),
                          sweep=runs)
    if index is None:
        raise LRFindError(_failure_message(rates, diverged, initial), result)
    _warn_if_cut_off(index, rates, losses, diverged)
    return result


def _failure_message(rates: np.ndarray, diverged: np.ndarray, initial: float) -> str:
    tried = f"{len(rates)} rates from {rates[0]:.3g} to {rates[-1]:.3g}"
    lower = f"min_lr={rates[0] / 1e4:.3g}, max_lr={rates[0] / 10:.3g}"
    if diverged.all():
        return (f"every rate diverged ({tried}): they are too large for this problem; try "
                f"lower ones, e.g. {lower}. The curve is in this error's result "
                "(err.result.plot()).")
    return (f"no rate lowered the loss below its start value {initial:.4g} without "
            f"diverging ({tried}): the rates may be too large (try lower ones, e.g. {lower}) "
            "or the start a minimum already. The curve is in this error's result "
            "(err.result.plot()).")
