"""Decay schedules: constant, polynomial, linear, exponential, cosine and piecewise constant."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping

import jax
import jax.numpy as jnp

ArrayLike = jax.typing.ArrayLike
Schedule = Callable[[ArrayLike], ArrayLike]


def _check_positive(name: str, value: int) -> None:
    if not value > 0:
        raise ValueError(f"`{name}` must be positive, got {name}={value!r}.")


def _check_nonnegative(name: str, value: int) -> None:
    if not value >= 0:
        raise ValueError(f"`{name}` must be non-negative, got {name}={value!r}.")


def _constant_for_no_transition(name: str, transition_steps: int, init_value) -> Schedule:
    """optax's answer to a transition of no length: ``init_value`` at every step. A warning
    says so, as the caller probably meant a positive length."""
    warnings.warn(
        f"{name} got transition_steps={transition_steps!r}, a transition of no length: "
        "it returns a constant schedule with value init_value (as optax does).",
        stacklevel=3,
    )
    return constant_schedule(init_value)


def _check_scales(name: str, boundaries_and_scales: Iterable[tuple[int, ArrayLike]]) -> None:
    for boundary, scale in boundaries_and_scales:
        try:
            # Written as `not >= 0` so that NaN scales are rejected as well.
            bad = not bool(scale >= 0)
        except jax.errors.ConcretizationTypeError:
            # A traced scale (e.g. under vmap) has no value yet; it is used as given.
            continue
        if bad:
            raise ValueError(
                f"`{name}` must have non-negative scales, got scale {scale!r} at boundary "
                f"{boundary!r}."
            )


def constant_schedule(value: ArrayLike) -> Schedule:
    """Schedule that always returns ``value``.

    .. math:: f(t) = v

    Args:
        value: the value returned at every step; may be a traced scalar.

    Returns:
        A function mapping a step count to ``value`` (returned as given, not broadcast to
        the shape of the count).

    Example:
        >>> constant_schedule(0.1)(1000)
        0.1
    """

    def schedule(count: ArrayLike) -> ArrayLike:
        del count
        return value

    return schedule


def polynomial_schedule(
    init_value: ArrayLike,
    end_value: ArrayLike,
    power: ArrayLike,
    transition_steps: int,
    transition_begin: int = 0,
) -> Schedule:
    r"""Polynomial interpolation from ``init_value`` to ``end_value``.

    .. math::
        f(t) = (I - E) \left(1 - \frac{\mathrm{clip}(t - B, 0, T)}{T}\right)^P + E

    with :math:`I` = ``init_value``, :math:`E` = ``end_value``, :math:`P` = ``power``,
    :math:`T` = ``transition_steps`` and :math:`B` = ``transition_begin``.

    Args:
        init_value: value held until ``transition_begin``; may be traced.
        end_value: value reached at ``transition_begin + transition_steps``; may be traced.
        power: exponent of the polynomial; may be traced. The base is clamped at 0, so a
            fractional power gives ``end_value`` at the end of the transition even under jit
            (where optax can return NaN).
        transition_steps: concrete int, length of the transition. ``0`` disables the
            transition and gives a constant ``init_value`` schedule (as in optax); a
            negative value does the same, with a warning.
        transition_begin: concrete non-negative int, steps to wait before the transition
            starts. Negative values raise ``ValueError`` (optax logs and uses ``0``).

    Returns:
        A function mapping a step count to the annealed value.

    Example:
        >>> sched = polynomial_schedule(1.0, 0.0, power=2, transition_steps=10)
        >>> float(sched(5))
        0.25
    """
    _check_nonnegative("transition_begin", transition_begin)
    if transition_steps < 0:
        return _constant_for_no_transition("polynomial_schedule", transition_steps, init_value)
    if transition_steps == 0:
        return constant_schedule(init_value)

    def schedule(count: ArrayLike) -> ArrayLike:
        elapsed = jnp.clip(count - transition_begin, 0, transition_steps)
        # XLA may compute `/ T` as `* (1 / T)` (under jit, and for arrays on CPU), leaving a
        # tiny negative here at t = B + T that a fractional power turns into NaN (optax's does).
        remaining = jnp.maximum(1 - elapsed / transition_steps, 0.0)
        return (init_value - end_value) * remaining**power + end_value

    return schedule


def linear_schedule(
    init_value: ArrayLike,
    end_value: ArrayLike,
    transition_steps: int,
    transition_begin: int = 0,
) -> Schedule:
    r"""Linear interpolation from ``init_value`` to ``end_value``.

    .. math:: f(t) = I + \frac{\mathrm{clip}(t - B, 0, T)}{T} (E - I)

    This is :func:`polynomial_schedule` with ``power=1``; see there for the symbols.

    Args:
        init_value: value held until ``transition_begin``; may be traced.
        end_value: value reached at ``transition_begin + transition_steps``; may be traced.
        transition_steps: concrete int, length of the transition (``0`` gives a
            constant ``init_value`` schedule; negative, the same with a warning).
        transition_begin: concrete int >= 0, steps to wait before the transition starts.

    Returns:
        A function mapping a step count to the annealed value.

    Example:
        >>> float(linear_schedule(1.0, 0.0, transition_steps=10)(5))
        0.5
    """
    return polynomial_schedule(
        init_value=init_value,
        end_value=end_value,
        power=1,
        transition_steps=transition_steps,
        transition_begin=transition_begin,
    )


def exponential_decay(
    init_value: ArrayLike,
    transition_steps: int,
    decay_rate: ArrayLike,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: ArrayLike | None = None,
) -> Schedule:
    r"""Exponential decay of ``init_value`` by ``decay_rate`` every ``transition_steps``.

    .. math::
        f(t) = \begin{cases} I & t \le B \text{ or } r = 0 \\
                             \mathrm{bound}(I \, r^{p(t)}, E) & \text{otherwise} \end{cases}
        \qquad p(t) = \frac{t - B}{T} \text{ (floored if staircase)}

    where :math:`\mathrm{bound}` is :math:`\max` if :math:`r < 1` and :math:`\min`
    otherwise (skipped when ``end_value`` is None).

    Args:
        init_value: initial value; may be traced.
        transition_steps: concrete int, steps per factor of ``decay_rate``. ``<= 0``
            gives a constant ``init_value`` schedule with a warning, as optax does.
        decay_rate: decay factor; may be traced. ``0`` gives a constant ``init_value``
            schedule, as in optax.
        transition_begin: concrete int >= 0, steps before decay starts. Negative values
            raise ``ValueError`` (optax logs and uses ``0``).
        staircase: if True, decay in discrete jumps. The exponent is an exact integer
            division, so jumps land exactly on multiples of ``transition_steps``; optax's
            float ``floor(t / T)`` can be one step late there for array or jitted counts.
        end_value: optional floor (if ``decay_rate < 1``) or ceiling (otherwise); may be
            traced.

    Returns:
        A function mapping a step count to the decayed value.

    Example:
        >>> float(exponential_decay(1.0, transition_steps=10, decay_rate=0.5)(20))
        0.25
    """
    _check_nonnegative("transition_begin", transition_begin)
    if transition_steps <= 0:
        return _constant_for_no_transition("exponential_decay", transition_steps, init_value)

    def schedule(count: ArrayLike) -> ArrayLike:
        elapsed = count - transition_begin
        if staircase:
            # Integer division: XLA may compute `/ T` as `* (1 / T)`, and flooring that lands
            # one step late at some multiples of T (optax's does, for array counts).
            exponent = jnp.floor_divide(elapsed, transition_steps).astype(float)
        else:
            exponent = elapsed / transition_steps
        value = jnp.where(elapsed <= 0, init_value, init_value * jnp.power(decay_rate, exponent))
        if end_value is not None:
            # decay_rate may be traced, so the bound direction is picked in-graph.
            value = jnp.where(
                decay_rate < 1.0, jnp.maximum(value, end_value), jnp.minimum(value, end_value)
            )
        # optax defines a zero rate as "no decay" rather than a drop to zero.
        return jnp.where(decay_rate == 0, init_value, value)

    return schedule


def cosine_decay_schedule(
    init_value: ArrayLike,
    decay_steps: int,
    alpha: ArrayLike = 0.0,
    exponent: ArrayLike = 1.0,
) -> Schedule:
    r"""Cosine decay from ``init_value`` to ``alpha * init_value`` over ``decay_steps``.

    .. math::
        f(t) = I \left[(1 - \alpha) \left(\tfrac{1}{2}\left(1 + \cos\frac{\pi \min(t, T)}{T}
        \right)\right)^p + \alpha\right]

    with :math:`I` = ``init_value``, :math:`T` = ``decay_steps``, :math:`p` = ``exponent``.

    Args:
        init_value: initial value; may be traced.
        decay_steps: concrete positive int, length of the decay. ``<= 0`` raises
            ``ValueError``.
        alpha: final value as a fraction of ``init_value``; may be traced.
        exponent: power applied to the cosine factor; may be traced.

    Returns:
        A function mapping a step count to the decayed value.

    Example:
        >>> round(float(cosine_decay_schedule(1.0, decay_steps=100)(50)), 4)
        0.5
    """
    _check_positive("decay_steps", decay_steps)
    # A float horizon makes integer counts promote to float before the division.
    horizon = float(decay_steps)

    def schedule(count: ArrayLike) -> ArrayLike:
        elapsed = jnp.minimum(count, horizon)
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * elapsed / horizon))
        return init_value * ((1 - alpha) * cosine**exponent + alpha)

    return schedule


def piecewise_constant_schedule(
    init_value: ArrayLike,
    boundaries_and_scales: Mapping[int, ArrayLike] | None = None,
) -> Schedule:
    r"""Constant pieces: ``init_value`` times every scale whose boundary has been reached.

    .. math:: f(t) = I \prod_{i : b_i \le t} s_i

    Args:
        init_value: value before the first boundary; may be traced.
        boundaries_and_scales: ``{boundary: scale}`` with concrete int boundaries and
            non-negative scales (scales may be traced; only concrete ones are checked).
            A negative concrete scale raises ``ValueError``.

    Returns:
        A function mapping a step count to the scaled value.

    Example:
        >>> sched = piecewise_constant_schedule(1.0, {10: 0.5, 20: 0.5})
        >>> float(sched(15)), float(sched(25))
        (0.5, 0.25)
    """
    steps = sorted((boundaries_and_scales or {}).items())
    _check_scales("boundaries_and_scales", steps)

    def schedule(count: ArrayLike) -> ArrayLike:
        value = init_value
        for boundary, scale in steps:
            value = jnp.where(count >= boundary, value * scale, value)
        return value

    return schedule
