"""Mechanic: learn the scale of any optimizer's steps by coin betting."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import checks, numerics, tree
from jaxgd.core.base import (
    GradientTransformation,
    OptState,
    Updates,
    flatten_invariant,
    is_flatten_invariant,
    update_with_extra_args,
)


class MechanicState(NamedTuple):
    """Mechanic's state (optax's field names).

    Attributes:
      base_optimizer_state: the wrapped optimizer's state.
      count: the number of updates so far.
      r: the wealth of each of the ``num_betas`` bettors (before clipping at 0).
      m: their running maxima of :math:`|h|`.
      v: their running sums of :math:`h^2`.
      s: their scales; the step is scaled by :math:`\\sum_j s_j`.
      x0: the params at the first update, the point the scaled steps start from.
    """

    base_optimizer_state: OptState
    count: jax.Array
    r: jax.Array
    m: jax.Array
    v: jax.Array
    s: jax.Array
    x0: Updates


def mechanize(
    base_optimizer: GradientTransformation,
    weight_decay=1e-2,
    eps=1e-8,
    s_init=1e-6,
    num_betas: int = 6,
) -> GradientTransformation:
    """Mechanic (Cutkosky, Defazio & Mehta, 2023): scale the steps of ``base_optimizer``
    by a factor learned online, so that its learning rate can stay at 1.

    With :math:`u_t` the base optimizer's updates, :math:`\\Delta_t = -\\sum_{k \\le t} u_k`
    (recomputed at each step as :math:`\\Delta_{t-1} = (x_0 - x_t) / (S_{t-1} + \\epsilon)`),
    :math:`S = \\sum_j s_j` and, for each :math:`\\beta_j = 1 - 10^{-j}`,
    :math:`j = 1 \\dots n`:

    .. math::
       \\tilde g_t = g_t + \\lambda\\,S_{t-1} \\frac{\\|g_t\\|}{\\|x_t\\| + \\epsilon}\\,x_t,
       \\quad h_t = \\langle \\tilde g_t, \\Delta_{t-1} \\rangle, \\\\
       m_{j,t} = \\max(\\beta_j m_{j,t-1}, |h_t| + \\epsilon), \\quad
       v_{j,t} = \\beta_j^2 v_{j,t-1} + h_t^2, \\quad
       r_{j,t} = \\beta_j r_{j,t-1} + \\mathrm{clip}(h_t, \\pm m_{j,t-1})\\, s_{j,t-1}, \\\\
       s_{j,t} = \\frac{s_0 m_{j,t} / n + \\max(r_{j,t}, 0)}{\\sqrt{v_{j,t}} + \\epsilon},
       \\quad x_{t+1} = x_0 - S_t (\\Delta_{t-1} - u_t)

    and the update is :math:`x_{t+1} - x_t`. :math:`x_0` is taken at the first update,
    not at ``init``, so that params replaced in between (a pre-trained model) count. The
    weight decay here is Mechanic's own, separate from any in ``base_optimizer``; its
    numbers are fixed when built (build inside ``jax.vmap`` to sweep them), while those
    of ``base_optimizer`` stay in its state as usual.

    Args:
      base_optimizer: the optimizer whose steps are scaled (its learning rate is best
        left at 1, or a schedule peaking at 1). Normalised-step optimizers such as LARS
        or LAMB are not expected to work.
      weight_decay: :math:`\\lambda \\ge 0`.
      eps: :math:`\\epsilon > 0`.
      s_init: :math:`s_0 > 0`, the initial total scale.
      num_betas: :math:`n \\ge 1`, the number of bettors.

    Example:
      >>> import jax.numpy as jnp, jaxgd
      >>> opt = jaxgd.mechanize(jaxgd.adam(1.0))
      >>> params = {"w": jnp.ones(3)}
      >>> state = opt.init(params)
      >>> updates, state = opt.update({"w": jnp.array([0.5, -2.0, 1.0])}, state, params)

    Reference:
      Cutkosky, Defazio & Mehta, `Mechanic: A Learning Rate Tuner
      <https://arxiv.org/abs/2306.00144>`_, 2023.
    """
    if not (callable(getattr(base_optimizer, "init", None))
            and callable(getattr(base_optimizer, "update", None))):
        raise TypeError(f"base_optimizer must be a gradient transformation (init, update), "
                        f"got {type(base_optimizer).__name__}.")
    checks.non_negative("weight_decay", weight_decay)
    checks.positive("eps", eps)
    checks.positive("s_init", s_init)
    checks.count("num_betas", num_betas)
    base_update = update_with_extra_args(base_optimizer)
    # In Python floats, as optax: 1 - 0.1**j rounded once to the state's dtype.
    betas_list = [1.0 - 0.1**j for j in range(1, num_betas + 1)]

    def init(params):
        dtype = tree.scalar_state_dtype(params)
        zeros = jnp.zeros([num_betas], dtype)
        return MechanicState(base_optimizer.init(params), numerics.zero_count(), zeros, zeros,
                             zeros, jnp.full([num_betas], s_init, dtype),
                             jax.tree.map(jnp.copy, params))

    def update(updates, state, params=None, **extra_args):
        checks.params_given("mechanize", params)
        tree.check_same_structure(updates, params, "updates", "params")
        base_steps, base_state = base_update(updates, state.base_optimizer_state, params,
                                             **extra_args)
        first = state.count == 0
        x0 = jax.tree.map(lambda p, x: jnp.where(first, p, x), params, state.x0)
        dtype = state.s.dtype
        total = jnp.sum(state.s)
        decay = weight_decay * total * tree.global_norm(updates) / (
            tree.global_norm(params) + eps)
        decayed = jax.tree.map(lambda g, p: g + decay * p, updates, params)
        travelled = jax.tree.map(lambda x, x_0: (x_0 - x) / (total + eps), params, x0)
        h = tree.real_vdot(decayed, travelled).astype(dtype)
        betas = jnp.asarray(betas_list, dtype)
        m = jnp.maximum(betas * state.m, jnp.abs(h) + eps)
        v = betas**2 * state.v + h**2
        r = betas * state.r + jnp.clip(h, -state.m, state.m) * state.s
        wealth = (s_init / num_betas) * m + jnp.maximum(r, 0.0)
        s = (wealth / (jnp.sqrt(v) + eps)).astype(dtype)
        new_total = jnp.sum(s)

        def step(g, x, x_0, d, u):
            return ((x_0 - new_total * (d - u)) - x).astype(jnp.result_type(g, x))

        new_updates = jax.tree.map(step, updates, params, x0, travelled, base_steps)
        return new_updates, MechanicState(base_state, numerics.safe_increment(state.count),
                                          r.astype(dtype), m.astype(dtype), v.astype(dtype), s,
                                          x0)

    mechanized = GradientTransformation(init, update)
    return flatten_invariant(mechanized) if is_flatten_invariant(base_optimizer) else mechanized
