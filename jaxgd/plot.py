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
        loss_curves({f"{r.variant} (lr={r.learning_rate:g})": r.losses for r in chosen}, ax,
                    ylabel="loss - min", title=problem)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
