"""The curve of :func:`jaxgd.lr_find`: short-run loss against the learning rate."""

from __future__ import annotations

import numpy as np

from jaxgd.plot.figure import pyplot


def _scale_y(ax, values: np.ndarray, start: float) -> None:
    """A log axis for positive losses, a linear one otherwise (a quadratic's minimum is
    negative); the top cut off where runs that blow up would squash the rest."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return
    low = min(finite.min(), start)
    if low > 0:
        ax.set_yscale("log")
        ax.set_ylim(low / 1.2, max(min(finite.max(), 10 * start), start) * 1.2)
    else:
        span = max(start - low, 1e-12)
        ax.set_ylim(low - 0.05 * span, min(finite.max(), start + span) + 0.05 * span)


def plot_lr_find(result, path: str | None = None):
    """Two panels. Left: the loss after each rate's short run against the rate (log
    scale), with the start loss, the level a rate must reach to count as good as the best
    (the tolerance), the suggested rate, the rates whose loss rose above the start on the
    way ringed, and the diverged ones marked by red crosses at the top. Right: every
    run's loss curve, coloured by its rate. Saved to ``path`` if given; returns the
    figure.

    ``result`` is an :class:`jaxgd.LRFindResult` (also the one an
    :class:`jaxgd.LRFindError` carries, with no suggestion).
    """
    plt = pyplot()
    rates = np.asarray(result.rates, np.float64)
    losses = np.where(result.diverged, np.nan, np.asarray(result.losses, np.float64))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    left.plot(rates, losses, "o-", ms=3, label="loss after the short run")
    left.axhline(result.initial_loss, color="grey", ls=":", lw=1, label="start loss")
    if result.threshold is not None:
        left.axhline(result.threshold, color="tab:green", ls="--", lw=1,
                     label=f"as good as the best (tolerance {result.tolerance:g})")
    if result.suggestion is not None:
        left.axvline(result.suggestion, color="tab:red", lw=1,
                     label=f"suggestion {result.suggestion:.3g}")
    if result.overshot.any():
        left.plot(rates[result.overshot], losses[result.overshot], "o", mfc="none",
                  color="tab:orange", label="loss rose above the start on the way")
    shown = np.append(losses[np.isfinite(losses)], result.initial_loss)
    if result.diverged.any():
        left.plot(rates[result.diverged], np.full(int(result.diverged.sum()), shown.max()),
                  "rx", label="diverged")
    left.set_xscale("log")
    _scale_y(left, shown, result.initial_loss)
    left.set_xlabel("learning rate")
    left.set_ylabel("loss")
    if result.suggestion is not None:
        left.set_title(f"suggested learning rate {result.suggestion:.3g}")
    else:
        left.set_title("no suggestion: " + ("every rate diverged" if result.diverged.all()
                                            else "no rate lowered the loss"))
    left.legend(fontsize="small")
    left.grid(True, which="major", alpha=0.3)

    runs = result.sweep
    run_rates = np.asarray(runs.hyperparams["learning_rate"], np.float64)
    shade = (np.log(run_rates) - np.log(rates[0])) / (np.log(rates[-1]) - np.log(rates[0]))
    curves = runs.losses
    for i in np.argsort(run_rates, kind="stable"):
        curve = curves[i]
        right.plot(np.flatnonzero(np.isfinite(curve)), curve[np.isfinite(curve)],
                   color=plt.cm.viridis(shade[i]), lw=0.8)
    _scale_y(right, curves, result.initial_loss)
    right.set_xlabel("step")
    right.set_ylabel("loss")
    right.set_title("loss curves (colour: learning rate, low to high)")
    right.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig
