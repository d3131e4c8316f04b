"""Averages of the parameters along a run, to evaluate at: an exponential moving average
(EMA) or the uniform average of stochastic weight averaging (SWA, Izmailov et al., 2018).

Unlike :func:`jaxgd.ema`, which averages the *updates* inside an optimizer, these average
the params the training loop reaches and leave training itself alone: keep a
:class:`ParamsAverageState` beside the params and the optimizer state, update it after
each step, and evaluate at ``state.average``. :func:`jaxgd.fit` does so with
``ema_decay``.

Example:
  >>> import jax.numpy as jnp, jaxgd
  >>> params = jnp.array([0.0])
  >>> avg = jaxgd.params_average_init(params)
  >>> for p in (1.0, 2.0, 3.0):
  ...     avg = jaxgd.params_swa_update(avg, jnp.array([p]))
  >>> avg.average
  Array([2.], dtype=float32)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core import checks, numerics, tree
from jaxgd.core.base import Params


class ParamsAverageState(NamedTuple):
    """A running average of params.

    Attributes:
      count: :math:`t`, the params averaged so far (int32).
      average: :math:`a_t`, the average (the initial params while :math:`t = 0`).
    """

    count: jax.Array
    average: Params


def params_average_init(params: Params, dtype=None) -> ParamsAverageState:
    """The average before any step: :math:`a_0 = p_0`, a copy of ``params``, placed like
    them (:math:`a_0` is replaced, or weighted away, by the updates that follow).

    Args:
      params: the initial params.
      dtype: the dtype :math:`a` is kept in, e.g. ``jnp.float32`` for bfloat16 params
        (whose steps a decay near 1 would otherwise round away); default each
        parameter's.
    """
    tree.check_float_params(params)
    dtype = checks.state_dtype("dtype", dtype)
    average = jax.tree.map(
        lambda p: jnp.array(p, dtype=dtype or tree.dtype_of(p), copy=True), params)
    return ParamsAverageState(numerics.zero_count(), average)


def _toward(state: ParamsAverageState, params: Params, weight) -> ParamsAverageState:
    """:math:`a_t = (1 - w_t)\\,a_{t-1} + w_t\\,p_t`, each leaf kept in its dtype."""
    tree.check_same_structure(params, state.average, "params", "average")

    def one(a, p):
        wide = numerics.widened(a, p)
        return ((1 - weight) * wide + weight * p).astype(a.dtype)

    return ParamsAverageState(numerics.safe_increment(state.count),
                              jax.tree.map(one, state.average, params))


def params_ema_update(state: ParamsAverageState, params: Params, decay,
                      debias: bool = True) -> ParamsAverageState:
    """Add ``params`` :math:`p_t` to an exponential moving average.

    .. math::
       a_t = (1 - w_t)\\,a_{t-1} + w_t\\,p_t, \\qquad
       w_t = \\frac{1 - \\beta}{1 - \\beta^t} \\;\\text{(debias)}
       \\quad\\text{or}\\quad 1 - \\beta,

    With ``debias``, :math:`a_t = \\sum_{k=1}^t (1 - \\beta)\\beta^{t-k} p_k /
    (1 - \\beta^t)`, the bias-corrected EMA of the params given so far (:math:`w_1 = 1`:
    the start drops out). Without, :math:`a_t = \\beta^t p_0 + \\sum_{k=1}^t (1 - \\beta)
    \\beta^{t-k} p_k`, the average starting from the initial params (as the EMA of
    weights is often kept).

    Args:
      state: the average so far (:func:`params_average_init`).
      params: the params after this step.
      decay: :math:`\\beta \\in [0, 1)` (possibly traced).
      debias: weight as above; the default.
    """
    checks.decay_rate("decay", decay)
    # one dtype for both 1 - b and 1 - b^t, so that w_1 is exactly 1
    decay = jnp.asarray(decay, jnp.result_type(decay, float))
    count = numerics.safe_increment(state.count)
    weight = (1 - decay) / numerics.bias_correction(decay, count) if debias else 1 - decay
    return _toward(state, params, weight)


def params_swa_update(state: ParamsAverageState, params: Params) -> ParamsAverageState:
    """Add ``params`` :math:`p_t` to a uniform average (SWA):
    :math:`a_t = a_{t-1} + (p_t - a_{t-1}) / t = \\frac1t \\sum_{k=1}^t p_k`.

    The initial params do not count; start calling it where the average should start
    (e.g. after a burn-in, or once per epoch at a cyclic schedule's low point).
    """
    count = numerics.safe_increment(state.count)
    return _toward(state, params, 1 / count.astype(jnp.result_type(float)))
