"""The compiled training loop behind :func:`jaxgd.fit`: epochs of steps, on the device.

:func:`run` is a ``jax.jit`` (traced inline inside a caller's trace) whose static argument
:class:`~jaxgd.train.step.LoopConfig` holds the callables (the loss, the optimizer's
``update``, the progress sink) and the sizes; everything numeric (params, optimizer state
with its hyperparameters, data, key, tolerances, patience, arrays the loss takes) is a
traced input. Calling ``fit`` again with the same callables and sizes therefore reuses
the compiled program, and the whole loop can be vmapped over any numeric input.

The loop has two levels: an outer loop over epochs and, inside it, a ``lax.scan`` over
the epoch's batches (:mod:`jaxgd.train.step` holds one step). The epoch draws its
permutation of the examples once, at its start, unconditionally: there is no branch on
"is this the first batch of an epoch", which ``vmap`` would turn into a ``select`` that
permutes the whole data set at every step. Under ``vmap`` with a shared ``key`` the epoch
count is shared too, so the permutation is drawn once for all lanes: always in the
fixed-length loop (no ``tol``, ``grad_tol`` or validation: a ``lax.scan`` over epochs),
and in the early-stopping loop (a ``lax.while_loop`` over epochs) when the vmap names its
axis ``LoopConfig.trial_axis`` (as :func:`jaxgd.sweep` does), whose loop then runs while
any lane runs. A run that stops within an epoch changes nothing in the rest of it.

At an epoch's end, with validation data, the validation loss is recorded and the
"patience" rule tested (:mod:`jaxgd.train.validation`).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from jaxgd.core.hyperparams import attach_hyperparams, detach_hyperparams
from jaxgd.train import batching, result, validation
from jaxgd.train.step import (
    BEST_TRAIN,
    BEST_VAL,
    LAST_FINITE,
    Carry,
    Kept,
    LoopConfig,
    LoopInputs,
    first_carry,
    loss_of,
    select,
    step,
)

__all__ = ["LoopConfig", "LoopInputs", "lower", "run", "trace_count"]

_trace_count = 0


def trace_count() -> int:
    """How many times the loop has been traced (compiled) in this process."""
    return _trace_count


def _epoch(cfg: LoopConfig, inputs: LoopInputs, c: Carry, epoch: jax.Array,
           length: int | None = None) -> tuple[Carry, jax.Array]:
    """Epoch ``epoch`` from carry ``c``, its first ``length`` steps (default all): the
    new carry and the epoch's ``(length, 2)`` loss and gradient-norm history."""
    spe = cfg.steps_per_epoch
    length = spe if length is None else length
    permutation = None
    if cfg.batch_size is not None:
        permutation = batching.epoch_permutation(inputs.key, epoch,
                                                 batching.num_examples(inputs.data))

    def one_step(c, j):
        batch = inputs.data
        if permutation is not None:
            batch = batching.take_batch(inputs.data, permutation, j, cfg.batch_size,
                                        cfg.batch_placement)
        return step(cfg, inputs, c, batch, epoch * spe + j)

    started = c.code == result.RUNNING
    if length == 1:
        c, history = one_step(c, jnp.asarray(0, jnp.int32))
        history = history[None]
    else:
        c, history = jax.lax.scan(one_step, c, jnp.arange(length, dtype=jnp.int32))
    if c.val is not None:
        c = _validate(cfg, inputs, epoch, started, c)
    return c, history


def _validate(cfg: LoopConfig, inputs: LoopInputs, epoch: jax.Array, started: jax.Array,
              c: Carry) -> Carry:
    """Record the validation loss after ``epoch`` of a run that ``started`` it (also when
    it stopped within it, so that the params it returns are validated) and apply the
    patience rule. Computed for every run and kept where ``started``, rather than in a
    ``lax.cond``, which under ``vmap`` would copy the validation data for every lane
    (see :func:`jaxgd.train.step.step`)."""
    at = validation.evaluation_params(attach_hyperparams(c.opt_state, inputs.hyperparams),
                                      c.params)
    loss = loss_of(cfg, inputs, at, inputs.val_data)[0]
    epoch_end = c.code == result.RUNNING
    val, improved, out_of_patience = validation.record(c.val, loss, epoch, epoch_end,
                                                       inputs.patience)
    kept = c.kept
    if cfg.keep == BEST_VAL:
        kept = select(started & improved,
                      Kept(c.params, c.opt_state, c.num_steps, c.prev_loss, c.ema), kept)
    code = jnp.where(started & out_of_patience, result.PATIENCE, c.code).astype(jnp.int32)
    return c._replace(val=select(started, val, c.val), kept=kept, code=code)


