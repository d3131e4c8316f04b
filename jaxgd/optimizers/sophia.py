"""Sophia: a second-order method at the cost of a first-order one, from a clipped momentum
preconditioned by an occasional estimate of the Hessian diagonal.

Arguments, defaults and formulas are optax.contrib's (0.2.8), in optax's order, except:

* ``update`` takes the objective as ``obj_fn=`` (optax's name) or ``value_fn=`` (what
  :func:`jaxgd.fit` passes), so ``jaxgd.fit(loss, params, jaxgd.sophia(1e-3))`` works.
* Hutchinson's random signs take each parameter's dtype, where optax casts all of them to
  the lowest dtype in the tree (which fails on trees of mixed dtypes).
* ``weight_decay`` is a number, not a schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jaxgd.core.base import GradientTransformation, chain
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxgd.transforms.sophia import HUTCHINSON, scale_by_sophia
from jaxgd.transforms.weight_decay import add_decayed_weights


def sophia(
    learning_rate: ScalarOrSchedule,
    b1=0.965,
    b2=0.99,
    eps=1e-8,
    weight_decay=1e-4,
    weight_decay_mask: Any | Callable[[Any], Any] | None = None,
    gamma=0.01,
    clip_threshold=1.0,
    update_interval=10,
    hessian_diagonal_fn: GradientTransformation = HUTCHINSON,
    mu_dtype=None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
) -> GradientTransformation:
    """Sophia (Liu et al., 2023): momentum divided by a running estimate of the Hessian
    diagonal, clipped per coordinate, plus decoupled weight decay.

    .. math::
       p_{t+1} = p_t - \\eta\\left(\\mathrm{clip}\\!\\left(\\frac{\\hat m_t}
                 {\\max(\\gamma\\, h_{t-1}, \\epsilon)}, -\\rho, \\rho\\right)
                 + \\lambda\\, p_t\\right)

    with :math:`\\hat m_t` the debiased momentum and :math:`h` the moving average of the
    Hessian-diagonal estimates, refreshed every ``update_interval`` steps (see
    :func:`jaxgd.scale_by_sophia`). Where the curvature is small or negative the clip
    makes the step :math:`\\eta\\rho\\,\\mathrm{sign}(\\hat m_t)`, sign descent; where it
    is large, a Newton-like step.

    The default estimator (Hutchinson's, :func:`jaxgd.hutchinson_estimator_diag_hessian`,
    with Rademacher signs where the paper draws Gaussian ones, as optax) needs the loss:
    ``opt.update(grads, state, params, obj_fn=loss_fn)`` (``loss_fn(params) -> scalar``,
    the batch bound in it), or ``value_fn=loss_fn``. :func:`jaxgd.fit` passes it. Under
    ``jax.vmap`` (a sweep) the estimate is computed at every step, the condition on the
    step count having become a select.

    Args:
      learning_rate: :math:`\\eta`, or a schedule.
      b1: :math:`\\beta_1 \\in [0, 1)`, the momentum's decay.
      b2: :math:`\\beta_2 \\in [0, 1)`, the Hessian estimate's decay per refresh (about
        :math:`1 - (1 - \\beta_2) / k` per step).
      eps: :math:`\\epsilon > 0`, the floor of the denominator.
      weight_decay: :math:`\\lambda \\ge 0`, multiplied by the learning rate.
      weight_decay_mask: which leaves to decay, see :func:`jaxgd.add_decayed_weights`.
      gamma: :math:`\\gamma \\ge 0`, the scale of the Hessian estimate.
      clip_threshold: :math:`\\rho > 0` (or ``None``: no clipping).
      update_interval: :math:`k \\ge 1`, the steps between Hessian estimates.
      hessian_diagonal_fn: the estimator, a transformation returning the diagonal at
        ``params`` (it receives the extra arguments of ``update``, and ``obj_fn``).
      mu_dtype: the dtype the momentum is stored in (``None``: each parameter's).
      verbose: print the win rate (the fraction of coordinates not clipped).
      print_win_rate_every_n_steps: how often ``verbose`` prints (0: never).

    Example:
      >>> import jax.numpy as jnp, jaxgd
      >>> loss_fn = lambda p: jnp.sum(jnp.arange(1.0, 4.0) * p ** 2)
      >>> result = jaxgd.fit(loss_fn, jnp.ones(3), jaxgd.sophia(0.05), max_steps=50)

    Reference:
      Liu, Li, Hall, Liang & Ma, `Sophia: A Scalable Stochastic Second-order Optimizer for
      Language Model Pre-training <https://arxiv.org/abs/2305.14342>`_, 2023.
    """
    return chain(
        scale_by_sophia(b1, b2, eps, gamma, clip_threshold, update_interval,
                        hessian_diagonal_fn, mu_dtype, verbose, print_win_rate_every_n_steps),
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_learning_rate(learning_rate),
    )


# How often to print is a setting of the debugging output, not of the method: kept fixed.
sophia = inject_hyperparams(sophia, static_args=("print_win_rate_every_n_steps",))
