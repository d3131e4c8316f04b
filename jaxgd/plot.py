"""Plots (matplotlib, the optional ``plot`` extra: ``pip install jaxgd[plot]``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError(
            "plotting needs matplotlib: pip install 'jaxgd[plot]' (or matplotlib)."
        ) from err
    return plt


def loss_curves(curves: dict[str, np.ndarray], ax, *, ylabel: str = "loss", title: str = ""):
    """Plot each named curve against the step, log-scaled (values floored at 1e-16)."""
    for name, values in curves.items():
        values = np.maximum(np.asarray(values, np.float64), 1e-16)
        ax.semilogy(np.arange(len(values)), values, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(True, which="major", alpha=0.3)


def plot_demo(rows: Sequence, path: str) -> None:
    """One panel per demo problem with every variant's loss curve; saved to ``path``."""
    plt = _pyplot()
    problem_names = list(dict.fromkeys(r.problem for r in rows))
    fig, axes = plt.subplots(1, len(problem_names), figsize=(6 * len(problem_names), 4.5))
    for ax, problem in zip(np.atleast_1d(axes), problem_names, strict=True):
        chosen = [r for r in rows if r.problem == problem]
        loss_curves({r.variant: r.losses for r in chosen}, ax,
                    ylabel="loss - min", title=problem)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_sweep(result, path: str | None = None, *, x: str | None = None):
    """Two panels: final loss against hyperparameter ``x`` (log-log; diverged trials
    marked with a cross at the top), and the loss curves of all trials, coloured by ``x``."""
    plt = _pyplot()
    x = x or next(iter(result.hyperparams))
    values = np.asarray(result.hyperparams[x])
    final = np.where(result.diverged, np.nan, np.maximum(result.final_loss, 1e-16))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    order = np.argsort(values, kind="stable")
    left.loglog(values[order], final[order], "o-", ms=3)
    if result.diverged.any():
        top = np.nanmax(final) if np.isfinite(final).any() else 1.0
        left.plot(values[result.diverged], np.full(result.diverged.sum(), top), "rx",
                  label="diverged")
        left.legend(fontsize="small")
    left.set_xlabel(x)
    left.set_ylabel("final loss")
    left.set_title(f"final loss against {x}")
    left.grid(True, which="major", alpha=0.3)
    colours = plt.cm.viridis(np.linspace(0, 1, len(values)))
    for rank, i in enumerate(order):
        curve = result.losses[i]
        right.semilogy(np.maximum(curve[np.isfinite(curve)], 1e-16), color=colours[rank],
                       lw=0.8)
    right.set_xlabel("step")
    right.set_ylabel("loss")
    right.set_title(f"loss curves (colour: {x}, low to high)")
    right.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig
