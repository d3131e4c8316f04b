"""One step of :func:`jaxgd.fit`'s loop: the loss, the update, the guard and the stop tests.

Step ``i`` (``i = 0, 1, ...``, one per batch) starts from parameters :math:`p` and
optimizer state :math:`s` and sees batch :math:`B_i`:

.. math:: f_i = \\ell(p, B_i), \\quad g_i = \\nabla \\ell(p, B_i), \\quad
          (u_i, s') = \\mathrm{update}(g_i, s, p), \\quad p' = p + u_i.

The step is *finite* when :math:`f_i` and :math:`\\|g_i\\|_2` are (a gradient so large that
its squared norm overflows is not). Only a finite step is applied. What a step that is not
finite does depends on ``on_nonfinite``:

* ``"stop"``: the run stops with "nonfinite";
* ``"skip"``: the batch is dropped (counted in ``num_skipped``) and the run goes on; a
  whole epoch of consecutive dropped batches means the parameters, not the data, are at
  fault, and the run stops with "nonfinite" as above.

Either way a run that stops on a non-finite value returns the last parameters whose loss
and gradient were finite, with their optimizer state (a finite gradient can still make
non-finite parameters, through a NaN learning rate say, or parameters whose loss
overflows): the loop keeps a copy of them (:class:`Kept`) and goes back to it in the step
that stops. After a finite step, the stopping tests are, in this order of precedence:

* "tol": :math:`|f_i - f_{i'}| \\le \\mathrm{tol}\\cdot\\max(|f_i|, \\text{tiny})`, with
  :math:`i'` the finite step before (tiny is the smallest normal number of the loss dtype);
* "grad_tol": :math:`\\|g_i\\|_2 \\le \\mathrm{grad\\_tol}` (global norm over all leaves);
* "max_steps": step ``max_steps - 1`` has run.

With ``fit(..., ema_decay=beta)`` a finite step also adds :math:`p'` to the params' EMA
(:func:`jaxgd.params_ema_update`), kept with the point it belongs to.

("patience", validation early stopping, is tested at an epoch's end:
:mod:`jaxgd.train.loop`.) With mini-batches, :math:`f_i` and :math:`g_i` are those of the
batch, so ``tol`` and ``grad_tol`` test noisy quantities; they are meant mainly for
full-batch descent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core.base import apply_updates
from jaxgd.core.hyperparams import attach_hyperparams, detach_hyperparams
from jaxgd.core.sharding import ParamsPlacement
from jaxgd.core.tree import global_norm
from jaxgd.train import result, validation
from jaxgd.train.progress import ProgressSink
from jaxgd.transforms.params_average import (
    ParamsAverageState,
    params_average_init,
    params_ema_update,
)

#: What the loop keeps a copy of (``LoopConfig.keep``): the last finite point (to return
#: after a non-finite stop), the point of the best training loss, or of the best
#: validation loss (``restore_best``; both are finite, so they serve a non-finite stop too).
LAST_FINITE, BEST_TRAIN, BEST_VAL = "last_finite", "best_train", "best_val"


class LoopConfig(NamedTuple):
    """Everything the compiled loop is specialised on (hashable; callables by identity)."""

    loss: Callable  # loss(*inputs.loss_args, params[, batch])
    update: Callable
    pass_extra_args: bool
    has_aux: bool
    with_data: bool
    batch_size: int | None
    # Each data leaf's sharding when mini-batches are split over devices (data
    # parallelism), else None: see jaxgd.train.batching.take_batch.
    batch_placement: tuple | None
    max_steps: int
    steps_per_epoch: int
    keep: str
    on_nonfinite: str
    sink: ProgressSink | None
    progress_every: int
    early_stopping: bool = True  # tol, grad_tol or validation in use: a while_loop
    # Under ``jax.vmap(..., axis_name=trial_axis)`` (a sweep): the epoch loop runs while
    # any trial runs, so the epoch count stays shared and so does the data order.
    trial_axis: str | None = None
    # ``init(params, hyperparams) -> opt_state``: the state is built inside the program
    # (``inputs.opt_state`` is then None), see jaxgd.core.hyperparams.
    init: Callable | None = None
    # Params spread over an auto mesh: where the loop keeps them and their state, step
    # after step (jaxgd.core.sharding.ParamsPlacement); None lets types or XLA place them.
    params_placement: ParamsPlacement | None = None
    # fit(..., ema_decay=...): the loop keeps an EMA of the params (inputs.ema_decay).
    average_params: bool = False
    # A sweep's full-batch run of fixed length: the loop runs one step more, which
    # changes nothing (the run has stopped) but evaluates the loss at the last params,
    # so that the caller's program needs no loss program of its own for them
    # (FitResult.final_loss).
    evaluate_last: bool = False


class LoopInputs(NamedTuple):
    """The traced inputs of the loop. ``loss_args``: the leading arguments of
    ``LoopConfig.loss`` (arrays it takes as inputs, not constants). ``tol`` /
    ``grad_tol`` are ``-inf`` and ``patience`` is the largest int32 when disabled, so
    that they never trigger.
    ``opt_state`` is None when ``LoopConfig.init`` builds it from ``hyperparams``; in
    the loop, ``hyperparams`` are then the values that no schedule changes, held here
    rather than in the carried state (:func:`jaxgd.core.hyperparams.detach_hyperparams`),
    or None.
    ``ema_decay``: the decay of the params' EMA when ``LoopConfig.average_params``,
    else None."""

    loss_args: tuple
    params: Any
    opt_state: Any
    hyperparams: Any
    data: Any
    val_data: Any
    key: jax.Array
    tol: jax.Array
    grad_tol: jax.Array
    patience: jax.Array
    ema_decay: Any = None


class Kept(NamedTuple):
    """A copy of one point of the run (see ``LoopConfig.keep``). The last finite point
    needs neither ``num_steps`` nor ``loss``: its count is one update behind the run's,
    and its loss is the run's ``prev_loss``."""

    params: Any
    opt_state: Any
    num_steps: jax.Array | None = None  # updates behind it
    loss: jax.Array | None = None  # its training loss (its batch's); inf before any
    ema: ParamsAverageState | None = None  # the params' EMA up to it


