"""Classic 2-D optimization test functions with known minima.

Params are a shape-``(2,)`` float32 array ``[x, y]``; ``loss_fn(params)`` takes no data.
Every factory's ``info`` holds ``"domain"``, ``((x_min, x_max), (y_min, y_max))``, the box
to draw it in (its classic one, widened to hold the start and the minimum), and
``"minima"``, the local minima known to float64 precision (an ``(m, 2)`` float32 array).
:data:`FUNCTIONS` lists the factories by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .base import Problem, f32

__all__ = [
    "CAMEL_MINIMA",
    "FUNCTIONS",
    "HIMMELBLAU_MINIMA",
    "beale",
    "himmelblau",
    "ill_conditioned",
    "rosenbrock",
    "saddle",
    "six_hump_camel",
]

#: The four global minima (value 0) of Himmelblau's function, to float64 precision.
HIMMELBLAU_MINIMA: tuple[tuple[float, float], ...] = (
    (3.0, 2.0),
    (-2.805118086952745, 3.131312518250573),
    (-3.779310253377747, -3.2831859912861696),
    (3.5844283403304917, -1.8481265269644034),
)

#: The six local minima of the six-hump camel function, to float64 precision, lowest
#: first: two global ones (value -1.0316284534898774), then two of value -0.2154638243837
#: and two of value 2.1042503103112598.
CAMEL_MINIMA: tuple[tuple[float, float], ...] = (
    (0.08984201310031807, -0.7126564030207396),
    (-0.08984201310031807, 0.7126564030207396),
    (-1.7036067149699814, 0.7960835686726251),
    (1.7036067149699814, -0.7960835686726251),
    (-1.6071047529201974, -0.5686514548841313),
    (1.6071047529201974, 0.5686514548841313),
)


def _start(start: Sequence[float]) -> jax.Array:
    x0 = f32(start)
    if x0.shape != (2,):
        raise ValueError(f"start must have 2 coordinates, got shape {x0.shape}.")
    return x0


Domain = tuple[tuple[float, float], tuple[float, float]]


def _domain(box: Domain, *points: Sequence[float]) -> Domain:
    """``box`` widened, with a margin of a tenth of its size, to hold every point."""
    out = []
    for axis, (low, high) in enumerate(box):
        margin = 0.1 * (high - low)
        coords = [float(p[axis]) for p in points]
        out.append((min(low, min(coords) - margin), max(high, max(coords) + margin)))
    return tuple(out)


def _info(domain: Domain, start: jax.Array, minima: Sequence[Sequence[float]],
          **extra: object) -> dict:
    return {"domain": _domain(domain, start.tolist(), *minima),
            "minima": jnp.asarray(minima, dtype=jnp.float32), **extra}


def rosenbrock(a: float = 1.0, b: float = 100.0, start: Sequence[float] = (-1.2, 1.0)) -> Problem:
    r"""Rosenbrock's banana function.

    .. math:: f(x, y) = (a - x)^2 + b\,(y - x^2)^2

    Unique minimum :math:`f = 0` at :math:`(a, a^2)` (for ``b > 0``), at the end of a long
    curved valley. ``info`` holds ``"a"``, ``"b"``, ``"domain"`` and ``"minima"``.
    """
    a, b = float(a), float(b)

    def loss_fn(params: jax.Array) -> jax.Array:
        x, y = params[0], params[1]
        return (a - x) ** 2 + b * (y - x**2) ** 2

    x0 = _start(start)
    return Problem(
        name="rosenbrock",
        loss_fn=loss_fn,
        init_params=x0,
        optimum=f32([a, a * a]),
        min_value=0.0,
        info=_info(((-2.0, 2.0), (-1.0, 3.0)), x0, [(a, a * a)], a=a, b=b),
    )


def beale(start: Sequence[float] = (1.0, 1.0)) -> Problem:
    r"""Beale's function.

    .. math::
        f(x, y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2

    Global minimum :math:`f = 0` at :math:`(3, 0.5)`; flat regions and steep ridges make it
    hard for plain gradient descent. ``info`` holds ``"domain"`` and ``"minima"``.
    """

    def loss_fn(params: jax.Array) -> jax.Array:
        x, y = params[0], params[1]
        return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2

    x0 = _start(start)
    return Problem(
        name="beale",
        loss_fn=loss_fn,
        init_params=x0,
        optimum=f32([3.0, 0.5]),
        min_value=0.0,
        info=_info(((-1.0, 4.5), (-1.5, 2.0)), x0, [(3.0, 0.5)]),
    )


def himmelblau(start: Sequence[float] = (0.0, 0.0)) -> Problem:
    r"""Himmelblau's function.

    .. math:: f(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2

    Four global minima, all with :math:`f = 0`, listed in :data:`HIMMELBLAU_MINIMA` (also
    ``info["minima"]``; ``info`` also holds ``"domain"``); ``optimum`` is the first one,
    :math:`(3, 2)`. Which minimum gradient descent reaches depends on the start.
    """

    def loss_fn(params: jax.Array) -> jax.Array:
        x, y = params[0], params[1]
        return (x**2 + y - 11.0) ** 2 + (x + y**2 - 7.0) ** 2

    x0 = _start(start)
    return Problem(
        name="himmelblau",
        loss_fn=loss_fn,
        init_params=x0,
        optimum=f32(HIMMELBLAU_MINIMA[0]),
        min_value=0.0,
        info=_info(((-6.0, 6.0), (-6.0, 6.0)), x0, HIMMELBLAU_MINIMA),
    )


def ill_conditioned(
    condition: float = 20.0, angle: float = 0.0, start: Sequence[float] = (-4.0, 2.0)
) -> Problem:
    r"""An ill-conditioned 2-D quadratic: a long, narrow elliptic valley.

    .. math::
        f(p) = \tfrac12\, p^\top A p, \qquad
        A = R_\theta^\top \operatorname{diag}(1, \kappa)\, R_\theta

    with :math:`\kappa` = ``condition`` and :math:`R_\theta` the rotation by ``angle``
    (radians; at 0 the valley lies along the x axis). Unique minimum :math:`f = 0` at the
    origin. Gradient descent converges for :math:`\eta < 2/\kappa`; at
    :math:`\eta = 1/\kappa` the error shrinks by :math:`1 - 1/\kappa` per step along the
    valley, and near the limit the path zigzags across it.
    ``info`` holds ``"A"`` (float64), ``"mu"`` (1), ``"L"`` (:math:`\kappa`),
    ``"condition_number"``, ``"domain"`` and ``"minima"``.
    """
    condition, angle = float(condition), float(angle)
    if not condition >= 1.0:
        raise ValueError(f"condition must be >= 1, got {condition}.")
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, s], [-s, c]])
    a64 = rotation.T @ np.diag([1.0, condition]) @ rotation
    a = f32(0.5 * (a64 + a64.T))

    def loss_fn(params: jax.Array) -> jax.Array:
        return 0.5 * params @ (a @ params)

    x0 = _start(start)
    return Problem(
        name="ill_conditioned",
        loss_fn=loss_fn,
        init_params=x0,
        optimum=f32([0.0, 0.0]),
        min_value=0.0,
        info=_info(((-5.0, 5.0), (-3.0, 3.0)), x0, [(0.0, 0.0)], A=a64, mu=1.0,
                   L=condition, condition_number=condition),
    )


def saddle(start: Sequence[float] = (1.5, 1e-3)) -> Problem:
    r"""A saddle point between two minima: :math:`x^2 - y^2` held from below by a quartic.

    .. math::
        f(x, y) = x^2 + \tfrac14\,(y^2 - 1)^2
                = x^2 - \tfrac12\,y^2 + \tfrac14\,y^4 + \tfrac14

    Near the origin it is the saddle :math:`x^2 - y^2/2` (plus a constant): a stationary
    point with value :math:`1/4`, curving up along x (Hessian eigenvalue 2) and down along
    y (eigenvalue -1). The quartic term turns it back up, so that it has two global
    minima, :math:`f = 0` at :math:`(0, \pm 1)`; ``optimum`` is :math:`(0, 1)`. From the
    default start, just off the x axis, gradient descent runs into the saddle and lingers
    there while the small y coordinate grows by a factor :math:`1 + \eta` per step.
    ``info`` holds ``"saddle"`` (the origin), ``"domain"`` and ``"minima"``.
    """

    def loss_fn(params: jax.Array) -> jax.Array:
        x, y = params[0], params[1]
        return x**2 + 0.25 * (y**2 - 1.0) ** 2

    x0 = _start(start)
    return Problem(
        name="saddle",
        loss_fn=loss_fn,
        init_params=x0,
        optimum=f32([0.0, 1.0]),
        min_value=0.0,
        info=_info(((-2.0, 2.0), (-1.75, 1.75)), x0, [(0.0, 1.0), (0.0, -1.0)],
                   saddle=f32([0.0, 0.0])),
    )


def six_hump_camel(start: Sequence[float] = (-1.2, -0.2)) -> Problem:
    r"""The six-hump camel function: six local minima, two of them global.

    .. math::
        f(x, y) = \left(4 - 2.1\,x^2 + \tfrac{x^4}{3}\right) x^2 + xy
                  + (4y^2 - 4)\, y^2

    Its local minima are :data:`CAMEL_MINIMA` (also ``info["minima"]``), lowest first;
    the global minimum :math:`f \approx -1.0316` is reached at two points, ``optimum``
    being :math:`(0.0898, -0.7127)`. Which minimum gradient descent reaches depends on
    the start and the step. ``info`` holds ``"domain"`` and ``"minima"``.
    """

    def loss_fn(params: jax.Array) -> jax.Array:
        x, y = params[0], params[1]
        return (4.0 - 2.1 * x**2 + x**4 / 3.0) * x**2 + x * y + (4.0 * y**2 - 4.0) * y**2

    x0 = _start(start)
    return Problem(
        name="six_hump_camel",
        loss_fn=loss_fn,
        init_params=x0,
        optimum=f32(CAMEL_MINIMA[0]),
        min_value=-1.0316284534898774,
        info=_info(((-2.2, 2.2), (-1.1, 1.1)), x0, CAMEL_MINIMA),
    )


#: The 2-D test functions by name (each factory's defaults give its classic start).
FUNCTIONS: dict[str, Callable[..., Problem]] = {
    "rosenbrock": rosenbrock,
    "beale": beale,
    "himmelblau": himmelblau,
    "ill_conditioned": ill_conditioned,
    "saddle": saddle,
    "six_hump_camel": six_hump_camel,
}
