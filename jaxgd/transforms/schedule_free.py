"""Schedule-free learning (Defazio et al., 2024): interpolation and averaging in place of
momentum and of a decaying learning-rate schedule, around any base optimizer."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core import checks, numerics, tree
from jaxgd.core.base import (
    GradientTransformation,
    OptState,
    Params,
    flatten_invariant,
    is_flatten_invariant,
    update_with_extra_args,
)
from jaxgd.core.interop import MaskedNode
from jaxgd.transforms.scaling import ScalarOrSchedule

try:  # a state made by optax.contrib.schedule_free is found and evaluated too
    from optax.contrib import ScheduleFreeState as _OptaxScheduleFreeState
except ImportError:
    _OptaxScheduleFreeState = None


class ScheduleFreeState(NamedTuple):
    """State of :func:`schedule_free` (optax's fields, in optax's order).

    Attributes:
      b1: :math:`\\beta` that built the current params :math:`y` from :math:`x` and
        :math:`z` (the value of the last update; the one at ``init`` before any).
      weight_sum: :math:`\\sum_{i \\le t} w_i`, the total averaging weight so far.
      step_count: :math:`t + 1`, the step the next update makes (1 after ``init``).
      max_lr: :math:`\\max_{i \\le t} \\gamma_i`, the largest learning rate so far.
      base_optimizer_state: the state of the base optimizer.
      z: the base optimizer's own iterate :math:`z_t` (dtype ``state_dtype``).
    """

    b1: jax.Array
    weight_sum: jax.Array
    step_count: jax.Array
    max_lr: jax.Array
    base_optimizer_state: OptState
    z: Params


def _lowest_float_dtype(params) -> Any:
    """The least precise floating dtype among the leaves (optax's choice for the scalars)."""
    dtypes = {np.dtype(tree.dtype_of(x)) for x in jax.tree.leaves(params)}
    return min(dtypes, key=lambda d: (jnp.finfo(d).bits, d.name)) if dtypes else np.float32


def schedule_free(
    base_optimizer: GradientTransformation,
    learning_rate: ScalarOrSchedule,
    b1=0.9,
    weight_lr_power=2.0,
    state_dtype=None,
) -> GradientTransformation:
    """Schedule-free wrapper (Defazio et al., 2024, "The Road Less Scheduled").

    Three sequences: :math:`z`, the base optimizer's iterate; :math:`x`, a weighted
    average of the :math:`z`; and :math:`y`, between them, where the gradient is taken
    and which are the params the training loop holds. With the base step
    :math:`u_t = \\mathrm{base}(\\nabla f(y_t))` (for SGD, :math:`-\\gamma_t \\nabla f(y_t)`):

    .. math::
       z_{t+1} = z_t + u_t, \\qquad
       x_{t+1} = (1 - c_{t+1})\\,x_t + c_{t+1}\\,z_{t+1}, \\qquad
       y_{t+1} = \\beta\\,x_{t+1} + (1 - \\beta)\\,z_{t+1},

    with :math:`x_0 = z_0 = y_0` the initial params and the averaging weights

    .. math::
       c_{t+1} = \\frac{w_{t+1}}{\\sum_{i=1}^{t+1} w_i}, \\qquad
       w_i = \\Big(\\max_{j \\le i} \\gamma_j\\Big)^{r}

    (:math:`r` = ``weight_lr_power``; :math:`c = 0` while the total weight is 0, as
    during a warmup from 0). With a constant learning rate :math:`c_t = 1/t`:
    :math:`x` is the plain average of the :math:`z`. Only :math:`z` is stored;
    :math:`x_t = (y_t - (1 - \\beta) z_t) / \\beta` is recomputed from the params, so the
    memory is the base optimizer's plus one params-sized buffer. The update returned is
    :math:`y_{t+1} - y_t`.

    Evaluate (validation and test loss, the params to keep) at :math:`x`, with
    :func:`schedule_free_eval_params`; :func:`jaxgd.fit` and :func:`jaxgd.sweep` do so
    themselves. Switch the base optimizer's own momentum off (e.g. Adam with ``b1=0``):
    :math:`\\beta` plays its part. As in optax, ``learning_rate`` must be the base
    optimizer's own (it only sets the weights :math:`w`), and a schedule is called with
    the 1-based step count; use a warmup and no decay.

    Batch normalization: batch statistics gathered during training belong to :math:`y`,
    not to :math:`x`. Before evaluating a model with BatchNorm at :math:`x`, recompute
    its running statistics there: a few forward passes over training batches in train
    mode at the evaluation params, then evaluate (the other layers need nothing).

    Args:
      base_optimizer: the optimizer whose updates move :math:`z` (jaxgd or optax).
      learning_rate: the base optimizer's learning rate :math:`\\gamma` (or schedule),
        which weights the average.
      b1: :math:`\\beta \\in (0, 1)`, the interpolation between :math:`x` and :math:`z`.
      weight_lr_power: :math:`r`, the power of the learning rate in the weights; a high
        one all but ignores the iterates of an early warmup.
      state_dtype: the dtype :math:`z` is stored in; default each parameter's.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgd
      >>> opt = jaxgd.schedule_free(jaxgd.sgd(0.1), learning_rate=0.1)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = opt.init(params)
      >>> updates, state = opt.update(2 * params, state, params)
      >>> params = jaxgd.apply_updates(params, updates)
      >>> x = jaxgd.schedule_free_eval_params(state, params)
      >>> bool(jnp.allclose(x, state.z))  # after one step (c_1 = 1), x is z
      True
    """
    checks.learning_rate(learning_rate)
    checks.decay_rate("b1", b1)
    checks.positive("b1", b1)
    checks.finite("weight_lr_power", weight_lr_power)
    state_dtype = checks.state_dtype("state_dtype", state_dtype)
    base_update = update_with_extra_args(base_optimizer)

    def init(params):
        tree.check_float_params(params)
        dtype = _lowest_float_dtype(params)
        # A copy, not the params' own buffer: a step may donate both state and params.
        z = jax.tree.map(
            lambda p: jnp.array(p, dtype=state_dtype or tree.dtype_of(p), copy=True), params)
        return ScheduleFreeState(
            b1=jnp.asarray(b1, dtype),
            weight_sum=jnp.zeros([], dtype),
            step_count=jnp.ones([], jnp.int32),
            max_lr=jnp.zeros([], dtype),
            base_optimizer_state=base_optimizer.init(params),
            z=z,
        )

    def update(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError("schedule_free needs the params in update(updates, state, "
                             "params): it recovers the average x from them.")
        lr = learning_rate(state.step_count) if callable(learning_rate) else learning_rate
        max_lr = jnp.maximum(state.max_lr, jnp.asarray(lr, state.max_lr.dtype))
        weight = max_lr ** weight_lr_power
        total = state.weight_sum + weight
        c = jnp.where(total == 0, 0, weight / total)  # NaN stays NaN
        base_updates, base_state = base_update(updates, state.base_optimizer_state, params,
                                               **extra_args)
        # x from the b1 that built these params: exact even if b1 was changed since.
        b_then = state.b1

        def rule(u, y, z):
            z_new = (z + u).astype(z.dtype)
            x = (y - (1 - b_then) * z) / b_then
            x = (1 - c) * x + c * z_new
            return b1 * x + (1 - b1) * z_new - y, y, z_new

        steps, _, z = tree.map_rule(rule, base_updates, params, state.z,
                                    names=("params", "z"))
        return steps, ScheduleFreeState(
            b1=jnp.asarray(b1, state.b1.dtype),
            weight_sum=total.astype(state.weight_sum.dtype),
            step_count=numerics.safe_increment(state.step_count),
            max_lr=max_lr,
            base_optimizer_state=base_state,
            z=z,
        )

    made = GradientTransformation(init, update)
    return flatten_invariant(made) if is_flatten_invariant(base_optimizer) else made


def _is_schedule_free_state(x) -> bool:
    return isinstance(x, ScheduleFreeState) or (
        _OptaxScheduleFreeState is not None and isinstance(x, _OptaxScheduleFreeState))


def schedule_free_states(state: OptState) -> list:
    """The outermost schedule-free states (jaxgd's or optax's) in ``state``, however deep
    (under ``chain``, ``inject_hyperparams``, ``masked``, ``partition``, ...)."""
    return [x for x in jax.tree.leaves(state, is_leaf=_is_schedule_free_state)
            if _is_schedule_free_state(x)]


def _at_x(y, z, b1):
    if isinstance(z, MaskedNode):  # a leaf this schedule-free optimizer does not train
        return y
    return jnp.asarray((y - (1 - b1) * z) / b1).astype(tree.dtype_of(y))


def evaluation_params(state: OptState, params: Params) -> Params:
    """:func:`schedule_free_eval_params` where ``state`` holds schedule-free states (each
    one maps the leaves it trains), ``params`` themselves where it holds none."""
    for found in schedule_free_states(state):
        try:
            params = jax.tree.map(lambda y, z, b=found.b1: _at_x(y, z, b), params, found.z)
        except ValueError as error:
            raise ValueError(
                "the params do not match the schedule-free state's z: its structure is "
                f"{tree.describe_structure(jax.tree.structure(found.z))}, the params' "
                f"{tree.describe_structure(jax.tree.structure(params))}. Pass the params "
                "the state was trained with.") from error
    return params


def schedule_free_eval_params(state: OptState, params: Params) -> Params:
    """The params to evaluate a schedule-free run at:
    :math:`x = (y - (1 - \\beta) z) / \\beta`, from the training params :math:`y` and the
    state's :math:`z` and :math:`\\beta` (see :func:`schedule_free`).

    ``state`` may be the whole optimizer state: the schedule-free state is found inside
    it (under ``chain``, ``inject_hyperparams``, ``masked``, ...; optax's too). With
    several (``partition``), each maps the leaves it trains. Each leaf keeps its dtype.

    Raises:
      ValueError: ``state`` holds no schedule-free state, or ``params`` do not match it.
    """
    if not schedule_free_states(state):
        raise ValueError(
            f"schedule_free_eval_params needs the state of a schedule-free optimizer "
            f"(jaxgd.schedule_free, schedule_free_sgd, schedule_free_adamw, or optax's), "
            f"but this {type(state).__name__} holds none: its params are already the ones "
            "to evaluate.")
    return evaluation_params(state, params)
