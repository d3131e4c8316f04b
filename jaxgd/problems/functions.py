"""Classic 2-D optimization test functions with known minima.

Params are a shape-``(2,)`` float32 array ``[x, y]``; ``loss_fn(params)`` takes no data.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from .base import Problem, f32

__all__ = ["HIMMELBLAU_MINIMA", "beale", "himmelblau", "rosenbrock"]

#: The four global minima (value 0) of Himmelblau's function, to float64 precision.
HIMMELBLAU_MINIMA: tuple[tuple[float, float], ...] = (
    (3.0, 2.0),
    (-2.805118086952745, 3.131312518250573),
    (-3.779310253377747, -3.2831859912861696),
    (3.5844283403304917, -1.8481265269644034),
)


def _start(start: Sequence[float]) -> jax.Array:
    x0 = f32(start)
    if x0.shape != (2,):
        raise ValueError(f"start must have 2 coordinates, got shape {x0.shape}.")
    return x0


def rosenbrock(a: float = 1.0, b: float = 100.0, start: Sequence[float] = (-1.2, 1.0)) -> Problem:
    r"""Rosenbrock's banana function.

    .. math:: f(x, y) = (a - x)^2 + b\,(y - x^2)^2

    Unique minimum :math:`f = 0` at :math:`(a, a^2)` (for ``b > 0``), at the end of a long
    curved valley. ``info`` holds ``{"a": a, "b": b}``.
    """
    a, b = float(a), float(b)

    def loss_fn(params: jax.Array) -> jax.Array:
        x, y = params[0], params[1]
        return (a - x) ** 2 + b * (y - x**2) ** 2

    return Problem(
        name="rosenbrock",
        loss_fn=loss_fn,
        init_params=_start(start),
        optimum=f32([a, a * a]),
        min_value=0.0,
        info={"a": a, "b": b},
    )


def beale(start: Sequence[float] = (1.0, 1.0)) -> Problem:
    r"""Beale's function.

    .. math::
        f(x, y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2

    Global minimum :math:`f = 0` at :math:`(3, 0.5)`; flat regions and steep ridges make it
    hard for plain gradient descent. ``info`` is empty.
    """

    def loss_fn(params: jax.Array) -> jax.Array:
        x, y = params[0], params[1]
        return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2

    return Problem(
        name="beale",
        loss_fn=loss_fn,
        init_params=_start(start),
        optimum=f32([3.0, 0.5]),
        min_value=0.0,
        info={},
    )


def himmelblau(start: Sequence[float] = (0.0, 0.0)) -> Problem:
    r"""Himmelblau's function.

    .. math:: f(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2

    Four global minima, all with :math:`f = 0`, listed in :data:`HIMMELBLAU_MINIMA` (also
    ``info["minima"]``); ``optimum`` is the first one, :math:`(3, 2)`. Which minimum gradient
    descent reaches depends on the start.
    """

    def loss_fn(params: jax.Array) -> jax.Array:
        x, y = params[0], params[1]
        return (x**2 + y - 11.0) ** 2 + (x + y**2 - 7.0) ** 2

    return Problem(
        name="himmelblau",
        loss_fn=loss_fn,
        init_params=_start(start),
        optimum=f32(HIMMELBLAU_MINIMA[0]),
        min_value=0.0,
        info={"minima": jnp.asarray(HIMMELBLAU_MINIMA, dtype=jnp.float32)},
    )
