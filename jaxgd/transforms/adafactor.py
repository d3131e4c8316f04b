"""Adafactor's blocks: the rank-1 (row x column) estimate of the second moment for large
matrices, and the per-block RMS rules (clip each leaf's update RMS, or scale it by its
parameter's RMS)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core import checks, numerics, sharding, tree
from jaxgd.core.base import GradientTransformation, Updates, init_empty_state
from jaxgd.core.numerics import abs_sq


class FactoredState(NamedTuple):
    """Step count and, per leaf, the row and column statistics (factored leaves) or the
    full second moment (the others); unused slots hold a 1-element placeholder."""

    count: jax.Array
    v_row: Updates
    v_col: Updates
    v: Updates


def factored_dims(
    shape: tuple[int, ...], factored: bool, min_dim_size_to_factor: int
) -> tuple[int, int] | None:
    """The axes ``(second largest, largest)`` to factor over, or ``None`` when the leaf
    has fewer than two axes of size ``>= min_dim_size_to_factor`` (or ``factored`` is off)."""
    if not factored or len(shape) < 2:
        return None
    # A stable sort: of equal sizes, the later axis counts as the larger.
    order = np.argsort(shape, kind="stable")
    if shape[order[-2]] < min_dim_size_to_factor:
        return None
    return int(order[-2]), int(order[-1])


def _placeholder(p) -> jax.Array:
    return jnp.zeros((1,), jnp.result_type(p))


def scale_by_factored_rms(
    factored: bool = True,
    decay_rate=0.8,
    step_offset=0,
    min_dim_size_to_factor: int = 128,
    epsilon=1e-30,
) -> GradientTransformation:
    """Divide by a factored estimate of the gradient RMS (Shazeer & Stern, 2018).

    With :math:`\\hat\\beta_t = 1 - (t - t_0 + 1)^{-c}` (:math:`t = 0, 1, \\dots`) and
    :math:`G = g^2 + \\epsilon`, a leaf whose two largest axes :math:`a` (second largest)
    and :math:`b` (largest) both have size :math:`\\ge` ``min_dim_size_to_factor`` keeps

    .. math::
       R_t = \\hat\\beta_t R_{t-1} + (1 - \\hat\\beta_t)\\,\\operatorname{mean}_b G, \\quad
       C_t = \\hat\\beta_t C_{t-1} + (1 - \\hat\\beta_t)\\,\\operatorname{mean}_a G, \\quad
       u_t = \\frac{g_t}{\\sqrt{R_t C_t / \\operatorname{mean}_a R_t}}

    (:math:`R` has the shape of the leaf without axis :math:`b`, :math:`C` without
    :math:`a`: memory :math:`n + m` instead of :math:`nm` for an :math:`n \\times m`
    matrix). Other leaves keep the full :math:`v_t = \\hat\\beta_t v_{t-1} +
    (1 - \\hat\\beta_t) G` and get :math:`u_t = g_t / \\sqrt{v_t}`.

    Args:
      factored: factor the second moment of large leaves (else never).
      decay_rate: :math:`c \\ge 0`, the exponent of the decay schedule.
      step_offset: :math:`t_0`, the step where fine-tuning starts.
      min_dim_size_to_factor: the smallest axis size worth factoring (structural).
      epsilon: :math:`\\epsilon > 0`, added to :math:`g^2`.

    Reference:
      Shazeer & Stern, `Adafactor: Adaptive Learning Rates with Sublinear Memory Cost
      <https://arxiv.org/abs/1804.04235>`_, 2018.
    """
    checks.non_negative("decay_rate", decay_rate)
    checks.finite("step_offset", step_offset)
    checks.positive("epsilon", epsilon)

    def dims(p) -> tuple[int, int] | None:
        return factored_dims(jnp.shape(p), factored, min_dim_size_to_factor)

    def init_leaf(p):
        axes = dims(p)
        if axes is None:
            return _placeholder(p), _placeholder(p), sharding.full_like(p, 0)
        a, b = axes
        dtype = jnp.result_type(p)
        row = jnp.zeros(np.delete(jnp.shape(p), b), dtype)
        col = jnp.zeros(np.delete(jnp.shape(p), a), dtype)
        return row, col, _placeholder(p)

    def init(params):
        tree.check_float_params(params)
        leaves, treedef = jax.tree.flatten(params)
        rows, cols, full = zip(*map(init_leaf, leaves), strict=True) if leaves else ((), (), ())
        return FactoredState(
            numerics.zero_count(),
            treedef.unflatten(rows), treedef.unflatten(cols), treedef.unflatten(full),
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        t = jnp.asarray(state.count - step_offset + 1, jnp.float32)
        beta = 1.0 - t ** (-decay_rate)

        def rule(g, row, col, v):
            squared = numerics.abs_sq(g) + epsilon
            axes = dims(g)
            if axes is None:
                v = (beta * v + (1 - beta) * squared).astype(v.dtype)
                return g * v ** -0.5, row, col, v
            a, b = axes
            row = (beta * row + (1 - beta) * jnp.mean(squared, axis=b)).astype(row.dtype)
            col = (beta * col + (1 - beta) * jnp.mean(squared, axis=a)).astype(col.dtype)
            # Axis a of the full leaf is axis a (or a - 1) of row, which lacks axis b.
            row_mean = jnp.mean(row, axis=a - 1 if a > b else a, keepdims=True)
            row_factor = jnp.expand_dims((row / row_mean) ** -0.5, b)
            col_factor = jnp.expand_dims(col ** -0.5, a)
            return g * row_factor * col_factor, row, col, v

        updates, v_row, v_col, v = tree.map_rule(
            rule, updates, state.v_row, state.v_col, state.v, names=("v_row", "v_col", "v")
        )
        return updates, FactoredState(numerics.safe_increment(state.count), v_row, v_col, v)

    return GradientTransformation(init, update)


def _rms(x: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.mean(abs_sq(x)))


def safe_rms(x: jax.Array, min_rms) -> jax.Array:
    """:math:`\\max(\\operatorname{RMS}(x), r_{min})`, with a finite gradient where clipped."""
    clipped = _rms(x) <= min_rms
    return jnp.where(clipped, min_rms, _rms(jnp.where(clipped, jnp.ones_like(x), x)))


def clip_by_block_rms(threshold) -> GradientTransformation:
    """Shrink each leaf (block) whose RMS exceeds a threshold.

    .. math:: u_\\ell \\leftarrow \\frac{g_\\ell}{\\max(1, \\operatorname{RMS}(g_\\ell) / d)}

    Args:
      threshold: :math:`d > 0`, the largest RMS a block keeps (Adafactor: 1).
    """
    checks.positive("threshold", threshold)

    def clip_leaf(g):
        return (g / jnp.maximum(1.0, _rms(g) / threshold)).astype(g.dtype)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        return jax.tree.map(clip_leaf, updates), state

    return GradientTransformation(init_empty_state, update)


def scale_by_param_block_rms(min_scale=1e-3) -> GradientTransformation:
    """Scale each leaf's update by its parameter's RMS: relative step sizes (Adafactor).

    .. math:: u_\\ell \\leftarrow \\max(\\operatorname{RMS}(p_\\ell), s_{min})\\; g_\\ell

    Args:
      min_scale: :math:`s_{min} \\ge 0`, so that zero-initialised leaves still move.
    """
    checks.non_negative("min_scale", min_scale)

    def update(updates, state, params=None, **extra_args):
        del extra_args
        checks.params_given("scale_by_param_block_rms", params)
        tree.check_same_structure(updates, params, "updates", "params")
        def scale(g, p):
            return (g * safe_rms(p, min_scale)).astype(jnp.result_type(g, p))

        return jax.tree.map(scale, updates, params), state

    return GradientTransformation(init_empty_state, update)