class Carry(NamedTuple):
    num_steps: jax.Array | None  # updates applied (see first_carry)
    params: Any
    opt_state: Any
    kept: Kept
    prev_loss: jax.Array  # the loss of the last finite step
    num_skipped: jax.Array | None  # on_nonfinite="skip" only, like:
    bad_in_a_row: jax.Array | None  # consecutive steps that were not finite
    code: jax.Array  # result.RUNNING while the run goes on
    aux: Any
    val: validation.Validation | None
    ema: ParamsAverageState | None  # LoopConfig.average_params only
    last_loss: jax.Array | None  # LoopConfig.evaluate_last only: the last step's loss


def loss_of(cfg: LoopConfig, inputs: LoopInputs, params: Any, batch: Any
            ) -> tuple[jax.Array, Any]:
    """``(loss, aux)`` of ``cfg.loss`` under either calling convention."""
    batch = (batch,) if cfg.with_data else ()
    out = cfg.loss(*inputs.loss_args, params, *batch)
    return out if cfg.has_aux else (out, None)


def select(pred: jax.Array, on_true: Any, on_false: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def _report(sink: ProgressSink, report: Any, step: Any, loss: Any) -> None:
    if report:
        sink(step, loss)


def first_carry(cfg: LoopConfig, inputs: LoopInputs, loss_dtype: Any, aux_spec: Any,
                num_epochs: int) -> Carry:
    nan = jnp.asarray(jnp.nan, loss_dtype)
    zero = jnp.asarray(0, jnp.int32)
    skip = zero if cfg.on_nonfinite == "skip" else None
    val = None
    if inputs.val_data is not None:
        val = validation.init(num_epochs, loss_dtype)
    ema = params_average_init(inputs.params) if cfg.average_params else None
    kept = Kept(inputs.params, inputs.opt_state, ema=ema)
    if cfg.keep != LAST_FINITE:
        kept = kept._replace(num_steps=zero, loss=jnp.asarray(jnp.inf, loss_dtype))
    # Under a trial axis, the last finite point's updates are counted from the history
    # after the program (jaxgd.train.fit.finish): the loop reads no count of its own.
    counts = cfg.trial_axis is None or cfg.keep != LAST_FINITE
    return Carry(
        num_steps=zero if counts else None,
        params=inputs.params,
        opt_state=inputs.opt_state,
        kept=kept,
        prev_loss=nan,
        num_skipped=skip,
        bad_in_a_row=skip,
        code=jnp.asarray(result.RUNNING, jnp.int32),
        aux=jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), aux_spec),
        val=val,
        ema=ema,
        last_loss=nan if cfg.evaluate_last else None,
    )


