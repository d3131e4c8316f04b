"""Schedules interpolating between scaled values at boundaries, including one-cycle."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp

from jaxgd.schedules.decay import ArrayLike, Schedule, _check_positive, _check_scales


def _linear(start: jax.Array, end: jax.Array, frac: jax.Array) -> jax.Array:
    return (end - start) * frac + start


def _cosine(start: jax.Array, end: jax.Array, frac: jax.Array) -> jax.Array:
    return end + (start - end) / 2.0 * (jnp.cos(jnp.pi * frac) + 1)


_INTERPOLATORS: dict[str, Callable[[jax.Array, jax.Array, jax.Array], jax.Array]] = {
    "linear": _linear,
    "cosine": _cosine,
}


def piecewise_interpolate_schedule(
    interpolate_type: str,
    init_value: ArrayLike,
    boundaries_and_scales: Mapping[int, ArrayLike] | None = None,
) -> Schedule:
    r"""Interpolate between cumulative products of scales at sorted boundaries.

    With sorted boundaries :math:`b_1 < \dots < b_n`, :math:`b_0 = 0` and
    :math:`v_k = I \prod_{i \le k} s_i`:

    .. math::
        f(t) = \begin{cases} \mathrm{interp}\left(v_k, v_{k+1},
        \frac{t - b_k}{\max(b_{k+1} - b_k, 1)}\right) & b_k \le t < b_{k+1} \\
        v_n & t \ge b_n \\ 0 & t < 0 \end{cases}

    where linear interp is :math:`a + (b - a) x` and cosine interp is
    :math:`b + \frac{a - b}{2}(1 + \cos \pi x)`.

    Args:
        interpolate_type: ``'linear'`` or ``'cosine'`` (anything else raises ``ValueError``).
        init_value: value at step 0; may be traced.
        boundaries_and_scales: ``{boundary: scale}`` with concrete int boundaries and
            non-negative scales (may be traced; a negative concrete scale raises
            ``ValueError``).

    Returns:
        A function mapping a step count (scalar or array) to the value.

    Example:
        >>> sched = piecewise_interpolate_schedule("linear", 1.0, {10: 0.5})
        >>> float(sched(5)), float(sched(20))
        (0.75, 0.5)
    """
    if interpolate_type not in _INTERPOLATORS:
        raise ValueError(
            f"`interpolate_type` must be 'linear' or 'cosine', got {interpolate_type=}."
        )
    interpolate = _INTERPOLATORS[interpolate_type]
    steps = sorted((boundaries_and_scales or {}).items())
    _check_scales("boundaries_and_scales", steps)
    boundaries = tuple(boundary for boundary, _ in steps)
    scales = tuple(scale for _, scale in steps)

    def schedule(count: ArrayLike) -> ArrayLike:
        bounds = jnp.asarray((0, *boundaries))
        values = jnp.cumprod(jnp.stack((init_value, *scales)))
        # A trailing axis over segments lets `count` be a scalar or an array of steps.
        step = jnp.asarray(count)[..., None]
        lower, upper = bounds[:-1], bounds[1:]
        inside = (lower <= step) & (step < upper)
        frac = (step - lower) / jnp.maximum(upper - lower, 1)
        pieces = interpolate(values[:-1], values[1:], frac)
        # At most one segment is active, so the masked sum is exactly that segment's value.
        value = jnp.sum(jnp.where(inside, pieces, 0.0), axis=-1)
        return value + jnp.where(bounds[-1] <= count, values[-1], 0.0)

    return schedule


def linear_onecycle_schedule(
    transition_steps: int,
    peak_value: ArrayLike,
    pct_start: float = 0.3,
    pct_final: float = 0.85,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    r"""One-cycle schedule with three linear phases.

    With :math:`T` = ``transition_steps``, :math:`P` = ``peak_value``, :math:`d` =
    ``div_factor`` and :math:`d_f` = ``final_div_factor``, the value moves linearly
    through the knots

    .. math::
        (0, P/d) \to (\lfloor p_s T \rfloor, P) \to (\lfloor p_f T \rfloor, P/d)
        \to (T, P/(d\,d_f))

    and stays at :math:`P/(d\,d_f)` afterwards.

    Args:
        transition_steps: concrete positive int, length of the cycle (else ``ValueError``).
        peak_value: maximum value; may be traced.
        pct_start: concrete fraction of the cycle spent rising.
        pct_final: concrete fraction of the cycle at which the descent back to ``P/d``
            ends. Must satisfy ``0 <= pct_start <= pct_final <= 1`` (else ``ValueError``;
            optax does not check).
        div_factor: concrete, initial value is ``peak_value / div_factor``.
        final_div_factor: concrete, final value is ``peak_value / div_factor /
            final_div_factor``.

    Returns:
        A function mapping a step count to the value.

    Example:
        >>> sched = linear_onecycle_schedule(100, peak_value=1.0)
        >>> float(sched(30))
        1.0
    """
    _check_positive("transition_steps", transition_steps)
    if not 0 <= pct_start <= pct_final <= 1:
        raise ValueError(
            f"Need 0 <= pct_start <= pct_final <= 1, got {pct_start=} and {pct_final=}."
        )
    return piecewise_interpolate_schedule(
        "linear",
        peak_value / div_factor,
        {
            int(pct_start * transition_steps): div_factor,
            int(pct_final * transition_steps): 1.0 / div_factor,
            transition_steps: 1.0 / final_div_factor,
        },
    )


def cosine_onecycle_schedule(
    transition_steps: int,
    peak_value: ArrayLike,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    r"""One-cycle schedule: cosine rise to ``peak_value``, then cosine decay.

    The value follows cosine interpolation through the knots

    .. math:: (0, P/d) \to (\lfloor p_s T \rfloor, P) \to (T, P/(d\,d_f))

    and stays at :math:`P/(d\,d_f)` afterwards (symbols as in
    :func:`linear_onecycle_schedule`).

    Args:
        transition_steps: concrete positive int, length of the cycle (else ``ValueError``).
        peak_value: maximum value; may be traced.
        pct_start: concrete fraction of the cycle spent rising; must lie in ``[0, 1]``
            (else ``ValueError``; optax does not check).
        div_factor: concrete, initial value is ``peak_value / div_factor``.
        final_div_factor: concrete, final value is ``peak_value / div_factor /
            final_div_factor``.

    Returns:
        A function mapping a step count to the value.

    Example:
        >>> sched = cosine_onecycle_schedule(100, peak_value=1.0)
        >>> round(float(sched(0)), 4), float(sched(30))
        (0.04, 1.0)
    """
    _check_positive("transition_steps", transition_steps)
    if not 0 <= pct_start <= 1:
        raise ValueError(f"`pct_start` must lie in [0, 1], got {pct_start=}.")
    return piecewise_interpolate_schedule(
        "cosine",
        peak_value / div_factor,
        {
            int(pct_start * transition_steps): div_factor,
            int(transition_steps): 1.0 / (div_factor * final_div_factor),
        },
    )
