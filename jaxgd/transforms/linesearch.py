"""Backtracking (Armijo) line search: scale a descent direction until the loss drops enough."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import checks, tree
from jaxgd.core.base import (
    GradientTransformation,
    Updates,
    bind_value_fn,
    check_extra_args,
    flatten_invariant,
)


class BacktrackingInfo(NamedTuple):
    """What the last search did, for debugging.

    Attributes:
      num_linesearch_steps: loss evaluations made by the search.
      decrease_error: how far the accepted step misses the Armijo condition (0: met).
    """

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array


class ScaleByBacktrackingLinesearchState(NamedTuple):
    """State of :func:`scale_by_backtracking_linesearch`.

    Attributes:
      learning_rate: the step size :math:`t` accepted last; the next search starts from it.
      value: the loss at the parameters after the step.
      grad: the gradient there when ``store_grad=True``, else ``None``.
      info: a :class:`BacktrackingInfo`.
    """

    learning_rate: jax.Array
    value: jax.Array
    grad: Updates | None
    info: BacktrackingInfo


def _check_factor(name: str, value, ok: Callable, expected: str) -> None:
    array = checks.concrete(value)
    if array is not None and not bool(ok(array)):
        raise ValueError(f"{name} must be {expected}, got {array.item()!r}.")


def scale_by_backtracking_linesearch(
    max_backtracking_steps: int = 30,
    slope_rtol=1e-4,
    decrease_factor=0.8,
    increase_factor=1.5,
    max_learning_rate=1.0,
    atol=0.0,
    rtol=0.0,
    store_grad: bool = False,
) -> GradientTransformation:
    """Backtracking line search: shrink the step along a descent direction until the loss
    decreases enough (Armijo's sufficient-decrease condition).

    Given the incoming updates :math:`d` (a descent step such as :math:`-\\eta\\,g` or a
    Newton step), it returns :math:`t\\,d` with the first
    :math:`t \\in \\{t_0, \\beta t_0, \\beta^2 t_0, \\dots\\}` that satisfies

    .. math::
       f(p + t\\,d) \\le (1 + \\delta)\\,f(p) + c\\,t\\,\\langle \\nabla f(p), d \\rangle
       + \\epsilon,

    with :math:`t_0 = \\min(\\gamma\\,t_{prev}, t_{max})` and :math:`t_{prev}` the step
    accepted last (:math:`t = 1` at first). The search is a ``lax.while_loop``: it jits,
    vmaps, and makes at most ``max_backtracking_steps + 1`` loss evaluations (usually one
    or two, since each search starts near the last accepted step). When no tried :math:`t`
    meets the condition, the smallest one is taken anyway (as in optax), so keep
    ``decrease_factor ** max_backtracking_steps`` below the stable step size; when none
    gives a finite loss, the step is 0. Put it after the links that make
    the direction: ``chain(sgd(1.0), scale_by_backtracking_linesearch())`` or
    ``chain(newton(), scale_by_backtracking_linesearch())``. The condition can only be met
    when :math:`\\langle \\nabla f, d \\rangle < 0` (true for GD and for Newton with a positive
    definite damped Hessian, not in general for Adam).

    ``update`` takes keyword arguments, named as in optax:

    * ``value_fn`` (required): the loss ``value_fn(params, **data) -> scalar``; extra
      keyword arguments given to ``update`` that ``value_fn`` names (a batch) are passed on;
      any other name is a ``TypeError`` (as in optax), so that a misspelt one is not
      dropped silently. In a chain, every link sees these same arguments.
    * ``value``: :math:`f(p)`, and ``grad``: :math:`\\nabla f(p)`. Either may be left out;
      then both are computed with one ``jax.value_and_grad(value_fn)`` call. Pass them
      when the training step has them already (the incoming updates are *not* taken as
      the gradient, since they are usually a scaled or preconditioned one).

    Semantics and defaults follow ``optax.scale_by_backtracking_linesearch``. Differences:
    ``max_backtracking_steps`` has a default, 30 (:math:`0.8^{30} \\approx 10^{-3}`; with
    15, gradient descent from Rosenbrock's classic start accepts a failing step and
    diverges); when the search fails (step 0) ``state.value`` is :math:`f(p)`, the loss at
    the parameters actually kept, ``state.learning_rate`` keeps the step size accepted
    before (the next search starts from it), and ``store_grad`` stores the gradient at the accepted
    point computed after the search.

    Args:
      max_backtracking_steps: the most times :math:`t` is shrunk (an int ≥ 0).
      slope_rtol: :math:`c \\in [0, 1)`, the fraction of the linear decrease required.
      decrease_factor: :math:`\\beta \\in (0, 1)`.
      increase_factor: :math:`\\gamma > 0`: how much the first guess may grow on the last
        accepted step (1 keeps it, ``inf`` restarts from ``max_learning_rate``).
      max_learning_rate: :math:`t_{max} > 0`.
      atol: :math:`\\epsilon \\ge 0`.
      rtol: :math:`\\delta \\ge 0`.
      store_grad: keep the gradient at the new parameters in the state.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgd
      >>> loss_fn = lambda p: jnp.sum(p**4)
      >>> opt = jaxgd.chain(jaxgd.sgd(1.0), jaxgd.scale_by_backtracking_linesearch())
      >>> params = jnp.array([1.0, -2.0])
      >>> state = opt.init(params)
      >>> value, grad = jax.value_and_grad(loss_fn)(params)
      >>> updates, state = opt.update(grad, state, params, value=value, grad=grad,
      ...                             value_fn=loss_fn)
      >>> bool(loss_fn(params + updates) < value)
      True

    References:
      Armijo, *Minimization of functions having Lipschitz continuous first partial
      derivatives*, 1966; Nocedal & Wright, *Numerical Optimization*, 2006, §3.1.
    """
    _check_factor(
        "max_backtracking_steps", max_backtracking_steps,
        lambda x: x >= 0 and float(x).is_integer(), "an integer >= 0",
    )
    checks.decay_rate("slope_rtol", slope_rtol)
    _check_factor("decrease_factor", decrease_factor, lambda x: 0 < x < 1, "in (0, 1)")
    _check_factor("increase_factor", increase_factor, lambda x: x > 0, "> 0 (inf allowed)")
    checks.positive("max_learning_rate", max_learning_rate)
    checks.non_negative("atol", atol)
    checks.non_negative("rtol", rtol)

    def init(params):
        # The loss and step size in the params' widest float type, at least float32, so a
        # bf16 first leaf does not make the Armijo comparison coarse.
        widest = jnp.result_type(jnp.float32, *jax.tree.leaves(params))
        dtype = jnp.real(jnp.zeros([], widest)).dtype
        return ScaleByBacktrackingLinesearchState(
            learning_rate=jnp.ones([], dtype),
            value=jnp.full([], jnp.inf, dtype),
            grad=tree.zeros_like(params) if store_grad else None,
            info=BacktrackingInfo(jnp.zeros([], jnp.int32), jnp.full([], jnp.inf, dtype)),
        )

    def update(updates, state, params=None, *, value=None, grad=None, value_fn=None,
               **extra_args):
        loss = bind_value_fn(value_fn, extra_args, "scale_by_backtracking_linesearch")
        check_extra_args(value_fn, extra_args, "scale_by_backtracking_linesearch")
        checks.params_given("scale_by_backtracking_linesearch", params)
        tree.check_same_structure(updates, params, "updates", "params")
        if value is None or grad is None:
            value_here, grad_here = jax.value_and_grad(loss)(params)
            value = value_here if value is None else value
            grad = grad_here if grad is None else grad
        tree.check_same_structure(updates, grad, "updates", "grad")
        dtype = state.learning_rate.dtype
        value = jnp.asarray(value, dtype)
        slope = tree.real_vdot(updates, grad).astype(dtype)

        def step_to(t):
            return jax.tree.map(lambda p, d: (p + t * d).astype(p.dtype), params, updates)

        def decrease_error(t, new_value):
            error = new_value - (1 + rtol) * value - t * slope_rtol * slope
            return jnp.maximum(jnp.where(jnp.isnan(error), jnp.inf, error), 0).astype(dtype)

        def keep_searching(carry):
            _, _, error, count = carry
            return ~(error <= atol) & (count <= max_backtracking_steps)

        def try_step(carry):
            t, _, _, count = carry
            # The first try is the initial guess itself; every later one shrinks it.
            t = jnp.where(count > 0, decrease_factor * t, t).astype(dtype)
            new_value = jnp.asarray(loss(step_to(t)), dtype)
            return t, new_value, decrease_error(t, new_value), count + 1

        t0 = jnp.minimum(increase_factor * state.learning_rate, max_learning_rate).astype(dtype)
        start = (t0, value, jnp.full([], jnp.inf, dtype), jnp.zeros([], jnp.int32))
        t, new_value, error, count = jax.lax.while_loop(keep_searching, try_step, start)

        failed = jnp.isinf(error)
        t = jnp.where(failed, 0, t).astype(dtype)
        new_value = jnp.where(failed, value, new_value)
        new_grad = None
        if store_grad:
            new_value, new_grad = jax.value_and_grad(loss)(step_to(t))
            new_value = jnp.asarray(new_value, dtype)
        scaled = jax.tree.map(lambda d: (t * d).astype(d.dtype), updates)
        info = BacktrackingInfo(count, error)
        # A failed search accepted no step: the next one starts from the last accepted
        # step size, not from 0 (from which every later search would accept t = 0).
        accepted = jnp.where(failed, state.learning_rate, t).astype(dtype)
        return scaled, ScaleByBacktrackingLinesearchState(accepted, new_value, new_grad, info)

    return flatten_invariant(GradientTransformation(init, update))
