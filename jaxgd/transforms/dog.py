"""Distance over gradients: SGD step sizes from the distance travelled (DoG) and its
weighted variant (DoWG). Both are global rules: one step size for the whole tree."""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import checks, tree
from jaxgd.core.base import GradientTransformation, Params, flatten_invariant

InitStep = tuple[Literal["distance", "learning_rate", "heuristic"], float]
_INIT_STEP_KINDS = ("distance", "learning_rate", "heuristic")


def _distance_squared(params0, params) -> jax.Array:
    """:math:`\\|x_0 - x\\|^2` over the whole tree."""
    return tree.squared_norm(jax.tree.map(lambda p0, p: p0 - p, params0, params))


def _scaled(step_size, updates):
    return tree.map_rule(lambda g: (step_size * g,), updates)[0]


class DoGState(NamedTuple):
    """DoG's state (optax's field names).

    Attributes:
      is_init_step: whether the next update is the first.
      init_params: :math:`x_0`, the params at ``init``.
      max_dist: :math:`\\bar r`, the largest distance from :math:`x_0` so far.
      sum_sq_norm_grads: :math:`G = \\sum \\|g\\|^2`.
    """

    is_init_step: jax.Array
    init_params: Params
    max_dist: jax.Array
    sum_sq_norm_grads: jax.Array


def _check_init_step(init_step) -> tuple[str, float]:
    if not (isinstance(init_step, (tuple, list)) and len(init_step) == 2
            and init_step[0] in _INIT_STEP_KINDS):
        raise ValueError(
            f"init_step must be a pair (kind, value) with kind one of {_INIT_STEP_KINDS}, "
            f"e.g. ('heuristic', 1e-6); got {init_step!r}.")
    kind, value = init_step
    checks.positive(f"init_step value (for {kind!r})", value)
    return kind, value


def scale_by_dog(init_step: InitStep, eps=1e-8) -> GradientTransformation:
    """Distance over Gradients (Ivgi et al., 2023): an SGD step size from the distance
    travelled.

    .. math::
       \\bar r_t = \\max\\big(\\bar r_{t-1}, \\|x_t - x_0\\|\\big), \\quad
       G_t = G_{t-1} + \\|g_t\\|^2, \\quad
       u_t = \\frac{\\bar r_t}{\\sqrt{G_t + \\epsilon}}\\,g_t

    The update keeps the gradient's sign: follow it with a (sign-flipping) learning rate,
    as :func:`jaxgd.dog` does.

    Args:
      init_step: how the first step is set, a pair ``(kind, value)`` with ``value > 0``:
        ``("distance", r)`` sets :math:`\\bar r_0 = r`; ``("heuristic", a)`` sets
        :math:`\\bar r_0 = a (1 + \\|x_0\\|)` (``init`` then needs the real params);
        ``("learning_rate", s)`` makes the first step size :math:`s` (and :math:`\\bar r_0 = 0`).
      eps: :math:`\\epsilon \\ge 0`, added to :math:`G`.

    Reference:
      Ivgi, Hinder & Carmon, `DoG is SGD's Best Friend: A Parameter-Free Dynamic Step
      Size Schedule <https://arxiv.org/abs/2302.12022>`_, 2023.
    """
    kind, value = _check_init_step(init_step)
    checks.non_negative("eps", eps)

    def init(params):
        if kind == "distance":
            r0 = value
        elif kind == "heuristic":
            r0 = value * (1 + jnp.sqrt(tree.squared_norm(params)))
        else:
            r0 = 0.0
        dtype = tree.scalar_state_dtype(params)
        return DoGState(jnp.asarray(True), jax.tree.map(jnp.copy, params),
                        jnp.asarray(r0, dtype), jnp.zeros([], dtype))

    def update(updates, state, params=None, **extra_args):
        del extra_args
        checks.params_given("scale_by_dog", params)
        dtype = state.max_dist.dtype
        distance = jnp.sqrt(_distance_squared(state.init_params, params))
        max_dist = jnp.maximum(state.max_dist, distance).astype(dtype)
        sum_sq = (state.sum_sq_norm_grads + tree.squared_norm(updates)).astype(dtype)
        step_size = max_dist / jnp.sqrt(sum_sq + eps)
        if kind == "learning_rate":
            step_size = jnp.where(state.is_init_step, value, step_size)
        return _scaled(step_size, updates), DoGState(
            jnp.asarray(False), state.init_params, max_dist, sum_sq)

    return flatten_invariant(GradientTransformation(init, update))


class DoWGState(NamedTuple):
    """DoWG's state (optax's field names).

    Attributes:
      init_params: :math:`x_0`, the params at ``init``.
      weighted_sq_norm_grads: :math:`v = \\sum \\bar r^2 \\|g\\|^2`.
      estim_sq_dist: :math:`\\bar r^2`, the largest squared distance from :math:`x_0` so far.
    """

    init_params: Params
    weighted_sq_norm_grads: jax.Array
    estim_sq_dist: jax.Array


def scale_by_dowg(init_estim_sq_dist=None, eps=1e-4) -> GradientTransformation:
    """Distance over Weighted Gradients (Khaled et al., 2023).

    .. math::
       \\bar r_t^2 = \\max\\big(\\bar r_{t-1}^2, \\|x_t - x_0\\|^2\\big), \\quad
       v_t = v_{t-1} + \\bar r_t^2 \\|g_t\\|^2, \\quad
       u_t = \\frac{\\bar r_t^2}{\\sqrt{v_t} + \\epsilon}\\,g_t

    The update keeps the gradient's sign: follow it with a (sign-flipping) learning rate,
    as :func:`jaxgd.dowg` does.

    Args:
      init_estim_sq_dist: :math:`\\bar r_0^2 > 0`, the initial guess of the squared
        distance to a solution; default :math:`\\epsilon`.
      eps: :math:`\\epsilon > 0`.

    Reference:
      Khaled, Mishchenko & Jin, `DoWG Unleashed: An Efficient Universal Parameter-Free
      Gradient Descent Method <https://arxiv.org/abs/2305.16284>`_, 2023.
    """
    checks.positive("eps", eps)
    if init_estim_sq_dist is not None:
        checks.positive("init_estim_sq_dist", init_estim_sq_dist)

    def init(params):
        r0_sq = eps if init_estim_sq_dist is None else init_estim_sq_dist
        dtype = tree.scalar_state_dtype(params)
        return DoWGState(jax.tree.map(jnp.copy, params), jnp.zeros([], dtype),
                         jnp.asarray(r0_sq, dtype))

    def update(updates, state, params=None, **extra_args):
        del extra_args
        checks.params_given("scale_by_dowg", params)
        dtype = state.estim_sq_dist.dtype
        sq_dist = jnp.maximum(state.estim_sq_dist,
                              _distance_squared(state.init_params, params)).astype(dtype)
        weighted = sq_dist * tree.squared_norm(updates) + state.weighted_sq_norm_grads
        weighted = weighted.astype(dtype)
        step_size = sq_dist / (jnp.sqrt(weighted) + eps)
        return _scaled(step_size, updates), DoWGState(state.init_params, weighted, sq_dist)

    return flatten_invariant(GradientTransformation(init, update))
