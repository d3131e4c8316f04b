"""The compiled training loop behind :func:`jaxgd.fit`: one ``lax.while_loop`` on the device.

:func:`run` is a module-level ``jax.jit`` whose static argument :class:`LoopConfig` holds
the callables (``loss_fn``, the optimizer's ``update``, the progress sink) and the sizes;
everything numeric (params, optimizer state with its hyperparameters, data, key,
tolerances, patience) is a traced input. Calling ``fit`` again with the same callables
and sizes therefore reuses the compiled program, and the whole loop can be vmapped over
any numeric input.

Step ``t`` (``t = 0, 1, ...``) starts from parameters :math:`p_t` and batch :math:`B_t`:

.. math:: f_t = \\ell(p_t, B_t), \\quad g_t = \\nabla \\ell(p_t, B_t), \\quad
          (u_t, s_{t+1}) = \\mathrm{update}(g_t, s_t, p_t), \\quad p_{t+1} = p_t + u_t.

The step is applied only if :math:`f_t` and :math:`\\|g_t\\|_2` are finite (a gradient
so large that its squared norm overflows counts as non-finite); otherwise the loop stops
with "nonfinite", keeping :math:`(p_t, s_t)`. The update itself is not tested, which
keeps the guard free (it reuses the norm recorded in ``grad_norms``): an optimizer that
turns a finite gradient into a non-finite update (say ``eps=0`` with a zero gradient) is
stopped one step later, when :math:`f_{t+1}` is non-finite, and returns
:math:`p_{t+1}` as it is. After an applied step, the stopping tests are, in this order
of precedence:

* "tol": :math:`|f_t - f_{t-1}| \\le \\mathrm{tol}\\cdot\\max(|f_t|, \\text{tiny})`
  (from the second step on; tiny is the smallest normal number of the loss dtype);
* "grad_tol": :math:`\\|g_t\\|_2 \\le \\mathrm{grad\\_tol}` (global norm over all leaves);
* "patience": at the end of an epoch, the validation loss has not improved on its best
  for ``patience`` consecutive epochs;
* "max_steps": ``max_steps`` updates have been applied.

With mini-batches, :math:`f_t` and :math:`g_t` are those of the batch, so ``tol`` and
``grad_tol`` test noisy quantities; they are meant mainly for full-batch descent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxgd.core.base import apply_updates
from jaxgd.core.tree import global_norm
from jaxgd.train import batching, result, validation
from jaxgd.train.progress import ProgressSink


class LoopConfig(NamedTuple):
    """Everything the compiled loop is specialised on (hashable; callables by identity)."""

    loss_fn: Callable
    update: Callable
    pass_extra_args: bool
    has_aux: bool
    with_data: bool
    batch_size: int | None
    max_steps: int
    steps_per_epoch: int
    restore_best: bool
    sink: ProgressSink | None
    progress_every: int
    early_stopping: bool = True  # tol, grad_tol or validation in use: a while_loop
    # ``init(params, hyperparams) -> opt_state``: the state is built inside the program
    # (``inputs.opt_state`` is then None), see jaxgd.core.hyperparams.HyperparamInit.
    init: Callable | None = None
    # The flat fast path (jaxgd.train.flat): the params are a vector in the loop, which
    # the loss sees unflattened by ``layout.unravel_at(vector, inputs.offsets)``;
    # ``ravel(params) -> vector`` on the way in, ``restore(vector, flat_state) ->
    # (params, opt_state)`` on the way out for small trees (otherwise the result keeps
    # the flat layout and fit unflattens it outside).
    layout: Any = None
    ravel: Callable | None = None
    restore: Callable | None = None


class LoopInputs(NamedTuple):
    """The traced inputs of the loop. ``tol`` / ``grad_tol`` are ``-inf`` and
    ``patience`` is the largest int32 when disabled, so that they never trigger.
    ``params`` are in the caller's layout when ``LoopConfig.ravel`` is set, else in the
    loop's; ``opt_state`` is in the loop's (flat on the fast path), or None with
    ``hyperparams`` the values for ``LoopConfig.init``. ``offsets``: on the flat path
    of a big tree, where its leaves start in the vector (see
    :meth:`jaxgd.train.flat.FlatLayout.unravel_at`), else None."""

    params: Any
    opt_state: Any
    hyperparams: Any
    data: Any
    val_data: Any
    key: jax.Array
    tol: jax.Array
    grad_tol: jax.Array
    patience: jax.Array
    offsets: tuple[jax.Array, ...] | None = None


class _Carry(NamedTuple):
    step: jax.Array  # updates applied so far
    params: Any
    opt_state: Any
    permutation: jax.Array | None
    prev_loss: jax.Array
    losses: jax.Array
    grad_norms: jax.Array
    code: jax.Array | None  # None in the fixed-length scan (see _scan_body)
    aux: Any
    val: validation.Validation | None


_trace_count = 0


def trace_count() -> int:
    """How many times the loop has been traced (compiled) in this process."""
    return _trace_count


def _select(pred: jax.Array, on_true: Any, on_false: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def _report(sink: ProgressSink, report: Any, step: Any, loss: Any) -> None:
    if report:
        sink(step, loss)


def _loss(cfg: LoopConfig, inputs: LoopInputs, params: Any, batch: Any
          ) -> tuple[jax.Array, Any]:
    """``(loss, aux)`` of ``cfg.loss_fn`` under either calling convention, on the params
    in the caller's layout."""
    if cfg.layout is not None:
        params = cfg.layout.unravel_at(params, inputs.offsets)
    out = cfg.loss_fn(params, batch) if cfg.with_data else cfg.loss_fn(params)
    return out if cfg.has_aux else (out, None)


