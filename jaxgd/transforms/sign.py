"""Steps from the sign of the gradient: signSGD (every coordinate moves by the same amount)
and Rprop (a per-coordinate step size that grows while the gradient keeps its sign)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import checks, tree
from jaxgd.core.base import GradientTransformation, Updates, flatten_invariant, init_empty_state


def scale_by_sign() -> GradientTransformation:
    """Keep only the sign of each coordinate: :math:`u \\leftarrow \\operatorname{sign}(g)`
    (0 where :math:`g = 0`).

    Reference:
      Bernstein et al., `signSGD: Compressed Optimisation for Non-Convex Problems
      <https://arxiv.org/abs/1802.04434>`_, 2018.
    """

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        return jax.tree.map(jnp.sign, updates), state

    return flatten_invariant(GradientTransformation(init_empty_state, update))


class ScaleByRpropState(NamedTuple):
    """The step sizes :math:`\\Delta` and the previous (unsigned-flipped) update."""

    step_sizes: Updates
    prev_updates: Updates


def scale_by_rprop(
    learning_rate, eta_minus=0.5, eta_plus=1.2, min_step_size=1e-6, max_step_size=50.0
) -> GradientTransformation:
    """Rprop scaling (Riedmiller & Braun, 1993), the iRprop⁻ variant (Igel & Hüsken, 2003).

    With :math:`s = g_t\\,u_{t-1}` (the previous update carries the previous sign):

    .. math::
       \\Delta_t = \\begin{cases}
         \\operatorname{clip}(\\eta^+ \\Delta_{t-1}, \\Delta_{min}, \\Delta_{max}) & s > 0 \\\\
         \\operatorname{clip}(\\eta^- \\Delta_{t-1}, \\Delta_{min}, \\Delta_{max}) & s < 0 \\\\
         \\Delta_{t-1} & s = 0 \\end{cases}, \\qquad
       u_t = \\begin{cases} 0 & s < 0 \\\\ \\Delta_t \\operatorname{sign}(g_t)
         & \\text{otherwise} \\end{cases}

    The update is a *positive* multiple of the gradient's sign: chain a ``scale(-1)`` (as
    :func:`jaxgd.rprop` does) to descend. Differs from optax 0.2.8 on purpose: optax
    returns :math:`u_{t-1}` (0 at the first step) instead of :math:`u_t`, a one-step lag.

    Args:
      learning_rate: :math:`\\Delta_0 > 0`, the initial step size (used by ``init`` only):
        a number, not a schedule (``TypeError``), since the step sizes adapt themselves.
      eta_minus: :math:`\\eta^- \\in (0, 1)`, the shrink factor after a sign change.
      eta_plus: :math:`\\eta^+ > 1`, the growth factor while the sign is kept.
      min_step_size: :math:`\\Delta_{min} \\ge 0`.
      max_step_size: :math:`\\Delta_{max} \\ge \\Delta_{min}`.

    Reference:
      Igel & Hüsken, `Empirical evaluation of the improved Rprop learning algorithms
      <https://doi.org/10.1016/S0925-2312(01)00700-7>`_, 2003.
    """
    if callable(learning_rate):
        raise TypeError(
            "rprop's learning_rate is the initial step size of every coordinate, read once "
            "by init, so it cannot be a schedule; pass a number such as 0.01 (the step sizes "
            "then adapt on their own between min_step_size and max_step_size)."
        )
    checks.positive("learning_rate", learning_rate)
    checks.positive("eta_minus", eta_minus)
    checks.positive("eta_plus", eta_plus)
    checks.non_negative("min_step_size", min_step_size)
    checks.non_negative("max_step_size", max_step_size)

    def rule(g, step_size, prev):
        s = g * prev
        grown = jnp.clip(
            step_size * jnp.where(s > 0, eta_plus, eta_minus), min_step_size, max_step_size
        )
        step_size = jnp.where(s == 0, step_size, grown)
        # After a sign change iRprop- skips the step and forgets the sign, so the next
        # step counts as s = 0 and neither grows nor shrinks the step size.
        current = jnp.where(s < 0, 0.0, step_size * jnp.sign(g))
        return current, step_size, current

    def init(params):
        return ScaleByRpropState(tree.full_like(params, learning_rate), tree.zeros_like(params))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        updates, step_sizes, prev = tree.map_rule(
            rule, updates, state.step_sizes, state.prev_updates,
            names=("step_sizes", "prev_updates"),
        )
        return updates, ScaleByRpropState(step_sizes, prev)

    return flatten_invariant(GradientTransformation(init, update))
