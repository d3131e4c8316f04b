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

The step is applied only if :math:`f_t`, :math:`g_t` and :math:`p_{t+1}` are all finite;
otherwise the loop stops with "nonfinite", keeping :math:`(p_t, s_t)`. After an applied
step, the stopping tests are, in this order of precedence:

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


class LoopInputs(NamedTuple):
    """The traced inputs of the loop. ``tol`` / ``grad_tol`` are ``-inf`` and
    ``patience`` is the largest int32 when disabled, so that they never trigger."""

    params: Any
    opt_state: Any
    data: Any
    val_data: Any
    key: jax.Array
    tol: jax.Array
    grad_tol: jax.Array
    patience: jax.Array


class _Carry(NamedTuple):
    step: jax.Array  # updates applied so far
    params: Any
    opt_state: Any
    permutation: jax.Array | None
    prev_loss: jax.Array
    losses: jax.Array
    grad_norms: jax.Array
    code: jax.Array
    aux: Any
    val: validation.Validation | None


_trace_count = 0


def trace_count() -> int:
    """How many times the loop has been traced (compiled) in this process."""
    return _trace_count


def _all_finite(tree: Any) -> jax.Array:
    flags = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return functools.reduce(jnp.logical_and, flags, jnp.asarray(True))


def _select(pred: jax.Array, on_true: Any, on_false: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def _report(sink: ProgressSink, report: Any, step: Any, loss: Any) -> None:
    if report:
        sink(step, loss)


def _loss(cfg: LoopConfig, params: Any, batch: Any) -> tuple[jax.Array, Any]:
    """``(loss, aux)`` of ``cfg.loss_fn`` under either calling convention."""
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


def _step(cfg: LoopConfig, inputs: LoopInputs, c: _Carry) -> tuple[_Carry, jax.Array, jax.Array]:
    """One step from carry ``c``: the new carry (histories untouched) and this step's
    entries of the loss and gradient-norm histories (NaN for a step not applied)."""
    batch, permutation = _batch(cfg, inputs, c)
    (loss, aux), grads = jax.value_and_grad(
        lambda p: _loss(cfg, p, batch), has_aux=True
    )(c.params)
    loss = loss.astype(c.prev_loss.dtype)
    grad_norm = global_norm(grads).astype(c.prev_loss.dtype)
    extra = {}
    if cfg.pass_extra_args:  # for optimizers that use them (line searches, Polyak steps)
        extra = {"value": loss, "grad": grads, "value_fn": lambda p: _loss(cfg, p, batch)[0]}
    updates, new_opt_state = cfg.update(grads, c.opt_state, c.params, **extra)
    new_params = apply_updates(c.params, updates)

    finite = jnp.isfinite(loss) & _all_finite(grads) & _all_finite(new_params)
    step = c.step + finite.astype(jnp.int32)
    params = _select(finite, new_params, c.params)
    opt_state = _select(finite, new_opt_state, c.opt_state)
    tiny = jnp.finfo(loss.dtype).tiny
    small_change = jnp.abs(loss - c.prev_loss) <= inputs.tol * jnp.maximum(jnp.abs(loss), tiny)
    small_grad = grad_norm <= inputs.grad_tol
    last = step >= cfg.max_steps
    stopping = ~finite | small_change | small_grad | last

    val, out_of_patience = c.val, jnp.asarray(False)
    if val is not None:
        # Validate at each epoch end, and once more when stopping mid-epoch so that the
        # returned params are validated too (a step that was not applied changes nothing).
        epoch_end = finite & (step % cfg.steps_per_epoch == 0)
        do_validate = epoch_end | (stopping & (step % cfg.steps_per_epoch != 0))
        val, out_of_patience = jax.lax.cond(
            do_validate,
            lambda v: validation.record(
                v,
                _loss(cfg, params, inputs.val_data)[0],
                (step - 1) // cfg.steps_per_epoch,
                epoch_end,
                inputs.patience,
                params,
                opt_state,
            ),
            lambda v: (v, jnp.asarray(False)),
            val,
        )
    code = jnp.select(
        [~finite, small_change, small_grad, out_of_patience, last],
        [result.NONFINITE, result.TOL, result.GRAD_TOL, result.PATIENCE, result.MAX_STEPS],
        result.RUNNING,
    ).astype(jnp.int32)

    if cfg.sink is not None:
        # Under vmap the loop body also runs for lanes that have already stopped (their
        # results are discarded) and the cond becomes a select that always calls back:
        # passing the flag lets the host drop those calls.
        report = (c.code == result.RUNNING) & (
            (step % cfg.progress_every == 0) | (code != result.RUNNING)
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
        prev_loss=loss,
        code=code,
        aux=_select(finite, aux, c.aux) if cfg.has_aux else None,
        val=val,
    )
    return carry, jnp.where(finite, loss, jnp.nan), jnp.where(finite, grad_norm, jnp.nan)


def _while_body(cfg: LoopConfig, inputs: LoopInputs, c: _Carry) -> _Carry:
    new, loss, grad_norm = _step(cfg, inputs, c)
    return new._replace(losses=c.losses.at[c.step].set(loss),
                        grad_norms=c.grad_norms.at[c.step].set(grad_norm))


def _scan_body(cfg: LoopConfig, inputs: LoopInputs, c: _Carry, _) -> tuple[_Carry, tuple]:
    # Only "nonfinite" can end a run before its last step here; once it has, later
    # iterations change nothing and record NaN.
    running = c.code == result.RUNNING
    new, loss, grad_norm = _step(cfg, inputs, c)
    return _select(running, new, c), (jnp.where(running, loss, jnp.nan),
                                      jnp.where(running, grad_norm, jnp.nan))


def _run(cfg: LoopConfig, inputs: LoopInputs) -> result.FitResult:
    global _trace_count
    _trace_count += 1
    batch0 = inputs.data
    if cfg.batch_size is not None:
        batch0 = jax.tree.map(lambda x: x[: cfg.batch_size], inputs.data)
    loss_spec, aux_spec = jax.eval_shape(lambda p: _loss(cfg, p, batch0), inputs.params)
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
        carry, (losses, grad_norms) = jax.lax.scan(
            functools.partial(_scan_body, cfg, inputs),
            first._replace(losses=None, grad_norms=None), length=cfg.max_steps,
        )
        carry = carry._replace(losses=losses, grad_norms=grad_norms)
    params, opt_state, val = carry.params, carry.opt_state, carry.val
    if val is not None and cfg.restore_best:
        params, opt_state = val.best_params, val.best_opt_state
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