def _run(cfg: LoopConfig, inputs: LoopInputs) -> result.FitResult:
    global _trace_count
    _trace_count += 1
    if cfg.init is not None:
        opt_state, held = detach_hyperparams(cfg.init(inputs.params, inputs.hyperparams))
        inputs = inputs._replace(opt_state=opt_state, hyperparams=held)
    if cfg.params_placement is not None:
        params, opt_state = cfg.params_placement.keep(inputs.params, inputs.opt_state)
        inputs = inputs._replace(params=params, opt_state=opt_state)
    batch0 = inputs.data
    if cfg.batch_size is not None:
        batch0 = batching.batch_spec(inputs.data, cfg.batch_size, cfg.batch_placement)
    loss_spec, aux_spec = jax.eval_shape(lambda p, b: loss_of(cfg, inputs, p, b),
                                         inputs.params, batch0)
    inputs = inputs._replace(
        tol=jnp.asarray(inputs.tol, loss_spec.dtype),
        grad_tol=jnp.asarray(inputs.grad_tol, loss_spec.dtype),
        patience=jnp.asarray(inputs.patience, jnp.int32),
    )
    # The whole epochs, then the steps of a last, partial one, as a scan of its own
    # length: a step past max_steps that did nothing would still cost a step (a cond on
    # it is no way out: under vmap its predicate can be batched, and a batched cond
    # copies the data for every lane).
    full_epochs, rest = divmod(cfg.max_steps, cfg.steps_per_epoch)
    c = first_carry(cfg, inputs, loss_spec.dtype, aux_spec, full_epochs + (rest > 0))
    if cfg.trial_axis is not None:
        c = _one_per_trial(cfg.trial_axis, c)
    if cfg.evaluate_last:  # one full-batch step (an epoch) more: see LoopConfig
        full_epochs += 1
    histories = []
    if full_epochs:
        epoch_fn = functools.partial(_epoch, cfg, inputs)
        if cfg.early_stopping:
            c, history = _while_epochs(cfg, epoch_fn, c, full_epochs, loss_spec.dtype)
        else:
            # A fixed number of epochs: a scan that emits the histories rather than
            # carrying them, so that under vmap no step selects every lane's history.
            c, history = jax.lax.scan(epoch_fn, c,
                                      jnp.arange(full_epochs, dtype=jnp.int32))
        histories.append(history.reshape(-1, 2))
    if rest:
        c, history = _epoch(cfg, inputs, c, jnp.asarray(full_epochs, jnp.int32), rest)
        histories.append(history)
    return _finish(cfg, inputs, c, jnp.concatenate(histories)[:cfg.max_steps])


def _one_per_trial(trial_axis: str, tree: Any) -> Any:
    """``tree`` with its values unchanged, made one per trial of the caller's ``vmap``
    (axis ``trial_axis``). Every part of the carry ends up one per trial (the trials'
    hyperparameters differ), and a carry that starts so spares ``vmap``'s rule for
    ``scan`` and ``while_loop`` the passes that find it out: one batching of the whole
    step each, about a third of the sweep's trace time."""
    lane = jax.lax.axis_index(trial_axis)
    return jax.tree.map(lambda x: jnp.where(lane >= 0, x, x), tree)


def _while_epochs(cfg: LoopConfig, epoch_fn, first: Carry, num_epochs: int, dtype: Any
                  ) -> tuple[Carry, jax.Array]:
    """Up to ``num_epochs`` epochs, until every run has stopped; the histories are
    carried, one epoch's slice written per epoch."""
    spe = cfg.steps_per_epoch

    def running(state):
        going = (state[0] < num_epochs) & (state[1].code == result.RUNNING)
        if cfg.trial_axis is not None:
            going = jax.lax.psum(going.astype(jnp.int32), cfg.trial_axis) > 0
        return going

    def body(state):
        epoch, c, histories = state
        c, history = epoch_fn(c, epoch)
        histories = jax.lax.dynamic_update_slice_in_dim(histories, history, epoch * spe, 0)
        return epoch + 1, c, histories

    histories = jnp.full((num_epochs * spe, 2), jnp.nan, dtype)
    _, c, histories = jax.lax.while_loop(
        running, body, (jnp.asarray(0, jnp.int32), first, histories))
    return c, histories


