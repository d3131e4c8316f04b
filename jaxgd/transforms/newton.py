"""Newton's method: precondition the gradient with the (damped) inverse Hessian."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxgd.core import checks, tree
from jaxgd.core.base import (
    GradientTransformation,
    bind_value_fn,
    flatten_invariant,
    init_empty_state,
)

SOLVERS = ("cg", "dense")


def _dense_solve(loss, params, updates, damping):
    flat_params, unravel = ravel_pytree(params)
    flat_grad, _ = ravel_pytree(updates)
    hessian = jax.hessian(lambda x: loss(unravel(x)))(flat_params)
    shift = jnp.asarray(damping, hessian.dtype) * jnp.eye(hessian.shape[0], dtype=hessian.dtype)
    # LU, not Cholesky: without damping the Hessian may be indefinite and LU still solves.
    return unravel(jnp.linalg.solve(hessian + shift, flat_grad.astype(hessian.dtype)))


def _cg_solve(loss, params, updates, damping, maxiter, tol):
    # Linearize the gradient once (forward-over-reverse); each CG iteration then costs one
    # Hessian-vector product without re-running the forward and backward passes.
    _, hvp = jax.linearize(jax.grad(loss), params)

    def matvec(v):
        return jax.tree.map(lambda hv, x: (hv + damping * x).astype(x.dtype), hvp(v), v)

    step, _ = jax.scipy.sparse.linalg.cg(matvec, updates, tol=tol, maxiter=maxiter)
    return step


def scale_by_newton(
    damping=0.0, solver: str = "cg", *, cg_maxiter: int | None = None, cg_tol=1e-7
) -> GradientTransformation:
    """Precondition the gradient with the damped inverse Hessian of the loss.

    .. math::
       u \\leftarrow (\\nabla^2 f(p) + \\lambda I)^{-1}\\, g

    where :math:`g` is the incoming updates (the gradient) and :math:`f` the loss, given
    to ``update`` as ``value_fn=`` (with batch data, if the loss takes any, as further
    keyword arguments). :math:`\\lambda = 0` is the pure Newton direction; :math:`\\lambda
    > 0` (Levenberg damping) makes the system positive definite once :math:`\\lambda`
    exceeds :math:`-\\lambda_{min}(\\nabla^2 f)`, so non-convex problems get a descent
    direction, and blends towards gradient descent (step :math:`g / \\lambda`) as
    :math:`\\lambda` grows. Follow with :func:`jaxgd.scale_by_learning_rate` (as
    :func:`newton` does) and, far from a minimum, a line search.

    Solvers, for :math:`n` parameters:

    * ``"dense"``: builds the :math:`n \\times n` Hessian of the flattened parameters
      (``jax.hessian``) and solves by LU: :math:`O(n^2)` memory, :math:`O(n^3)` time, exact.
      Works for indefinite Hessians. For small problems (up to a few thousand parameters).
    * ``"cg"``: matrix-free conjugate gradients on the pytree itself, each iteration one
      Hessian-vector product (forward-over-reverse, about the cost of two gradients):
      :math:`O(n)` memory and :math:`O(k)` gradient costs for :math:`k` iterations. Needs
      :math:`\\nabla^2 f + \\lambda I` positive definite (use damping away from a minimum).
      For large models; cap ``cg_maxiter`` there, since the default (``10 n``, JAX's) is
      only sensible for small :math:`n`.

    Args:
      damping: :math:`\\lambda \\ge 0`.
      solver: ``"cg"`` or ``"dense"``.
      cg_maxiter: the most CG iterations (``None``: JAX's default, ``10 n``).
      cg_tol: CG stops when :math:`\\|r\\| \\le` ``cg_tol`` :math:`\\cdot \\|g\\|`. The
        default is about float32's resolution: tighter only adds iterations in float32;
        looser (1e-3 to 1e-5) is the usual inexact-Newton trade far from the minimum.

    References:
      Nocedal & Wright, *Numerical Optimization*, 2006, §3.3 and §7.1 (Newton-CG).
    """
    checks.non_negative("damping", damping)
    checks.non_negative("cg_tol", cg_tol)
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}.")
    if cg_maxiter is not None and (
        isinstance(cg_maxiter, bool) or not isinstance(cg_maxiter, int) or cg_maxiter < 1
    ):
        raise ValueError(f"cg_maxiter must be None or an int >= 1, got {cg_maxiter!r}.")

    def update(updates, state, params=None, *, value_fn=None, **extra_args):
        loss = bind_value_fn(value_fn, extra_args, "Newton's method")
        checks.params_given("Newton's method", params)
        tree.check_same_structure(updates, params, "updates", "params")
        if solver == "dense":
            return _dense_solve(loss, params, updates, damping), state
        return _cg_solve(loss, params, updates, damping, cg_maxiter, cg_tol), state

    return flatten_invariant(GradientTransformation(init_empty_state, update))
