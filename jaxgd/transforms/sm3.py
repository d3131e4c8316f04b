"""SM3: AdaGrad with one accumulator per row, column, ... instead of one per weight."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import checks, sharding, tree
from jaxgd.core.base import GradientTransformation, Updates
from jaxgd.core.numerics import abs_sq


class ScaleBySM3State(NamedTuple):
    """Per leaf, a tuple of accumulators :math:`\\mu` (one vector per axis; one array for
    leaves of rank < 2), and the momentum :math:`\\nu` of the scaled updates."""

    mu: Updates
    nu: Updates


def _axis_accumulators(p: jax.Array) -> tuple[jax.Array, ...]:
    if p.ndim < 2:
        return (sharding.full_like(p, 0),)
    return tuple(jnp.zeros((n,), p.dtype) for n in p.shape)


def _broadcast_along(v: jax.Array, axis: int, ndim: int) -> jax.Array:
    return jnp.expand_dims(v, [i for i in range(ndim) if i != axis])


def scale_by_sm3(b1=0.9, b2=1.0, eps=1e-8) -> GradientTransformation:
    """SM3-II scaling (Anil et al., 2019) with the cover "one set per row, column, ...".

    For a leaf of rank :math:`d \\ge 2` keep one accumulator vector :math:`\\mu^{(r)}` per
    axis :math:`r`; for rank 0 or 1 the accumulator is the leaf's full AdaGrad sum. Then

    .. math::
       a_t(i) = c\\,g_t(i)^2 + \\beta_2 \\min_r \\mu^{(r)}_{t-1}(i_r), \\qquad
       \\mu^{(r)}_t(j) = \\max_{i:\\,i_r = j} a_t(i), \\\\
       \\nu_t = \\beta_1 \\nu_{t-1} + (1 - \\beta_1)\\,\\frac{g_t}{\\sqrt{a_t + \\epsilon}},
       \\qquad u_t = \\nu_t

    with :math:`c = 1` when :math:`\\beta_2 = 1` (the paper's sum) and :math:`1 - \\beta_2`
    otherwise, and :math:`u = 0` where :math:`a_t = 0`. Memory is
    :math:`\\sum_r n_r` per leaf instead of :math:`\\prod_r n_r`.

    Differs from optax 0.2.8 on purpose: optax raises ``IndexError`` on scalar (rank-0)
    leaves; here a scalar keeps a scalar accumulator (plain AdaGrad).

    Args:
      b1: :math:`\\beta_1 \\in [0, 1)`, the momentum of the scaled updates.
      b2: :math:`\\beta_2 \\in [0, 1]`, the decay of the accumulators (1: no decay).
      eps: :math:`\\epsilon > 0`, inside the square root.

    Reference:
      Anil, Gupta, Koren & Singer, `Memory-Efficient Adaptive Optimization
      <https://arxiv.org/abs/1901.11150>`_, 2019.
    """
    checks.decay_rate("b1", b1)
    checks.non_negative("b2", b2)
    checks.positive("eps", eps)

    def init(params):
        tree.check_float_params(params)
        for leaf in jax.tree.leaves(params):
            if jnp.iscomplexobj(leaf):
                raise TypeError("scale_by_sm3 does not support complex parameters.")
        return ScaleBySM3State(
            jax.tree.map(_axis_accumulators, params), tree.zeros_like(params)
        )

    def leaf_rule(g, mu, nu):
        scale = jnp.where(b2 == 1, 1.0, 1 - b2)
        if g.ndim < 2:
            previous = mu[0]
        else:
            previous = functools.reduce(
                jnp.minimum, [_broadcast_along(m, r, g.ndim) for r, m in enumerate(mu)]
            )
        accumulator = scale * abs_sq(g) + b2 * previous
        scaled = jnp.where(accumulator > 0, jax.lax.rsqrt(accumulator + eps), 0.0) * g
        nu = ((1 - b1) * scaled + b1 * nu).astype(nu.dtype)
        if g.ndim < 2:
            new_mu = (accumulator,)
        else:
            new_mu = tuple(
                jnp.max(accumulator, axis=[i for i in range(g.ndim) if i != r])
                for r in range(g.ndim)
            )
        return nu, tuple(m.astype(old.dtype) for m, old in zip(new_mu, mu, strict=True))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        tree.check_same_structure(updates, state.nu, "updates", "nu")
        leaves, treedef = jax.tree.flatten(updates)
        results = [
            leaf_rule(g, mu, nu)
            for g, mu, nu in zip(
                leaves, treedef.flatten_up_to(state.mu), treedef.flatten_up_to(state.nu),
                strict=True,
            )
        ]
        nu = treedef.unflatten([r[0] for r in results])
        mu = treedef.unflatten([r[1] for r in results])
        return nu, ScaleBySM3State(mu, nu)

    return GradientTransformation(init, update)