def _first_carry(cfg: LoopConfig, inputs: LoopInputs, loss_dtype, aux_spec) -> _Carry:
    nan = jnp.full((cfg.max_steps,), jnp.nan, loss_dtype)
    val = None
    if inputs.val_data is not None:
        num_epochs = -(-cfg.max_steps // cfg.steps_per_epoch)
        val = validation.init(
            inputs.params, inputs.opt_state, num_epochs, loss_dtype, cfg.restore_best
        )
    permutation = None
    if cfg.batch_size is not None:
        permutation = jnp.zeros((batching.num_examples(inputs.data),), jnp.int32)
    return _Carry(
        step=jnp.asarray(0, jnp.int32),
        params=inputs.params,
        opt_state=inputs.opt_state,
        permutation=permutation,
        prev_loss=jnp.asarray(jnp.nan, loss_dtype),
        losses=nan,
        grad_norms=nan,
        code=jnp.asarray(result.RUNNING, jnp.int32),
        aux=jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), aux_spec),
        val=val,
    )


def _batch(cfg: LoopConfig, inputs: LoopInputs, c: _Carry) -> tuple[Any, jax.Array | None]:
    """The batch of step ``c.step`` and the permutation of its epoch."""
    if cfg.batch_size is None:
        return inputs.data, None
    epoch, index = jnp.divmod(c.step, cfg.steps_per_epoch)
    n = c.permutation.shape[0]
    permutation = jax.lax.cond(
        index == 0,
        lambda: batching.epoch_permutation(inputs.key, epoch, n).astype(jnp.int32),
        lambda: c.permutation,
    )
    return batching.take_batch(inputs.data, permutation, index, cfg.batch_size), permutation


