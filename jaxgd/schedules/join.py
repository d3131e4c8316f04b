"""Schedules built by running other schedules one after another."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

import jax.numpy as jnp

from jaxgd.schedules.decay import (
    ArrayLike,
    Schedule,
    _check_nonnegative,
    cosine_decay_schedule,
    exponential_decay,
    linear_schedule,
)


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    r"""Run ``schedules`` in sequence, switching at ``boundaries``.

    .. math:: f(t) = g_k(t - b_k) \quad \text{for } b_k \le t < b_{k+1}

    with :math:`b_0 = -\infty` for the first schedule (which sees the raw count). Each later
    schedule restarts its count at its own boundary.

    Args:
        schedules: non-empty sequence of schedules.
        boundaries: concrete, strictly increasing ints, one fewer than ``schedules``.

    Returns:
        A function mapping a step count to the value of the active schedule.

    Raises:
        ValueError: if ``schedules`` is empty, the lengths do not match, or the boundaries
            are not strictly increasing (optax accepts all of these silently).

    Example:
        >>> from jaxgd.schedules.decay import constant_schedule
        >>> sched = join_schedules([constant_schedule(1.0), constant_schedule(2.0)], [10])
        >>> float(sched(9)), float(sched(10))
        (1.0, 2.0)
    """
    schedules = list(schedules)
    boundaries = list(boundaries)
    if not schedules:
        raise ValueError("`schedules` must contain at least one schedule, got schedules=[].")
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(
            "`boundaries` must have exactly one entry fewer than `schedules`, got "
            f"len(boundaries)={len(boundaries)} and len(schedules)={len(schedules)}."
        )
    for earlier, later in itertools.pairwise(boundaries):
        if not later > earlier:
            raise ValueError(f"`boundaries` must be strictly increasing, got {boundaries=}.")

    def schedule(count: ArrayLike) -> ArrayLike:
        value = schedules[0](count)
        for boundary, following in zip(boundaries, schedules[1:], strict=True):
            value = jnp.where(count < boundary, value, following(count - boundary))
        return value

    return schedule


def warmup_constant_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: int,
) -> Schedule:
    r"""Linear warmup from ``init_value`` to ``peak_value``, then constant.

    .. math:: f(t) = I + \frac{\mathrm{clip}(t, 0, W)}{W} (P - I)

    Args:
        init_value: value at step 0; may be traced.
        peak_value: value from ``warmup_steps`` on; may be traced.
        warmup_steps: concrete int >= 0, length of the warmup (``0``: constant
            ``init_value``, as in optax). Negative values raise ``ValueError``.

    Returns:
        A function mapping a step count to the warmed-up value.

    Example:
        >>> float(warmup_constant_schedule(0.0, 1.0, warmup_steps=10)(5))
        0.5
    """
    _check_nonnegative("warmup_steps", warmup_steps)
    return linear_schedule(
        init_value=init_value, end_value=peak_value, transition_steps=warmup_steps
    )


def warmup_cosine_decay_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: int,
    decay_steps: int,
    end_value: ArrayLike = 0.0,
    exponent: ArrayLike = 1.0,
) -> Schedule:
    r"""Linear warmup to ``peak_value``, then cosine decay to ``end_value``.

    .. math::
        f(t) = \begin{cases} I + \frac{t}{W}(P - I) & t < W \\
        P \left[(1 - \alpha) \left(\tfrac{1}{2}\left(1 + \cos\frac{\pi \min(t - W, D - W)}
        {D - W}\right)\right)^p + \alpha\right] & t \ge W \end{cases}

    with :math:`\alpha = E / P` (``0`` when :math:`P = 0`) and :math:`D` = ``decay_steps``.

    Args:
        init_value: value at step 0; may be traced.
        peak_value: value at the end of the warmup; may be traced.
        warmup_steps: concrete int >= 0, length of the linear warmup.
        decay_steps: concrete int, total length *including* the warmup; must exceed
            ``warmup_steps`` (else ``ValueError``).
        end_value: value after ``decay_steps``; may be traced.
        exponent: power applied to the cosine factor; may be traced.

    Returns:
        A function mapping a step count to the value.

    Example:
        >>> sched = warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=10, decay_steps=110)
        >>> float(sched(5)), float(sched(10)), float(sched(110))
        (0.5, 1.0, 0.0)
    """
    _check_nonnegative("warmup_steps", warmup_steps)
    if not decay_steps > warmup_steps:
        raise ValueError(
            "`decay_steps` counts the warmup too and must exceed `warmup_steps`, got "
            f"{decay_steps=} and {warmup_steps=}."
        )
    # peak_value may be traced, so the zero-peak guard is a select, not a Python `if`.
    peak_is_zero = jnp.equal(peak_value, 0.0)
    alpha = jnp.where(peak_is_zero, 0.0, end_value / jnp.where(peak_is_zero, 1.0, peak_value))
    warmup = linear_schedule(
        init_value=init_value, end_value=peak_value, transition_steps=warmup_steps
    )
    decay = cosine_decay_schedule(
        init_value=peak_value,
        decay_steps=decay_steps - warmup_steps,
        alpha=alpha,
        exponent=exponent,
    )
    return join_schedules([warmup, decay], [warmup_steps])


def warmup_exponential_decay_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: int,
    transition_steps: int,
    decay_rate: ArrayLike,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: ArrayLike | None = None,
) -> Schedule:
    r"""Linear warmup to ``peak_value``, then :func:`exponential_decay` from there.

    .. math::
        f(t) = \begin{cases} I + \frac{t}{W}(P - I) & t < W \\
        \mathrm{expdecay}_{P, T, r, B}(t - W) & t \ge W \end{cases}

    Args:
        init_value: value at step 0; may be traced.
        peak_value: value at the end of the warmup; may be traced.
        warmup_steps: concrete int >= 0, length of the linear warmup.
        transition_steps: concrete int; ``<= 0`` holds ``peak_value`` after the warmup,
            with a warning (see :func:`exponential_decay`).
        decay_rate: decay factor; may be traced.
        transition_begin: concrete int >= 0, steps after the warmup before decay starts.
        staircase: if True, decay in discrete jumps.
        end_value: optional bound on the decayed value; may be traced.

    Returns:
        A function mapping a step count to the value.

    Example:
        >>> sched = warmup_exponential_decay_schedule(0.0, 1.0, 10, 10, decay_rate=0.5)
        >>> float(sched(5)), float(sched(30))
        (0.5, 0.25)
    """
    _check_nonnegative("warmup_steps", warmup_steps)
    warmup = linear_schedule(
        init_value=init_value, end_value=peak_value, transition_steps=warmup_steps
    )
    decay = exponential_decay(
        init_value=peak_value,
        transition_steps=transition_steps,
        decay_rate=decay_rate,
        transition_begin=transition_begin,
        staircase=staircase,
        end_value=end_value,
    )
    return join_schedules([warmup, decay], [warmup_steps])


def sgdr_schedule(cosine_kwargs: Iterable[Mapping[str, ArrayLike]]) -> Schedule:
    r"""SGD with warm restarts: consecutive :func:`warmup_cosine_decay_schedule` cycles.

    .. math:: f(t) = g_k(t - S_k), \quad S_k = \sum_{j<k} D_j \le t < S_{k+1}

    where :math:`g_k` is the warmup-cosine cycle built from ``cosine_kwargs[k]`` and
    :math:`D_j` its ``decay_steps``. The last cycle's tail holds for all later steps.

    Args:
        cosine_kwargs: non-empty iterable of keyword dicts for
            :func:`warmup_cosine_decay_schedule`; each must contain ``decay_steps``.
            An empty iterable or a missing ``decay_steps`` raises ``ValueError``.

    Returns:
        A function mapping a step count to the value.

    Example:
        >>> cycle = dict(init_value=0.0, peak_value=1.0, warmup_steps=10, decay_steps=100)
        >>> sched = sgdr_schedule([cycle, cycle])
        >>> float(sched(100)), float(sched(110))
        (0.0, 1.0)
    """
    cycles = list(cosine_kwargs)
    if not cycles:
        raise ValueError("`cosine_kwargs` must describe at least one cycle, got none.")
    schedules = []
    ends = []
    end = 0
    for index, kwargs in enumerate(cycles):
        if "decay_steps" not in kwargs:
            raise ValueError(
                f"`cosine_kwargs[{index}]` has no 'decay_steps', got {dict(kwargs)!r}."
            )
        schedules.append(warmup_cosine_decay_schedule(**kwargs))
        end += kwargs["decay_steps"]
        ends.append(end)
    return join_schedules(schedules, ends[:-1])