def step(cfg: LoopConfig, inputs: LoopInputs, c: Carry, batch: Any, i: jax.Array
         ) -> tuple[Carry, jax.Array]:
    """Step ``i`` on ``batch`` from carry ``c``: the new carry and the step's entries of
    the loss and gradient-norm histories, as one ``(2,)`` array (NaN for a step that was
    not finite, or did not count: the run had stopped).

    The loss and gradient are computed whether the step counts or not, rather than in a
    ``lax.cond`` on it: under ``vmap`` that condition is batched, and a batched ``cond``
    broadcasts every operand, the data too, to one copy per lane."""
    (loss, aux), grads = jax.value_and_grad(
        lambda p: loss_of(cfg, inputs, p, batch), has_aux=True)(c.params)
    loss = loss.astype(c.prev_loss.dtype)
    grad_norm = global_norm(grads).astype(c.prev_loss.dtype)
    extra = {}
    if cfg.pass_extra_args:  # for optimizers that use them (line searches, Polyak steps)
        extra = {"value": loss, "grad": grads,
                 "value_fn": lambda p: loss_of(cfg, inputs, p, batch)[0]}

    keeps_last = cfg.keep == LAST_FINITE
    active = c.code == result.RUNNING
    # The guard reuses the gradient norm the loop records anyway: no pass over the
    # parameters beyond the update itself.
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    taken = active & finite
    num_skipped = bad_in_a_row = None
    if cfg.on_nonfinite == "skip":
        bad_in_a_row = jnp.where(finite, 0, c.bad_in_a_row + 1)
        nonfinite = bad_in_a_row >= cfg.steps_per_epoch
        num_skipped = c.num_skipped + (active & ~finite & ~nonfinite).astype(jnp.int32)
        bad_in_a_row = jnp.where(active, bad_in_a_row, c.bad_in_a_row)
    else:
        nonfinite = ~finite
    # This step stops the run on a non-finite value: the run goes back to the last
    # finite point (kept: the point before the last update; BEST_* keep their own).
    goes_back = active & nonfinite if keeps_last else None

    def apply(state):
        params, opt_state, kept, ema = state
        updates, new_opt_state = cfg.update(
            grads, attach_hyperparams(opt_state, inputs.hyperparams), params, **extra)
        if inputs.hyperparams is not None:  # held as inputs (see LoopInputs)
            new_opt_state = detach_hyperparams(new_opt_state)[0]
        if keeps_last:  # the point this step leaves is the last finite one
            kept = Kept(params, opt_state, ema=ema)
        params = apply_updates(params, updates)
        if ema is not None:
            ema = params_ema_update(ema, params, inputs.ema_decay)
        return params, new_opt_state, kept, ema

    def hold(state):  # a step not taken
        if not keeps_last:
            return state
        kept = state[2]
        back = (kept.params, kept.opt_state, kept, kept.ema)
        if cfg.trial_axis is not None:
            return select(goes_back, back, state)
        return jax.lax.cond(goes_back, lambda: back, lambda: state)

    state = (c.params, c.opt_state, c.kept if keeps_last else None, c.ema)
    if cfg.trial_axis is None:
        # The copy of the point a step leaves is taken in the update's branch, and read
        # back in the other: only a finite step runs the one, and only the step that
        # stops on a non-finite value copies back.
        params, opt_state, kept, ema = jax.lax.cond(taken, apply, hold, state)
    else:
        # Under a caller's trial axis (a sweep) every branch is batched, and a batched
        # cond is a select of both branches: written as one, it spares vmap the cond,
        # and the kept point is selected first and read back from there, so that each
        # select depends on the one before and XLA updates every buffer in place (the
        # other way round, the update reads the old copy while the copy reads the old
        # point, and XLA copies both before each step).
        new_params, new_opt_state, new_kept, new_ema = apply(state)
        kept = select(taken, new_kept, c.kept) if keeps_last else None
        held_params, held_opt_state, _, held_ema = hold((c.params, c.opt_state, kept, c.ema))
        params, opt_state, ema = select(taken, (new_params, new_opt_state, new_ema),
                                        (held_params, held_opt_state, held_ema))
    kept = kept if keeps_last else c.kept
    if cfg.params_placement is not None:
        params, (opt_state, ema) = cfg.params_placement.keep(params, (opt_state, ema))
    if cfg.keep == BEST_TRAIN:
        here = Kept(c.params, c.opt_state, c.num_steps, loss, c.ema)
        kept = select(taken & (loss < kept.loss), here, kept)
    num_steps = None  # (None: counted after the program, see first_carry)
    if c.num_steps is not None:
        num_steps = c.num_steps + taken.astype(jnp.int32)
        if keeps_last:  # the kept point is one update behind, if any was made
            num_steps = jnp.where(goes_back, jnp.maximum(c.num_steps - 1, 0), num_steps)

    conditions = [nonfinite]
    codes = [result.NONFINITE]
    if cfg.early_stopping:
        tiny = jnp.finfo(loss.dtype).tiny
        conditions += [
            finite & (jnp.abs(loss - c.prev_loss) <= inputs.tol * jnp.maximum(jnp.abs(loss),
                                                                              tiny)),
            finite & (grad_norm <= inputs.grad_tol),
        ]
        codes += [result.TOL, result.GRAD_TOL]
    conditions.append(i + 1 >= cfg.max_steps)
    codes.append(result.MAX_STEPS)
    code = jnp.asarray(result.RUNNING, jnp.int32)
    for condition, value in reversed(list(zip(conditions, codes, strict=True))):
        code = jnp.where(condition, value, code)  # the first that holds wins
    code = jnp.where(active, code, c.code)

    if cfg.sink is not None:
        # Under vmap the cond becomes a select that always calls back: passing the flag
        # lets the host drop the calls of lanes that report nothing.
        report = active & (((i + 1) % cfg.progress_every == 0) | (code != result.RUNNING))
        callback = functools.partial(_report, cfg.sink)
        jax.lax.cond(report, lambda: jax.debug.callback(callback, report, i + 1, loss),
                     lambda: None)

    carry = c._replace(
        num_steps=num_steps,
        params=params,
        opt_state=opt_state,
        kept=kept,
        prev_loss=jnp.where(taken, loss, c.prev_loss),
        num_skipped=num_skipped,
        bad_in_a_row=bad_in_a_row,
        code=code.astype(jnp.int32),
        aux=select(taken, aux, c.aux) if cfg.has_aux else None,
        ema=ema,
        last_loss=None if c.last_loss is None else loss,
    )
    history = jnp.where(taken, jnp.stack([loss, grad_norm]), jnp.nan)
    return carry, history
