"""Optimizer paths over the contours of the 2-D test functions, with their loss curves."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from jaxgd.plot.figure import pyplot

#: Line styles of the optimizers on a multi-start picture, where colour marks the minimum.
_STYLES = ("-", "--", ":", "-.")

#: The most frames of an animation: longer paths are sampled evenly.
MAX_FRAMES = 30


def check_output_path(name: str, path: str | None) -> None:
    """A ``ValueError`` naming ``name`` when ``path``'s directory does not exist."""
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise ValueError(f"{name}={os.fspath(path)!r}: the directory {folder!r} does not "
                         "exist; create it first or write elsewhere.")


def _surface(problem, resolution: int):
    """``(X, Y, log10(f - f_min + eps))`` over the problem's domain, and ``f_min``."""
    import jax
    import jax.numpy as jnp

    (x0, x1), (y0, y1) = problem.info["domain"]
    xs, ys = np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)
    flat = jnp.asarray(np.stack([grid_x.ravel(), grid_y.ravel()], axis=1), jnp.float32)
    values = np.asarray(jax.jit(jax.vmap(problem.loss_fn))(flat), np.float64)
    values = values.reshape(grid_x.shape)
    f_min = values.min() if problem.min_value is None else min(problem.min_value, values.min())
    # eps keeps the minimum's own level finite and sets how deep the contours go
    eps = max(1e-12, 1e-6 * (values.max() - f_min))
    return grid_x, grid_y, np.log10(values - f_min + eps), f_min


def _label(traj, lr_mode: bool) -> str:
    return f"η = {traj.learning_rate:.3g}" if lr_mode else (
        f"{traj.optimizer} (η = {traj.learning_rate:.3g})")