def _finish(cfg: LoopConfig, inputs: LoopInputs, c: Carry, histories: jax.Array
            ) -> result.FitResult:
    """The result: the params and state the run returns (see :class:`FitResult`); for a
    schedule-free optimizer, the params to evaluate at, with the training params
    beside them.

    Under a caller's trial axis (a sweep) the run's records go to the host anyway:
    :func:`jaxgd.train.fit.finish` derives them there, and the program compiles none of
    their reductions and slices (on XLA:CPU a kernel each, each about as much compile
    time as a step's update; what that saves: benchmarks/RESULTS.md, the summary's
    full-batch first call). The program returns the history with both its columns as
    ``losses`` (``grad_norms`` None), ``converged`` None, and ``num_steps``,
    ``num_skipped``, ``best_loss`` and ``best_step`` None where the loop does not
    count them itself."""
    params, opt_state, num_steps, ema = c.params, c.opt_state, c.num_steps, c.ema
    losses = histories[:, 0]
    kept = c.kept
    if cfg.keep == BEST_TRAIN:  # the last params' loss was not evaluated yet
        last_loss = loss_of(cfg, inputs, params, inputs.data)[0].astype(losses.dtype)
        last_is_best = (c.code != result.NONFINITE) & (last_loss < kept.loss)
        kept = select(last_is_best, Kept(params, opt_state, num_steps, last_loss, ema), kept)
        best_loss = kept.loss
        best_step = jnp.where(jnp.isinf(best_loss), -1, kept.num_steps)
    else:
        best_loss, best_step = _best_in_program(cfg, losses)
    if cfg.keep != LAST_FINITE:  # (the last finite point is gone back to by its step)
        params, opt_state, ema = kept.params, kept.opt_state, kept.ema
    final_loss = c.last_loss
    opt_state = attach_hyperparams(opt_state, inputs.hyperparams)
    train_params = None
    evaluated = validation.evaluation_params(opt_state, params)
    if evaluated is not params:  # the loss was evaluated at the training params
        params, train_params, final_loss = evaluated, params, None
    ema_params = None if ema is None else ema.average
    if cfg.params_placement is not None:
        params, (opt_state, train_params, ema_params) = cfg.params_placement.keep(
            params, (opt_state, train_params, ema_params))
    val = c.val
    if cfg.trial_axis is None:
        records = dict(losses=losses, grad_norms=histories[:, 1],
                       converged=result.converged(c.code))
        num_skipped = jnp.zeros((), jnp.int32) if c.num_skipped is None else c.num_skipped
    else:  # left to the host (see above)
        records = dict(losses=histories, grad_norms=None, converged=None)
        num_skipped = c.num_skipped
    return result.FitResult(
        params=params,
        opt_state=opt_state,
        num_steps=num_steps,
        stop_code=c.code,
        **records,
        aux=c.aux,
        val_losses=None if val is None else val.losses,
        best_val_loss=None if val is None else val.best_loss,
        best_epoch=None if val is None else val.best_epoch,
        best_loss=best_loss,
        best_step=best_step,
        num_skipped=num_skipped,
        train_params=train_params,
        ema_params=ema_params,
        final_loss=final_loss,
    )


def _best_in_program(cfg: LoopConfig, losses: jax.Array) -> tuple[Any, Any]:
    """:func:`best_of` the history, or ``(None, None)`` under a caller's trial axis
    (see :func:`_finish`)."""
    if cfg.trial_axis is not None:
        return None, None
    return best_of(losses, cfg.on_nonfinite == "skip")


def best_of(losses: Any, skips: bool, xp: Any = jnp) -> tuple[Any, Any]:
    """The lowest finite loss of a history (``inf`` if none) and the updates behind its
    params: its step less the steps before it that were not finite (skipped; only with
    ``skips``: otherwise the NaN entries are the steps after a stop), or -1. Over the
    last axis; ``xp`` is ``jax.numpy`` or ``numpy`` (on the host). Plain reductions (no
    argmin, no gather)."""
    missing = xp.isnan(losses)
    best = xp.min(xp.where(missing, xp.inf, losses), axis=-1)
    steps = xp.arange(losses.shape[-1], dtype=xp.int32)
    i = xp.min(xp.where(losses == best[..., None], steps, losses.shape[-1]), axis=-1)
    if skips:
        i = i - xp.sum((missing & (steps < i[..., None])).astype(xp.int32), axis=-1)
    return best, xp.where(xp.isinf(best), -1, i).astype(xp.int32)


_compiled = jax.jit(_run, static_argnums=0)

#: The loop's program for ``(config, inputs)``, to inspect (``.as_text()``) or compile.
lower = _compiled.lower


def run(cfg: LoopConfig, inputs: LoopInputs) -> result.FitResult:
    """The loop: ``run(config, inputs) -> FitResult``, compiled once per config and input
    shapes. Inside a caller's trace (``fit`` under ``jit`` or ``vmap``, a sweep) it is
    traced inline instead: a nested ``jit`` would be traced, then traced again by the
    caller's ``vmap`` to batch it."""
    if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(inputs)):
        return _run(cfg, inputs)
    return _compiled(cfg, inputs)
