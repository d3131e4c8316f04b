"""L-BFGS: precondition by a limited-memory estimate of the inverse Hessian."""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxgd.core import checks, numerics, sharding, tree
from jaxgd.core.base import GradientTransformation, flatten_invariant


class ScaleByLBFGSState(NamedTuple):
    """The L-BFGS memory, on the parameters flattened to one vector of length :math:`n`.

    Attributes:
      count: steps taken.
      params: the previous parameters :math:`w_{k-1}` (flat).
      updates: the previous incoming updates (gradients) :math:`g_{k-1}` (flat).
      diff_params_memory: ``(memory_size, n)`` ring buffer of :math:`s_j = w_{j+1} - w_j`.
      diff_updates_memory: ``(memory_size, n)`` ring buffer of :math:`y_j = g_{j+1} - g_j`.
      weights_memory: ``(memory_size,)`` the :math:`\\rho_j = 1 / \\langle y_j, s_j \\rangle`
        (0 for empty slots and for pairs with :math:`\\langle y_j, s_j \\rangle = 0`).
    """

    count: jax.Array
    params: jax.Array
    updates: jax.Array
    diff_params_memory: jax.Array
    diff_updates_memory: jax.Array
    weights_memory: jax.Array


def _ravel(tree_: Any) -> tuple[jax.Array, Any]:
    """``ravel_pytree`` of ``tree_``, its leaves first gathered where an explicit mesh
    splits them (the state is one vector, as optax's; see ``sharding.gathered``)."""
    return ravel_pytree(jax.tree.map(sharding.gathered, tree_))


def _real_vdot(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.real(jnp.vdot(a, b))


def two_loop_recursion(g, s_memory, y_memory, rho, gamma, oldest) -> jax.Array:
    """:math:`H g` for the L-BFGS inverse-Hessian estimate :math:`H` (Nocedal & Wright,
    Algorithm 7.4): slots are visited newest to oldest, then oldest to newest, starting
    from slot ``oldest`` of the ring buffer; slots with :math:`\\rho = 0` do nothing."""
    size = rho.shape[0]
    order = (oldest + jnp.arange(size)) % size

    def backward(q, j):
        alpha = rho[j] * _real_vdot(s_memory[j], q)
        return (q - alpha * y_memory[j]).astype(q.dtype), alpha

    q, alphas = jax.lax.scan(backward, g, order, reverse=True)

    def forward(r, j_alpha):
        j, alpha = j_alpha
        beta = rho[j] * _real_vdot(y_memory[j], r)
        return (r + (alpha - beta) * s_memory[j]).astype(r.dtype), None

    r, _ = jax.lax.scan(forward, (gamma * q).astype(q.dtype), (order, alphas))
    return r


def scale_by_lbfgs(memory_size: int = 10, scale_init_precond: bool = True):
    """Multiply the updates by the L-BFGS estimate of the inverse Hessian.

    With :math:`s_j = w_{j+1} - w_j`, :math:`y_j = g_{j+1} - g_j`,
    :math:`\\rho_j = 1/\\langle y_j, s_j\\rangle` for the last :math:`m` steps,

    .. math::
       H_k^{(k-m)} = \\gamma_k I, \\qquad
       H_k^{(j+1)} = (I - \\rho_j s_j y_j^\\top)\\,H_k^{(j)}\\,(I - \\rho_j y_j s_j^\\top)
                     + \\rho_j s_j s_j^\\top, \\qquad u_k = H_k^{(k)} g_k,

    computed by the two-loop recursion in :math:`O(mn)` without forming any matrix.
    :math:`\\gamma_k = \\langle s_{k-1}, y_{k-1}\\rangle / \\|y_{k-1}\\|^2` if
    ``scale_init_precond`` (else 1), and :math:`\\gamma_0 = \\min(1, 1/\\|g_0\\|)` so that
    the first step has length at most 1. The memory is updated *before* preconditioning,
    from the params and gradient of this call, so a line search chained after this block
    only changes where the next pair is measured.

    The output is a direction, not a descent step: chain ``scale(-1)`` and a line search
    (as :func:`jaxgd.lbfgs` does). Same formulas and state as ``optax.scale_by_lbfgs``,
    except that the parameters are flattened to one vector (one ``vdot`` per product
    instead of one per leaf; leaves of different dtypes are promoted to a common one).

    Args:
      memory_size: :math:`m \\ge 1`, how many pairs :math:`(s_j, y_j)` are kept (structural).
      scale_init_precond: use the scaled identity :math:`\\gamma_k I` to start (else
        :math:`I`, after the first step).

    References:
      Nocedal & Wright, *Numerical Optimization*, 2nd ed., 2006, Algorithms 7.4 and 7.5.
      Liu & Nocedal, `On the limited memory BFGS method for large scale optimization
      <https://doi.org/10.1007/BF01589116>`_, 1989.
    """
    # Sizes the state's buffers, so it must be a concrete int (hence static in lbfgs).
    if isinstance(memory_size, bool) or not isinstance(memory_size, numbers.Integral) or (
        memory_size < 1
    ):
        raise ValueError(f"memory_size must be an int >= 1, got {memory_size!r}.")
    memory_size = int(memory_size)

    def init(params):
        tree.check_float_params(params)
        flat, _ = _ravel(params)
        memory = jnp.zeros((memory_size, flat.size), flat.dtype)
        return ScaleByLBFGSState(
            count=numerics.zero_count(),
            params=jnp.zeros_like(flat),
            updates=jnp.zeros_like(flat),
            diff_params_memory=memory,
            diff_updates_memory=memory,
            weights_memory=jnp.zeros((memory_size,), jnp.real(flat).dtype),
        )

    def update(updates, state, params=None, **extra_args):
        del extra_args
        checks.params_given("scale_by_lbfgs", params, " to measure s = w_k - w_{k-1}")
        tree.check_same_structure(updates, params, "updates", "params")
        g, unravel = _ravel(updates)
        w, _ = _ravel(params)
        g = g.astype(state.updates.dtype)
        w = w.astype(state.params.dtype)
        started = state.count > 0
        # The pair (s, y) of the step just taken; there is none before the first step.
        s = jnp.where(started, w - state.params, 0).astype(w.dtype)
        y = jnp.where(started, g - state.updates, 0).astype(g.dtype)
        sy = _real_vdot(y, s)
        rho = jnp.where(sy == 0, 0.0, 1.0 / jnp.where(sy == 0, 1.0, sy))
        newest = (state.count - 1) % memory_size
        s_memory = state.diff_params_memory.at[newest].set(s)
        y_memory = state.diff_updates_memory.at[newest].set(y)
        weights = state.weights_memory.at[newest].set(rho.astype(state.weights_memory.dtype))

        if scale_init_precond:
            yy = _real_vdot(y, y)
            gamma = jnp.where(yy > 0, sy / jnp.where(yy > 0, yy, 1.0), 1.0)
            first_scale = jnp.minimum(1.0, 1.0 / jnp.linalg.norm(jax.lax.stop_gradient(g)))
            gamma = jnp.where(started, gamma, first_scale)
        else:
            gamma = 1.0

        direction = two_loop_recursion(
            g, s_memory, y_memory, weights, gamma, state.count % memory_size
        )
        new_state = ScaleByLBFGSState(
            count=numerics.safe_increment(state.count),
            params=w,
            updates=g,
            diff_params_memory=s_memory,
            diff_updates_memory=y_memory,
            weights_memory=weights,
        )
        return sharding.placed_like(unravel(direction), updates), new_state

    return flatten_invariant(GradientTransformation(init, update))
