"""Quasi-Newton: L-BFGS with a line search."""

from __future__ import annotations

from jaxgd.core.base import GradientTransformation, chain, identity
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.transforms.lbfgs import scale_by_lbfgs
from jaxgd.transforms.linesearch import scale_by_backtracking_linesearch
from jaxgd.transforms.scaling import ScalarOrSchedule, scale, scale_by_learning_rate

#: Armijo backtracking that tries the full quasi-Newton step (t = 1) first at every
#: iteration, as optax's zoom search does with ``initial_guess_strategy="one"``.
DEFAULT_LINESEARCH = scale_by_backtracking_linesearch(
    max_backtracking_steps=20, increase_factor=float("inf")
)


def lbfgs(
    learning_rate: ScalarOrSchedule | None = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch: GradientTransformation | None = DEFAULT_LINESEARCH,
) -> GradientTransformation:
    """L-BFGS (Liu & Nocedal, 1989): limited-memory quasi-Newton steps with a line search.

    The inverse Hessian is estimated from the last ``memory_size`` parameter and gradient
    differences.

    .. math::
       d_k = -H_k\\,g_k, \\qquad p_{k+1} = p_k + t_k\\,\\eta_k\\,d_k

    where :math:`H_k` is the L-BFGS inverse-Hessian estimate built from
    :math:`s_j = p_{j+1} - p_j`, :math:`y_j = g_{j+1} - g_j`, :math:`j > k - m` (two-loop
    recursion, :func:`jaxgd.transforms.lbfgs.scale_by_lbfgs`), :math:`\\eta_k` the optional
    learning rate and :math:`t_k` the step the line search accepts.

    The line search needs the loss: call
    ``opt.update(grads, state, params, value=loss, grad=grads, value_fn=loss_fn)``
    (``value`` and ``grad`` are optional; without them the search recomputes them with
    ``value_fn``). Deterministic (full-batch) losses suit it best.

    Differs from optax 0.2.8 on purpose: the default ``linesearch`` is a backtracking
    Armijo search (:func:`jaxgd.transforms.linesearch.scale_by_backtracking_linesearch`,
    first trial step 1 at every iteration, at most 20 halvings by 0.8), not optax's zoom
    search for the strong Wolfe conditions, so the steps (not the minima) differ from
    ``optax.lbfgs()``. Armijo alone does not guarantee
    :math:`\\langle s_k, y_k\\rangle > 0` on non-convex losses; pass a Wolfe search
    (e.g. ``optax.scale_by_zoom_linesearch(max_linesearch_steps=20,
    initial_guess_strategy="one")``, which chains with jaxgd) to get optax's exact updates.
    Any transformation works as ``linesearch``; ``None`` takes the fixed step
    :math:`\\eta_k d_k`.

    Args:
      learning_rate: :math:`\\eta_k`, a schedule, or ``None`` (:math:`\\eta_k = 1`; the
        line search picks the step).
      memory_size: how many pairs :math:`(s_j, y_j)` to keep (structural, not swept).
      scale_init_precond: start the recursion from :math:`\\gamma_k I` with
        :math:`\\gamma_k = \\langle s_{k-1}, y_{k-1}\\rangle / \\|y_{k-1}\\|^2` (else
        :math:`I`).
      linesearch: a transformation that rescales the direction, or ``None``.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgd
      >>> from jaxgd.optimizers.lbfgs import lbfgs
      >>> loss = jaxgd.problems.rosenbrock().loss_fn
      >>> opt, x = lbfgs(), jnp.array([-1.2, 1.0])
      >>> state = opt.init(x)
      >>> for _ in range(100):
      ...     value, grad = jax.value_and_grad(loss)(x)
      ...     updates, state = opt.update(grad, state, x, value=value, grad=grad,
      ...                                 value_fn=loss)
      ...     x = jaxgd.apply_updates(x, updates)
      >>> bool(jnp.allclose(x, 1.0, atol=1e-3))
      True

    References:
      Liu & Nocedal, `On the limited memory BFGS method for large scale optimization
      <https://doi.org/10.1007/BF01589116>`_, 1989. Nocedal & Wright, *Numerical
      Optimization*, 2nd ed., 2006, Algorithms 7.4, 7.5.
    """
    return chain(
        scale_by_lbfgs(memory_size=memory_size, scale_init_precond=scale_init_precond),
        scale(-1.0) if learning_rate is None else scale_by_learning_rate(learning_rate),
        identity() if linesearch is None else linesearch,
    )


lbfgs = inject_hyperparams(lbfgs, static_args=("memory_size",))
