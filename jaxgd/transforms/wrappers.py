"""Wrappers for real training loops: skip non-finite steps, accumulate micro-batch gradients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import checks, numerics, sharding, tree
from jaxgd.core.base import GradientTransformation, OptState, Updates, update_with_extra_args


def _zeros_like_result(run: Callable[[], tuple[Updates, OptState]]) -> Updates:
    """Zero updates shaped like those ``run`` would return, without running it."""
    shapes, _ = jax.eval_shape(run)
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def _all_finite(updates: Updates) -> jax.Array:
    flags = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(updates)]
    return jnp.all(jnp.stack(flags)) if flags else jnp.array(True)


class ApplyIfFiniteState(NamedTuple):
    """State of :func:`apply_if_finite`.

    Attributes:
      notfinite_count: consecutive steps with a NaN or Inf in the updates (0 after a
        finite one).
      last_finite: whether the last updates were all finite.
      total_notfinite: all such steps since ``init``.
      inner_state: the state of the wrapped transformation.
    """

    notfinite_count: jax.Array
    last_finite: jax.Array
    total_notfinite: jax.Array
    inner_state: OptState


def apply_if_finite(inner: GradientTransformation, max_consecutive_errors: int):
    """Skip steps whose incoming updates hold a NaN or an Inf.

    On such a step the result is zero updates and the inner state is returned untouched
    (bit for bit), so one bad batch neither moves the parameters nor poisons Adam's
    moments. After ``max_consecutive_errors`` skipped steps in a row, the next bad updates,
    and every bad one after them until a finite step resets the count, go through to
    ``inner`` anyway, NaN and all (its state and the params then take the NaN), so that a
    persistent problem shows up instead of silently freezing training (optax's
    ``apply_if_finite`` semantics; the counts are in the state).

    Args:
      inner: the transformation to protect.
      max_consecutive_errors: how many bad steps in a row are skipped (an int ≥ 1).

    Example:
      >>> import jax.numpy as jnp, jaxgd
      >>> opt = jaxgd.apply_if_finite(jaxgd.adam(1e-3), max_consecutive_errors=5)
      >>> params = {"w": jnp.ones(2)}
      >>> state = opt.init(params)
      >>> updates, state = opt.update({"w": jnp.array([jnp.nan, 1.0])}, state, params)
      >>> updates["w"], int(state.notfinite_count)
      (Array([0., 0.], dtype=float32), 1)
    """
    checks.count("max_consecutive_errors", max_consecutive_errors)
    inner_update = update_with_extra_args(inner)

    def init(params):
        zero = numerics.zero_count()
        return ApplyIfFiniteState(zero, jnp.array(True), zero, inner.init(params))

    def update(updates, state, params=None, **extra_args):
        finite = _all_finite(updates)
        notfinite_count = jnp.where(
            finite, numerics.zero_count(), numerics.safe_increment(state.notfinite_count)
        )

        def step():
            return inner_update(updates, state.inner_state, params, **extra_args)

        def skip():
            return _zeros_like_result(step), state.inner_state

        accept = finite | (notfinite_count > max_consecutive_errors)
        new_updates, inner_state = jax.lax.cond(accept, step, skip)
        total = jnp.where(
            finite, state.total_notfinite, numerics.safe_increment(state.total_notfinite)
        )
        return new_updates, ApplyIfFiniteState(notfinite_count, finite, total, inner_state)

    return GradientTransformation(init, update)


class AccumulateGradientsState(NamedTuple):
    """State of :func:`accumulate_gradients`.

    Attributes:
      mini_step: micro-batches accumulated since the last inner update.
      gradient_step: inner updates made so far.
      acc_grads: the running mean (or sum) of this round's gradients.
      inner_state: the state of the wrapped transformation.
    """

    mini_step: jax.Array
    gradient_step: jax.Array
    acc_grads: Updates
    inner_state: OptState


def _accumulator_dtype(x) -> jnp.dtype:
    # Accumulate bf16 / fp16 gradients in float32 so k small contributions do not round away.
    return jnp.promote_types(jnp.result_type(x), jnp.float32)


def accumulate_gradients(
    inner: GradientTransformation,
    every_k: int | Callable[[jax.Array], Any],
    *,
    use_grad_mean: bool = True,
) -> GradientTransformation:
    """Average gradients over ``k`` micro-batches, then make one update with ``inner``.

    .. math::
       \\bar g = \\frac{1}{k} \\sum_{j=1}^{k} g_j, \\qquad
       u_j = 0 \\;(j < k), \\qquad u_k = T(\\bar g)

    A large batch that does not fit in memory, as ``k`` micro-batches: the result equals
    one step of ``inner`` on their mean (up to rounding). Between updates the returned
    updates are zero and the inner state does not move. The mean is kept as a running
    mean in at least float32; the inner update gets the extra arguments of the last
    micro-step. Same semantics as ``optax.MultiSteps`` (without ``should_skip_update_fn``;
    wrap with :func:`apply_if_finite` instead).

    Args:
      inner: the transformation that receives the averaged gradients.
      every_k: micro-batches per update: an int ≥ 1, or a function of the number of
        updates made so far returning one (to grow the batch during training).
      use_grad_mean: average the gradients (the default) or sum them.

    Example:
      >>> import jax.numpy as jnp, jaxgd
      >>> opt = jaxgd.accumulate_gradients(jaxgd.sgd(0.1), every_k=2)
      >>> params = jnp.zeros(2)
      >>> state = opt.init(params)
      >>> u1, state = opt.update(jnp.array([1.0, 2.0]), state, params)  # held back
      >>> u2, state = opt.update(jnp.array([3.0, 4.0]), state, params)  # -0.1 * mean
      >>> u1, u2
      (Array([0., 0.], dtype=float32), Array([-0.2, -0.3], dtype=float32))
    """
    if not callable(every_k):
        checks.count("every_k", every_k)
    inner_update = update_with_extra_args(inner)

    def init(params):
        tree.check_float_params(params)
        acc = jax.tree.map(lambda p: sharding.full_like(p, 0, _accumulator_dtype(p)), params)
        zero = numerics.zero_count()
        return AccumulateGradientsState(zero, zero, acc, inner.init(params))

    def update(updates, state, params=None, **extra_args):
        k = every_k(state.gradient_step) if callable(every_k) else every_k
        seen = state.mini_step

        def add(g, acc):
            g = g.astype(acc.dtype)
            if use_grad_mean:
                return g, acc + (g - acc) / (seen + 1)
            return g, acc + g

        _, acc = tree.map_rule(add, updates, state.acc_grads, names=("acc_grads",))
        emit = seen + 1 >= k
        mean = jax.tree.map(lambda a, g: a.astype(g.dtype), acc, updates)

        def step():
            return inner_update(mean, state.inner_state, params, **extra_args)

        def wait():
            return _zeros_like_result(step), state.inner_state

        new_updates, inner_state = jax.lax.cond(emit, step, wait)
        new_state = AccumulateGradientsState(
            mini_step=jnp.where(emit, 0, numerics.safe_increment(seen)).astype(seen.dtype),
            gradient_step=jnp.where(
                emit, numerics.safe_increment(state.gradient_step), state.gradient_step
            ),
            acc_grads=jax.tree.map(lambda a: jnp.where(emit, jnp.zeros_like(a), a), acc),
            inner_state=inner_state,
        )
        return new_updates, new_state

    return GradientTransformation(init, update)