def _validate(cfg: LoopConfig, inputs: LoopInputs, val: validation.Validation, params: Any,
              opt_state: Any, step: jax.Array, applied: jax.Array,
              stopping: jax.Array) -> tuple[validation.Validation, jax.Array]:
    """Validate at each epoch end, and once more when stopping mid-epoch so that the
    returned params are validated too (a step that was not applied changes nothing)."""
    epoch_end = applied & (step % cfg.steps_per_epoch == 0)
    do_validate = epoch_end | (stopping & (step % cfg.steps_per_epoch != 0))
    return jax.lax.cond(
        do_validate,
        lambda v: validation.record(
            v,
            _loss(cfg, inputs, params, inputs.val_data)[0],
            (step - 1) // cfg.steps_per_epoch,
            epoch_end,
            inputs.patience,
            params,
            opt_state,
        ),
        lambda v: (v, jnp.asarray(False)),
        val,
    )


def _step(cfg: LoopConfig, inputs: LoopInputs, c: _Carry, running: jax.Array
          ) -> tuple[_Carry, jax.Array, jax.Array]:
    """One step from carry ``c`` of a run that is still ``running`` (not stopped): the
    new carry (histories untouched) and this step's entries of the loss and
    gradient-norm histories (NaN for a step not applied)."""
    batch, permutation = _batch(cfg, inputs, c)
    (loss, aux), grads = jax.value_and_grad(
        lambda p: _loss(cfg, inputs, p, batch), has_aux=True
    )(c.params)
    loss = loss.astype(c.prev_loss.dtype)
    grad_norm = global_norm(grads).astype(c.prev_loss.dtype)
    extra = {}
    if cfg.pass_extra_args:  # for optimizers that use them (line searches, Polyak steps)
        extra = {"value": loss, "grad": grads,
                 "value_fn": lambda p: _loss(cfg, inputs, p, batch)[0]}

    def apply(state):
        updates, new_opt_state = cfg.update(grads, state[1], state[0], **extra)
        return apply_updates(state[0], updates), new_opt_state

    # The guard reuses the gradient norm the loop records anyway: a step costs no pass
    # over the parameters beyond the update itself (a per-leaf finiteness test and
    # keep-or-replace selects measured 10-15 % slower, and compiled slower, on 1000 leaves).
    # A run that has stopped (possible only in the fixed-length scan, after "nonfinite")
    # takes no more steps.
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    applied = running & finite
    params, opt_state = jax.lax.cond(applied, apply, lambda state: state,
                                     (c.params, c.opt_state))
    step = c.step + applied.astype(jnp.int32)
    last = step >= cfg.max_steps
    val = c.val
    if not cfg.early_stopping:
        # The fixed-length scan: only "nonfinite" can stop a run before its end, which
        # the scan tells from the step count; no code is carried, it is set after it.
        code, ends = None, ~finite
    else:
        tiny = jnp.finfo(loss.dtype).tiny
        small_change = jnp.abs(loss - c.prev_loss) <= inputs.tol * jnp.maximum(jnp.abs(loss),
                                                                               tiny)
        small_grad = grad_norm <= inputs.grad_tol
        stopping = ~finite | small_change | small_grad | last
        out_of_patience = jnp.asarray(False)
        if val is not None:
            val, out_of_patience = _validate(cfg, inputs, val, params, opt_state, step,
                                             applied, stopping)
        code = jnp.select(
            [~finite, small_change, small_grad, out_of_patience, last],
            [result.NONFINITE, result.TOL, result.GRAD_TOL, result.PATIENCE, result.MAX_STEPS],
            result.RUNNING,
        ).astype(jnp.int32)
        ends = code != result.RUNNING

    if cfg.sink is not None:
        # Under vmap the loop body also runs for lanes that have already stopped (their
        # results are discarded) and the cond becomes a select that always calls back:
        # passing the flag lets the host drop those calls.
        report = running & (
            (step % cfg.progress_every == 0) | ends | last
        )
        callback = functools.partial(_report, cfg.sink)
        jax.lax.cond(
            report, lambda: jax.debug.callback(callback, report, step, loss), lambda: None
        )

    carry = c._replace(
        step=step,
        params=params,
        opt_state=opt_state,
        permutation=permutation,
        prev_loss=jnp.where(running, loss, c.prev_loss),
        code=code,
        aux=_select(applied, aux, c.aux) if cfg.has_aux else None,
        val=val,
    )
    return carry, jnp.where(applied, loss, jnp.nan), jnp.where(applied, grad_norm, jnp.nan)


