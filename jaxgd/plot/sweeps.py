"""Loss curves of the demo and the curves of a sweep."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jaxgd.plot.figure import pyplot


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
    plt = pyplot()
    problem_names = list(dict.fromkeys(r.problem for r in rows))
    fig, axes = plt.subplots(1, len(problem_names), figsize=(6 * len(problem_names), 4.5))
    for ax, problem in zip(np.atleast_1d(axes), problem_names, strict=True):
        chosen = [r for r in rows if r.problem == problem]
        loss_curves({r.variant: r.losses for r in chosen}, ax,
                    ylabel="loss - min", title=problem)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _level_key(value):
    """A dict key for one value of a table column: NaN (a name the optimizer does not
    take) equals NaN, and an unhashable value (an array) is keyed by identity."""
    if isinstance(value, float) and np.isnan(value):
        return "nan"
    try:
        hash(value)
    except TypeError:
        return id(value)
    return value


def _show(value) -> str:
    if callable(value):
        return getattr(value, "__name__", type(value).__name__)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _default_x(result) -> str:
    for name, column in result.hyperparams.items():
        if column.dtype != object and len(np.unique(column[np.isfinite(column)])) > 1:
            return name
    return next(iter(result.hyperparams))


def _positions(column: np.ndarray) -> tuple[np.ndarray, list[str] | None]:
    """Where each trial sits on the x axis: a numeric column's values; a static one's
    values in order of first appearance at 0, 1, ..., with their tick labels."""
    if column.dtype != object:
        return column.astype(np.float64), None
    keys = [_level_key(v) for v in column]
    levels = list(dict.fromkeys(keys))
    labels = [_show(column[keys.index(k)]) for k in levels]
    return np.array([levels.index(k) for k in keys], np.float64), labels


def _groups(result, x: str) -> dict[tuple, np.ndarray]:
    """The trials of each setting of the swept columns other than ``x`` (seeds
    excepted), in order of first appearance: label pairs -> trial indices."""
    table = result.table()
    others = [n for n in ("optimizer", *result.hyperparams) if n in table and n != x]
    keys = [tuple((n, _level_key(table[n][i])) for n in others)
            for i in range(result.trials.count)]
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    varying = {n for n in others if len({dict(k)[n] for k in groups}) > 1}
    return {
        tuple((n, table[n][rows[0]]) for n, _ in key if n in varying
              and _level_key(table[n][rows[0]]) != "nan"): np.asarray(rows)
        for key, rows in groups.items()
    }


def plot_sweep(result, path: str | None = None, *, x: str | None = None):
    """Two panels. Left: the final loss (the validation loss, with ``val_data``) against
    hyperparameter ``x``, the classic U curve, one line per setting of the other swept
    columns (optimizer, other hyperparameters, static values). With several seeds the
    line is the mean over the seeds of the trials that did not diverge, and a shaded band
    spans their minimum to maximum. Diverged trials are marked with a red cross at the
    top. Right: every trial's loss curve, coloured by ``x``.

    ``x`` defaults to the first numeric hyperparameter that takes several values; a
    static one (flags, schedules) is drawn as categories. Saved to ``path`` if given;
    returns the figure.
    """
    plt = pyplot()
    from matplotlib.patches import Patch

    x = x or _default_x(result)
    positions, categories = _positions(np.asarray(result.hyperparams[x]))
    validation = result.val_loss is not None
    score = np.asarray(result.val_loss if validation else result.final_loss, np.float64)
    score = np.where(result.diverged | ~np.isfinite(score), np.nan, np.maximum(score, 1e-16))
    num_seeds = len(np.unique(result.trials.seeds))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    groups = _groups(result, x)
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(groups))) if len(groups) > 10 else None
    for g, (label, rows) in enumerate(groups.items()):
        rows = rows[np.isfinite(positions[rows])]
        xs = np.unique(positions[rows])
        if not xs.size:
            continue
        cells = [score[rows[positions[rows] == v]] for v in xs]
        seen = [c[np.isfinite(c)] for c in cells]
        mean = np.array([c.mean() if c.size else np.nan for c in seen])
        name = ", ".join(f"{n}={_show(v)}" for n, v in label) or None
        (line,) = left.plot(xs, mean, "o-", ms=3, label=name,
                            color=None if colours is None else colours[g])
        if num_seeds > 1:
            low = np.array([c.min() if c.size else np.nan for c in seen])
            high = np.array([c.max() if c.size else np.nan for c in seen])
            left.fill_between(xs, low, high, color=line.get_color(), alpha=0.2, lw=0)
    left.set_yscale("log")
    if categories is None and np.all(positions[np.isfinite(positions)] > 0):
        left.set_xscale("log")
    if categories is not None:
        left.set_xticks(range(len(categories)), categories)
    if result.diverged.any():
        top = np.nanmax(score) if np.isfinite(score).any() else 1.0
        left.plot(positions[result.diverged], np.full(result.diverged.sum(), top), "rx",
                  label="diverged")
    handles, _ = left.get_legend_handles_labels()
    if num_seeds > 1:
        handles.append(Patch(color="grey", alpha=0.3,
                             label=f"min to max over {num_seeds} seeds (line: mean)"))
    if handles:
        left.legend(handles=handles, fontsize="small")
    measure = "validation loss" if validation else "final loss"
    left.set_xlabel(x)
    left.set_ylabel(measure)
    left.set_title(f"{measure} against {x}" + (f", {num_seeds} seeds" if num_seeds > 1
                                                else ""))
    left.grid(True, which="major", alpha=0.3)
    order = np.argsort(positions, kind="stable")
    finite = np.isfinite(positions)
    levels = np.unique(positions[finite])
    shade = np.searchsorted(levels, positions) / max(len(levels) - 1, 1)
    for i in order:
        curve = result.losses[i]
        colour = plt.cm.viridis(shade[i]) if finite[i] else "grey"
        right.semilogy(np.maximum(curve[np.isfinite(curve)], 1e-16), color=colour, lw=0.8)
    right.set_xlabel("step")
    right.set_ylabel("loss")
    right.set_title(f"loss curves (colour: {x}, low to high)")
    right.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig
