"""Newton's method: the second-order method the seed texts set against gradient descent."""

from __future__ import annotations

from jaxgd.core.base import GradientTransformation, chain
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.transforms.newton import scale_by_newton
from jaxgd.transforms.scaling import ScalarOrSchedule, scale_by_learning_rate


def _newton(
    learning_rate: ScalarOrSchedule = 1.0,
    damping=0.0,
    solver: str = "cg",
    *,
    cg_maxiter: int | None = None,
    cg_tol=1e-7,
) -> GradientTransformation:
    """Newton's method, optionally damped.

    .. math::
       p_{t+1} = p_t - \\eta\\,(\\nabla^2 f(p_t) + \\lambda I)^{-1} \\nabla f(p_t)

    Second-order information makes it converge quadratically near a minimum with a
    positive definite Hessian, and with :math:`\\eta = 1` it solves a strictly convex
    quadratic in one step, whatever its conditioning; gradient descent needs a number of
    steps that grows with the condition number. The price is the Hessian: :math:`O(n^2)`
    memory and :math:`O(n^3)` time with ``solver="dense"``, a few Hessian-vector products
    per step with ``solver="cg"`` (see :func:`scale_by_newton`). Far from a minimum the
    full step can overshoot or head to a saddle: damp it and chain
    :func:`jaxgd.scale_by_backtracking_linesearch` after it.

    ``update`` needs the loss: ``opt.update(grads, state, params, value_fn=loss_fn)``.

    Args:
      learning_rate: :math:`\\eta` (1 is the classic method), or a schedule.
      damping: :math:`\\lambda \\ge 0` (Levenberg).
      solver: ``"cg"`` (matrix-free) or ``"dense"``.
      cg_maxiter: the most CG iterations (``None``: ``10 n``).
      cg_tol: relative residual at which CG stops.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgd
      >>> loss_fn = lambda p: jnp.sum((p - 3.0) ** 2)
      >>> opt = jaxgd.newton()
      >>> params = jnp.zeros(4)
      >>> state = opt.init(params)
      >>> updates, state = opt.update(jax.grad(loss_fn)(params), state, params,
      ...                             value_fn=loss_fn)
      >>> jaxgd.apply_updates(params, updates)  # the minimum, in one step
      Array([3., 3., 3., 3.], dtype=float32)
    """
    return chain(
        scale_by_newton(damping, solver, cg_maxiter=cg_maxiter, cg_tol=cg_tol),
        scale_by_learning_rate(learning_rate),
    )


_newton.__name__ = _newton.__qualname__ = "newton"
newton = inject_hyperparams(_newton, static_args=("cg_maxiter",))