def _while_body(cfg: LoopConfig, inputs: LoopInputs, c: _Carry) -> _Carry:
    new, loss, grad_norm = _step(cfg, inputs, c, c.code == result.RUNNING)
    return new._replace(losses=c.losses.at[c.step].set(loss),
                        grad_norms=c.grad_norms.at[c.step].set(grad_norm))


def _scan_body(cfg: LoopConfig, inputs: LoopInputs, c: _Carry, t: jax.Array
               ) -> tuple[_Carry, jax.Array]:
    # Only "nonfinite" can end a run before its last step here; once it has, later
    # iterations change nothing and record NaN. So a run is still going at iteration
    # ``t`` exactly when it has applied ``t`` steps: no stop code is carried (under
    # vmap, one select and one copy per step fewer). Both history entries go out as
    # one array: one write per step rather than two.
    new, loss, grad_norm = _step(cfg, inputs, c, c.step == t)
    return new, jnp.stack([loss, grad_norm])


def _run(cfg: LoopConfig, inputs: LoopInputs) -> result.FitResult:
    global _trace_count
    _trace_count += 1
    if cfg.ravel is not None:
        inputs = inputs._replace(params=cfg.ravel(inputs.params))
    if cfg.init is not None:
        inputs = inputs._replace(opt_state=cfg.init(inputs.params, inputs.hyperparams))
    batch0 = inputs.data
    if cfg.batch_size is not None:
        batch0 = jax.tree.map(lambda x: x[: cfg.batch_size], inputs.data)
    loss_spec, aux_spec = jax.eval_shape(lambda p: _loss(cfg, inputs, p, batch0), inputs.params)
    inputs = inputs._replace(
        tol=jnp.asarray(inputs.tol, loss_spec.dtype),
        grad_tol=jnp.asarray(inputs.grad_tol, loss_spec.dtype),
        patience=jnp.asarray(inputs.patience, jnp.int32),
    )
    first = _first_carry(cfg, inputs, loss_spec.dtype, aux_spec)
    if cfg.early_stopping:
        carry = jax.lax.while_loop(
            lambda c: c.code == result.RUNNING, functools.partial(_while_body, cfg, inputs), first
        )
    else:
        # A fixed number of steps: a scan that emits the histories rather than carrying
        # them, so that under vmap no step selects every lane's whole history.
        carry, histories = jax.lax.scan(
            functools.partial(_scan_body, cfg, inputs),
            first._replace(losses=None, grad_norms=None, code=None),
            jnp.arange(cfg.max_steps, dtype=jnp.int32),
        )
        code = jnp.where(carry.step == cfg.max_steps, result.MAX_STEPS, result.NONFINITE)
        carry = carry._replace(losses=histories[:, 0], grad_norms=histories[:, 1], code=code)
    params, opt_state, val = carry.params, carry.opt_state, carry.val
    if val is not None and cfg.restore_best:
        params, opt_state = val.best_params, val.best_opt_state
    if cfg.restore is not None:
        params, opt_state = cfg.restore(params, opt_state)
    return result.FitResult(
        params=params,
        opt_state=opt_state,
        losses=carry.losses,
        grad_norms=carry.grad_norms,
        num_steps=carry.step,
        stop_code=carry.code,
        converged=(carry.code == result.TOL) | (carry.code == result.GRAD_TOL),
        aux=carry.aux,
        val_losses=None if val is None else val.losses,
        best_val_loss=None if val is None else val.best_loss,
        best_epoch=None if val is None else val.best_epoch,
    )


#: The compiled loop: ``run(config, inputs) -> FitResult``; ``run.lower(...)`` to inspect.
run = jax.jit(_run, static_argnums=0)
