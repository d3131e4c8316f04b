"""The :class:`Problem` container shared by all reference problems."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Problem"]


class Problem(NamedTuple):
    """A minimization problem with (where known) its answer.

    Calling convention of ``loss_fn``:

    * ``data is None`` (deterministic test functions, quadratics): ``loss_fn(params)``;
    * otherwise ``loss_fn(params, batch)``, where ``batch`` has the pytree structure of
      ``data`` (e.g. ``(X, y)``) with any number of examples along the leading axis, and the
      result is the *mean* loss over the batch's examples. ``loss_fn(params, data)`` is the
      full-batch (training) objective.

    Attributes:
      name: short identifier, e.g. ``"rosenbrock"``.
      loss_fn: the objective, see above. Pure and jit/grad/vmap compatible.
      init_params: starting point, a pytree of float32 arrays.
      data: training data, a pytree of arrays sharing a leading example axis, or ``None``.
      optimum: params pytree (same structure as ``init_params``) at the minimizer of the
        full-batch objective, or ``None`` if unknown.
      min_value: objective value at ``optimum`` (computed in float64 where possible), or
        ``None`` if unknown.
      test_data: held-out data with the structure of ``data``, or ``None``.
      accuracy_fn: ``(params, batch) -> fraction of correctly classified examples`` for
        classification problems, else ``None``.
      info: dict of problem-specific extras (e.g. ``"A"``, ``"b"``, ``"mu"``, ``"L"`` for
        :func:`~jaxgd.problems.quadratic`); see each factory's docstring. Never ``None`` for
        problems built by the factories of this package.
    """

    name: str
    loss_fn: Callable[..., jax.Array]
    init_params: Any
    data: Any = None
    optimum: Any = None
    min_value: float | None = None
    test_data: Any = None
    accuracy_fn: Callable[[Any, Any], jax.Array] | None = None
    info: dict[str, Any] | None = None


def as_key(key: Any) -> jax.Array:
    """``None`` -> ``PRNGKey(0)``, int -> ``PRNGKey(int)``, a key is returned unchanged."""
    if key is None:
        return jax.random.PRNGKey(0)
    if isinstance(key, int):
        return jax.random.PRNGKey(key)
    return key


def f32(x: Any) -> jax.Array:
    """Converts to a float32 JAX array (also when ``jax_enable_x64`` is on)."""
    return jnp.asarray(x, dtype=jnp.float32)
