"""``jaxgd.fit``: run an optimizer on a loss until a stopping rule fires, on the device."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core import sharding
from jaxgd.core.base import GradientTransformation, OptState, Params, accepts_extra_args
from jaxgd.core.hyperparams import in_program_init
from jaxgd.train import batching, flat, input_checks, loop, step
from jaxgd.train.flat import program_inputs as program_inputs
from jaxgd.train.progress import ProgressSink, resolve_sink
from jaxgd.train.result import NONFINITE, FitResult, converged


class _Prepared(NamedTuple):
    """A checked call of :func:`fit`: the loop's path (:mod:`jaxgd.train.flat`), its
    static config and traced inputs, and the user's loss (to evaluate results at)."""

    path: flat.FlatPath | flat.TreePath
    config: step.LoopConfig
    inputs: step.LoopInputs
    loss_fn: Callable


def _prepare(
    loss_fn: Callable,
    params: Params,
    optimizer: GradientTransformation,
    data: Any,
    *,
    batch_size: int | None,
    max_steps: int | None,
    num_epochs: int | None,
    key: Any,
    tol: Any,
    grad_tol: Any,
    val_data: Any,
    patience: int | None,
    has_aux: bool,
    progress: bool | ProgressSink,
    progress_every: int | None,
    restore_best: bool | None,
    on_nonfinite: str,
    opt_state: OptState | None,
    flat_params: bool | None,
    ema_decay: Any = None,
    caller_inputs: Any = None,
    trial_axis: str | None = None,
) -> _Prepared:
    """Check every input (before anything is compiled) and split them into the static
    config and the traced inputs of :func:`jaxgd.train.loop.run`, on the path
    :func:`jaxgd.train.flat.plan` picks."""
    if not (callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update",
                                                                            None))):
        raise TypeError(
            f"optimizer must be a gradient transformation (with init and update), got "
            f"{type(optimizer).__name__}; e.g. jaxgd.sgd(0.1)."
        )
    input_checks.check_params(params)
    sharding.check_explicit_mesh_is_set((params, data, val_data, opt_state),
                                        "params, data or optimizer state")
    n = None if data is None else input_checks.check_data(data)
    batch_size = input_checks.check_batch_size(batch_size, n)
    steps_per_epoch = batching.steps_per_epoch(n or 1, batch_size)
    max_steps = input_checks.check_steps(max_steps, num_epochs, steps_per_epoch)
    input_checks.check_tolerance("tol", tol)
    input_checks.check_tolerance("grad_tol", grad_tol)
    input_checks.check_val_data(val_data, data)
    patience = input_checks.check_patience(patience, val_data)
    keep = input_checks.check_restore_best(restore_best, val_data, batch_size)
    input_checks.check_on_nonfinite(on_nonfinite)
    input_checks.check_ema_decay(ema_decay)
    if key is not None:  # checked where it goes unused too (full batch): a bad call
        key = input_checks.as_key(key)
    sink = resolve_sink(progress)
    if progress_every is None:
        progress_every = max(1, max_steps // 100)
    progress_every = input_checks.check_positive_int("progress_every", progress_every)

    placement = None if batch_size is None else batching.shardings(data)
    input_checks.check_batch_placement(batch_size, placement)
    batch = data if batch_size is None else batching.batch_spec(data, batch_size, placement)
    input_checks.check_loss_fn(loss_fn, params, batch, has_aux, with_batch=data is not None)
    if opt_state is not None:
        input_checks.check_opt_state(optimizer, params, opt_state)
    if val_data is not None:
        input_checks.check_loss_fn(loss_fn, params, val_data, has_aux, with_batch=True)

    # An optimizer that can build its state inside the compiled program, from its
    # hyperparameter values passed as an input, does so (jaxgd.core.hyperparams);
    # others (optax's, user-made) build it eagerly, on the params as the loop holds them.
    init = hyperparams = None
    if opt_state is None:
        init, hyperparams = in_program_init(optimizer)
    path = flat.plan(loss_fn, params, optimizer, flat_params, batch, data is not None)
    params, opt_state = path.enter(params, opt_state, None if init else optimizer.init)

    loss, loss_args = path.loss(loss_fn, caller_inputs)
    early_stopping = tol is not None or grad_tol is not None or val_data is not None
    config = step.LoopConfig(
        loss=loss,
        update=optimizer.update,
        pass_extra_args=accepts_extra_args(optimizer.update),
        has_aux=bool(has_aux),
        with_data=data is not None,
        batch_size=batch_size,
        batch_placement=placement,
        max_steps=max_steps,
        steps_per_epoch=steps_per_epoch,
        keep=keep,
        on_nonfinite=on_nonfinite,
        sink=sink,
        progress_every=progress_every,
        early_stopping=early_stopping,
        trial_axis=trial_axis,
        init=init,
        params_placement=sharding.ParamsPlacement.of(params),
        average_params=ema_decay is not None,
        evaluate_last=(trial_axis is not None and batch_size is None and not early_stopping
                       and keep == step.LAST_FINITE),
    )
    inputs = step.LoopInputs(
        loss_args=loss_args,
        params=params,
        opt_state=opt_state,
        hyperparams=hyperparams,
        data=data,
        val_data=val_data,
        key=input_checks.as_key(key) if batch_size is not None else np.zeros((), np.uint32),
        tol=-jnp.inf if tol is None else tol,
        grad_tol=-jnp.inf if grad_tol is None else grad_tol,
        patience=jnp.iinfo(jnp.int32).max if patience is None else patience,
        ema_decay=ema_decay,
    )
    return _Prepared(path, config, inputs, loss_fn)


def fit(
    loss_fn: Callable,
    params: Params,
    optimizer: GradientTransformation,
    data: Any = None,
    *,
    batch_size: int | None = None,
    max_steps: int | None = None,
    num_epochs: int | None = None,
    key: Any = None,
    tol: float | jax.Array | None = None,
    grad_tol: float | jax.Array | None = None,
    val_data: Any = None,
    patience: int | None = None,
    has_aux: bool = False,
    progress: bool | ProgressSink = False,
    progress_every: int | None = None,
    restore_best: bool | None = None,
    on_nonfinite: str = "stop",
    opt_state: OptState | None = None,
    flat_params: bool | None = None,
    ema_decay: float | jax.Array | None = None,
) -> FitResult:
    """Minimise ``loss_fn`` from ``params`` with ``optimizer``, in one compiled loop.

    The loop (epochs of steps, see :mod:`jaxgd.train.loop`; the exact step and stopping
    rules are in :mod:`jaxgd.train.step`) runs and stops on the device. ``fit`` is a pure
    function of its array inputs: it can be called under ``jax.jit`` and ``jax.vmap``-ed
    over learning rates (built inside the mapped function, e.g. ``jaxgd.sgd(lr)``), keys,
    initial params or tolerances. Calling it again with the same ``loss_fn`` and
    ``optimizer`` objects and the same sizes and options reuses the compiled program.

    Data regimes (see :mod:`jaxgd.train.batching`):

    * ``data=None``: the loss is ``loss_fn(params)`` (test functions, closed-over data).
    * ``data`` a pytree of arrays sharing a leading example axis, e.g. ``(X, y)``: the
      loss is ``loss_fn(params, batch)``, with ``batch`` like ``data``. ``batch_size=None``
      is batch gradient descent (the whole set every step; an epoch is one step);
      ``batch_size=1`` stochastic and ``batch_size=k`` mini-batch gradient descent, the
      examples reshuffled every epoch from ``key``. An epoch is ``n // k`` steps; the
      ``n % k`` examples left at the end of each permutation are dropped so shapes stay
      static: with ``k`` dividing ``n`` every example is used exactly once per epoch,
      otherwise at most once, the dropped ones rotating through the reshuffles.

    Args:
      loss_fn: ``loss_fn(params[, batch])`` returning a real scalar (``(loss, aux)`` with
        ``has_aux=True``).
      params: the initial parameters, a pytree of floating-point arrays.
      optimizer: a gradient transformation (jaxgd or optax).
      data: the training data, or ``None``.
      batch_size: ``None``, or the number of examples per step, ``1 <= k <= n``.
      max_steps: the largest number of steps, one per batch (default 1000). Not with
        ``num_epochs``.
      num_epochs: run ``num_epochs * steps_per_epoch`` steps instead.
      key: PRNG key (or int seed) of the shuffling; default ``PRNGKey(0)``. Unused for
        full-batch descent.
      tol: stop when :math:`|f_t - f_{t-1}| \\le \\mathrm{tol}\\cdot\\max(|f_t|,
        \\text{tiny})`, the relative change of the loss between consecutive finite steps.
      grad_tol: stop when the global gradient norm :math:`\\|g_t\\|_2 \\le` ``grad_tol``.
      val_data: validation data like ``data``; its loss ``loss_fn(params, val_data)`` is
        evaluated at the end of every epoch and when the run stops (at the evaluation
        params of a schedule-free optimizer, see Returns).
      patience: with ``val_data``, stop after ``patience`` consecutive epochs whose
        validation loss does not improve on the best so far (early stopping).
      has_aux: ``loss_fn`` returns ``(loss, aux)``; the aux of the last finite step is
        returned in :attr:`FitResult.aux`.
      progress: ``True`` for a tqdm progress bar (step, loss, steps per second; needs
        tqdm), or a callable ``sink(step, loss)``. Fed from the compiled loop by
        ``jax.debug.callback`` every ``progress_every`` steps and at the last step; with
        ``False`` (the default) nothing is compiled in for it.
      progress_every: steps between reports; default ``max(1, max_steps // 100)``.
      restore_best: return the params (and opt state) of the best validation loss (with
        ``val_data``) or of the best training loss (full-batch runs: every step's loss
        and the last params'), rather than the last ones. Default: on with ``val_data``,
        off otherwise. Mini-batch runs need ``val_data`` for it (a batch's loss is too
        noisy to pick params by).
      on_nonfinite: what a step whose loss or gradient is NaN or infinite does:
        ``"stop"`` the run, or ``"skip"`` the batch and go on (counted in
        :attr:`FitResult.num_skipped`; a whole epoch of skipped batches in a row stops
        the run, the parameters being at fault then). A run that stops on a non-finite
        value returns the last parameters whose loss and gradient were finite.
      opt_state: resume from this optimizer state instead of ``optimizer.init(params)``.
      flat_params: hold the parameters as one flat vector inside the loop (the many-leaf
        path, :mod:`jaxgd.train.flat`): ``None`` decides by a measured rule
        (flatten-invariant optimizer, several leaves of one dtype), ``True`` / ``False``
        force it. The returned params and state have the caller's layout either way.
      ema_decay: :math:`\\beta \\in [0, 1)`: also keep the bias-corrected exponential
        moving average of the params after each step
        (:func:`jaxgd.params_ema_update`), returned as :attr:`FitResult.ema_params`
        (it follows ``params`` back after a non-finite stop and with ``restore_best``).
        May be traced (vmapped over).

    Returns:
      A :class:`FitResult`. ``losses`` and ``grad_norms`` have length ``max_steps``, NaN
      for the steps not taken; ``stop_reason`` is one of "max_steps", "tol", "grad_tol",
      "patience" or "nonfinite". After a "nonfinite" stop, ``loss_fn(result.params,
      batch)`` is finite and equals ``losses[num_steps]``, the last finite entry.

      With a schedule-free optimizer (:func:`jaxgd.schedule_free`, found anywhere in the
      optimizer's state), ``params`` are the evaluation params :math:`x`
      (:func:`jaxgd.schedule_free_eval_params`), where the validation loss is computed
      too; the training params :math:`y`, at which ``losses`` and gradients are taken
      and which go with ``opt_state``, are :attr:`FitResult.train_params` (resume with
      ``fit(loss_fn, result.train_params, optimizer, opt_state=result.opt_state)``).

    Raises:
      ValueError, TypeError: on bad inputs, naming the argument, before compiling.

    Example:
      >>> import jax.numpy as jnp, jaxgd
      >>> from jaxgd.train import fit
      >>> res = fit(lambda p: jnp.sum((p - 3.0) ** 2), jnp.zeros(2), jaxgd.sgd(0.1),
      ...           grad_tol=1e-4)
      >>> res.stop_reason, bool(res.converged)
      ('grad_tol', True)
    """
    run = _prepare(
        loss_fn, params, optimizer, data, batch_size=batch_size, max_steps=max_steps,
        num_epochs=num_epochs, key=key, tol=tol, grad_tol=grad_tol, val_data=val_data,
        patience=patience, has_aux=has_aux, progress=progress, progress_every=progress_every,
        restore_best=restore_best, on_nonfinite=on_nonfinite, opt_state=opt_state,
        flat_params=flat_params, ema_decay=ema_decay,
    )
    sink = run.config.sink
    if sink is not None and hasattr(sink, "open"):
        sink.open(run.config.max_steps)
    out = finish(run.path.run(loop.run, run.config, run.inputs))
    if sink is not None and not isinstance(out.num_steps, jax.core.Tracer):
        jax.effects_barrier()  # every report delivered before the bar is closed
        if hasattr(sink, "close"):
            sink.close()
    return out


def finish(result: FitResult) -> FitResult:
    """A result of :func:`fit_traced` (or a batch of them) completed after the caller's
    program: its flat parts unflattened (:func:`jaxgd.train.flat.finish`) and, for a
    run under a ``trial_axis``, its records derived on the host from its history and
    stop code (:func:`_records`)."""
    result = flat.finish(result)
    if result.grad_norms is None:
        result = _records(result)
    return result


def _records(result: FitResult) -> FitResult:
    """The records that the loop leaves to the host under a trial axis (see
    :func:`jaxgd.train.loop._finish`), as NumPy arrays: ``losses`` and ``grad_norms``
    (the history's columns), ``converged``, and where the loop did not count them
    ``best_loss`` and ``best_step`` (:func:`jaxgd.train.loop.best_of`, the in-program
    formula), ``num_steps`` (the finite steps, less the update a non-finite stop
    undoes) and ``num_skipped`` (0)."""
    history = np.asarray(result.losses)
    losses = history[..., 0]
    stop = np.asarray(result.stop_code)
    best_loss, best_step = result.best_loss, result.best_step
    if best_loss is None:  # both ways of stopping: see best_of
        best_loss, best_step = loop.best_of(losses, skips=True, xp=np)
    num_steps = result.num_steps
    if num_steps is None:
        taken = np.sum(~np.isnan(losses), axis=-1, dtype=np.int32)
        num_steps = np.where(stop == NONFINITE, np.maximum(taken - 1, 0), taken).astype(np.int32)
    num_skipped = result.num_skipped
    if num_skipped is None:
        num_skipped = np.zeros(stop.shape, np.int32)
    return result._replace(
        losses=losses, grad_norms=history[..., 1], num_steps=num_steps,
        converged=converged(stop), best_loss=best_loss,
        best_step=best_step, num_skipped=num_skipped)


def fit_traced(loss_fn: Callable, params: Params, optimizer: GradientTransformation,
               data: Any = None, *, caller_inputs: Any = None,
               trial_axis: str | None = None, **kwargs: Any
               ) -> tuple[FitResult, Callable[..., Any]]:
    """:func:`fit` (same keywords, no progress) for a caller that traces it in a program
    of its own, like :func:`jaxgd.sweep`: ``(result, loss_at)``.

    * ``result`` may hold parts that :func:`finish` converts or computes after the
      caller's program (inside it they could cost compile time);
    * ``loss_at(*batch)`` is the output of ``loss_fn`` at ``result.params`` (inside the
      program);
    * ``caller_inputs``: :func:`program_inputs` of the start params,
      passed in as inputs of the caller's program, so that they are not its constants;
    * ``trial_axis``: the name of the caller's ``vmap`` axis over runs, if any: the
      early-stopping loop then runs its epochs while any run goes on, so that runs
      sharing a key share each epoch's permutation (see :mod:`jaxgd.train.loop`)."""
    run = _prepare(loss_fn, params, optimizer, data, caller_inputs=caller_inputs,
                   trial_axis=trial_axis, **_with_defaults(kwargs))
    result = run.path.run(loop.run, run.config, run.inputs)
    loss = (run.config.loss, run.inputs.loss_args)
    return result, functools.partial(flat.loss_value, loss_fn, loss, result.params)


def lower_fit(loss_fn: Callable, params: Params, optimizer: GradientTransformation,
              data: Any = None, **kwargs: Any) -> jax.stages.Lowered:
    """The lowered loop ``fit`` would run for these arguments (same keywords), e.g. to
    read its text with ``.as_text()`` or compile it ahead of time with ``.compile()``.
    On the flat path of a big tree on XLA:CPU its params and state are the flat ones
    (``fit`` converts them outside it; see :mod:`jaxgd.train.flat`)."""
    run = _prepare(loss_fn, params, optimizer, data, **_with_defaults(kwargs))
    return _program.lower(run.path, run.config, run.inputs)


def _run_on_path(path, config: step.LoopConfig, inputs: step.LoopInputs) -> FitResult:
    return path.run(loop.run, config, inputs)


#: The program ``fit`` runs (traced once more, for :func:`lower_fit` only).
_program = jax.jit(_run_on_path, static_argnums=(0, 1))


def _with_defaults(kwargs: dict[str, Any]) -> dict[str, Any]:
    defaults = {
        name: p.default
        for name, p in inspect.signature(fit).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    unknown = sorted(set(kwargs) - set(defaults))
    if unknown:
        raise TypeError(f"lower_fit() got unexpected keyword argument(s) {unknown}.")
    return {**defaults, **kwargs}