def _draw(result, resolution: int):
    """The figure, and ``(line, x, y)`` for every line drawn from a path, so that an
    animation can draw each up to a step."""
    plt = pyplot()
    names = list(result.problems)
    pairs_per_row = min(2, len(names))
    rows = -(-len(names) // pairs_per_row)
    fig, axes = plt.subplots(rows, 2 * pairs_per_row, figsize=(9.0 * pairs_per_row, 4.2 * rows),
                             squeeze=False)
    for ax in axes.ravel()[2 * len(names):]:
        ax.set_visible(False)
    optimizers = list(dict.fromkeys(t.optimizer for t in result.trajectories))
    # one optimizer at several rates: the rate is all a label needs to say
    lr_mode = len(optimizers) == 1 and len(result.trajectories) > len(names)
    multi = any(len(s) > 1 for s in result.starts.values())
    lines = []
    for k, name in enumerate(names):
        problem = result.problems[name]
        contour_ax, loss_ax = axes.ravel()[2 * k], axes.ravel()[2 * k + 1]
        grid_x, grid_y, levels, f_min = _surface(problem, resolution)
        contour_ax.contourf(grid_x, grid_y, levels, levels=30, cmap="viridis", alpha=0.85)
        contour_ax.contour(grid_x, grid_y, levels, levels=15, colors="k", linewidths=0.3,
                           alpha=0.4)
        minima = np.asarray(problem.info.get("minima", [problem.optimum]), np.float64)
        contour_ax.plot(minima[:, 0], minima[:, 1], "w*", ms=11, mec="k", mew=0.6, zorder=4)
        if "saddle" in problem.info:
            sx, sy = np.asarray(problem.info["saddle"], np.float64)
            contour_ax.plot(sx, sy, "wX", ms=8, mec="k", mew=0.6, zorder=4)
        for i, traj in enumerate(result.of(name)):
            style = _STYLES[optimizers.index(traj.optimizer) % len(_STYLES)] if multi else "-"
            above = np.maximum(traj.losses - f_min, 1e-16)
            steps = np.arange(above.shape[1])
            for s, (points, curve) in enumerate(zip(traj.points, above, strict=True)):
                # on a multi-start picture the colour says which minimum the start reached
                color = (("0.5" if traj.reached[s] < 0 else f"C{traj.reached[s] % 10}")
                         if multi else f"C{i % 10}")
                label = None if multi or s else _label(traj, lr_mode)
                line, = contour_ax.plot(points[:, 0], points[:, 1], style, color=color, lw=1.2,
                                        label=label)
                lines.append((line, points[:, 0], points[:, 1]))
                contour_ax.plot(points[0, 0], points[0, 1], "o", color=color, ms=3.5, mec="k",
                                mew=0.4)
                line, = loss_ax.semilogy(steps, curve, style, color=color, label=label,
                                         lw=0.9 if multi else 1.5, alpha=0.7 if multi else 1.0)
                lines.append((line, steps, curve))
            if multi:  # the legend tells the optimizers apart by line style
                for ax in (contour_ax, loss_ax):
                    ax.plot([], [], style, color="k", label=_label(traj, lr_mode))
        if multi:
            _mark_counts(contour_ax, minima, result.of(name))
        (x0, x1), (y0, y1) = problem.info["domain"]
        contour_ax.set_xlim(x0, x1)
        contour_ax.set_ylim(y0, y1)
        contour_ax.set_title(f"{name}: {optimizers[0]}" if lr_mode else name)
        contour_ax.legend(fontsize="x-small", loc="best")
        # a diverging path would stretch the axis to its overflow
        top = np.nanmax([t.losses[:, 0].max() - f_min for t in result.of(name)])
        loss_ax.set_ylim(top=max(top, 1e-12) * 1e3)
        loss_ax.set_xlabel("step")
        loss_ax.set_ylabel("f − f_min")
        loss_ax.set_title(f"{name}: loss")
        loss_ax.grid(True, which="major", alpha=0.3)
        loss_ax.legend(fontsize="x-small")
    fig.tight_layout()
    return fig, lines


def _mark_counts(ax, minima: np.ndarray, trajectories) -> None:
    """Beside each known minimum, how many starts reached it (per optimizer)."""
    for m, (x, y) in enumerate(minima):
        counts = [f"{t.optimizer} {int(np.sum(t.reached == m))}" for t in trajectories]
        ax.annotate(", ".join(counts), (x, y), xytext=(4, 4), textcoords="offset points",
                    fontsize="x-small", color="w",
                    bbox={"boxstyle": "round,pad=0.2", "fc": f"C{m % 10}", "alpha": 0.8})


def _animate(fig, lines, steps: int, gif: str) -> None:
    from matplotlib.animation import FuncAnimation, PillowWriter

    ends = np.unique(np.linspace(1, steps + 1, min(steps + 1, MAX_FRAMES)).astype(int))

    def frame(end):
        for line, x, y in lines:
            line.set_data(x[:end], y[:end])
        return [line for line, _, _ in lines]

    FuncAnimation(fig, frame, frames=ends, blit=False).save(gif, writer=PillowWriter(fps=8),
                                                            dpi=60)


def paths(
    functions: Sequence | None = None,
    optimizers: Sequence[str] | Mapping[str, Callable] | None = None,
    steps: int = 200,
    *,
    starts: int = 1,
    grid: Sequence[float] | None = None,
    learning_rates: Sequence[float] | None = None,
    lr_factors: Sequence[float] | None = None,
    seed: int = 0,
    out: str | None = None,
    gif: str | None = None,
    result=None,
    resolution: int = 160,
):
    """Draw optimizer paths over the log-scaled contours of 2-D test functions.

    Two panels per function: the paths over filled contours of
    :math:`\\log_{10}(f - f_{min} + \\epsilon)` (known minima as white stars, a saddle as
    a cross), and the loss :math:`f - f_{min}` against the step. The paths are those of
    :func:`jaxgd.sweep.optimizer_paths` (see it for the arguments up to ``seed``): each
    optimizer at the rate its sweep picked, or at several rates (``learning_rates`` or
    ``lr_factors``: overshoot and crawl). With ``starts > 1`` each path is coloured by the
    known minimum it reached (grey: none), the optimizers by line style, and each minimum
    is labelled with how many starts of each optimizer reached it; the loss panel has a
    curve per start, coloured alike.

    Args:
      out: write the picture to this file (png, pdf, svg, ...).
      gif: also write an animation of the paths to this ``.gif`` (matplotlib's Pillow
        writer).
      result: draw this :class:`jaxgd.sweep.PathsResult` instead of computing one (then
        give none of the computing arguments).
      resolution: contour grid points per side.

    Returns:
      The matplotlib figure.

    Raises:
      ValueError: when the folder of ``out`` or ``gif`` does not exist (before any
        work), and as :func:`jaxgd.sweep.optimizer_paths` does.
    """
    check_output_path("out", out)
    check_output_path("gif", gif)
    if result is None:
        from jaxgd.sweep.paths import optimizer_paths

        result = optimizer_paths(functions, optimizers, steps, starts=starts, grid=grid,
                                 learning_rates=learning_rates, lr_factors=lr_factors,
                                 seed=seed)
    elif any(v is not None for v in (functions, optimizers, grid, learning_rates, lr_factors)):
        raise ValueError("give either result (to draw it) or the arguments to compute one, "
                         "not both.")
    fig, lines = _draw(result, resolution)
    if out is not None:
        fig.savefig(out, dpi=110)
    if gif is not None:
        _animate(fig, lines, result.steps, gif)
        for line, x, y in lines:  # the animation left them cut at its last frame
            line.set_data(x, y)
    return fig
