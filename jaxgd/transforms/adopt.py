"""ADOPT: Adam with the second moment taken one step late, so that it never holds the
gradient it divides."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxgd.core import checks, numerics, tree
from jaxgd.core.base import GradientTransformation, flatten_invariant
from jaxgd.transforms.adam import ScaleByAdamState


def quarter_power(count: jax.Array) -> jax.Array:
    """The default clipping bound of ADOPT, :math:`t^{1/4}` (0 at the first step)."""
    return count**0.25


def scale_by_adopt(
    b1=0.9,
    b2=0.9999,
    eps=1e-6,
    mu_dtype=None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[jax.Array], jax.Array] = quarter_power,
) -> GradientTransformation:
    """ADOPT scaling (Taniguchi et al., 2024).

    With :math:`t = 0, 1, \\dots` counting updates and :math:`v_{-1} = m_{-1} = 0`:

    .. math::
       \\tilde g_t = \\operatorname{clip}\\left(\\frac{g_t}{\\max(\\sqrt{v_{t-1}},
       \\epsilon)}, -c(t), c(t)\\right), \\quad
       m_t = \\beta_1 m_{t-1} + (1 - \\beta_1)\\,\\tilde g_t, \\quad
       v_t = \\beta_2 v_{t-1} + (1 - \\beta_2)\\,g_t^2, \\quad u_t = m_t

    except at :math:`t = 0`, which only sets :math:`v_0 = g_0^2` (:math:`m_0 = 0`, so
    the first update is zero). Normalising by :math:`v_{t-1}`, which does not contain
    :math:`g_t`, is what lets ADOPT converge for any :math:`\\beta_2`. With ``nesterov``
    the update is :math:`\\beta_1 m_t + (1 - \\beta_1)\\tilde g_t`.

    Args:
      b1: :math:`\\beta_1 \\in [0, 1)`.
      b2: :math:`\\beta_2 \\in [0, 1)`.
      eps: :math:`\\epsilon > 0`, the floor of :math:`\\sqrt{v}` (the first division is
        by it alone).
      mu_dtype: the dtype :math:`m` is stored in (e.g. ``jnp.bfloat16``), or ``None`` for
        each parameter's. As in optax, the update is computed before :math:`m` is
        rounded to it; unlike optax, :math:`m` is read in the wider of its and the
        gradient's dtypes (optax multiplies a bfloat16 :math:`m` by :math:`\\beta_1`
        rounded to bfloat16: 0.8984 for 0.9).
      nesterov: use Nesterov momentum.
      use_clipping: clip :math:`g_t / \\max(\\sqrt{v_{t-1}}, \\epsilon)` to
        :math:`[-c(t), c(t)]`, which tames the first steps (the paper's recommended form).
      clip_value_fn: :math:`c(t)`, a function of the update count; default
        :math:`t^{1/4}`. It is the same for every coordinate, so the rule stays
        elementwise.

    Reference:
      Taniguchi et al., `ADOPT: Modified Adam Can Converge with Any β2 with the Optimal
      Rate <https://arxiv.org/abs/2411.02853>`_, NeurIPS 2024.
    """
    checks.decay_rate("b1", b1)
    checks.decay_rate("b2", b2)
    checks.positive("eps", eps)
    mu_dtype = checks.state_dtype("mu_dtype", mu_dtype)
    if use_clipping and not callable(clip_value_fn):
        raise TypeError(f"clip_value_fn must be a function of the step count, got "
                        f"{clip_value_fn!r}.")

    def init(params):
        return ScaleByAdamState(numerics.zero_count(), tree.zeros_like(params, mu_dtype),
                                tree.zeros_like(params))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        started = state.count > 0
        # The first step only fills v: m keeps its zeros (beta1 = 1), v takes g^2 whole.
        beta1 = jnp.where(started, b1, 1)
        beta2 = jnp.where(started, b2, 0)
        bound = clip_value_fn(state.count) if use_clipping else None

        def rule(g, m, v):
            normalised = g / jnp.maximum(jnp.sqrt(v), eps)
            if bound is not None:
                normalised = jnp.clip(normalised, -bound, bound)
            m = (1 - beta1) * normalised + beta1 * numerics.widened(m, g)
            step = (1 - beta1) * normalised + beta1 * m if nesterov else m
            v = (1 - beta2) * numerics.abs_sq(g) + beta2 * v
            return step, m, v

        updates, mu, nu = tree.map_rule(rule, updates, state.mu, state.nu, names=("mu", "nu"))
        return updates, ScaleByAdamState(numerics.safe_increment(state.count), mu, nu)

    return flatten_invariant(GradientTransformation(init, update))
