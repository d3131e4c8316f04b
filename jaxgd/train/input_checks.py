"""Input checks of :func:`jaxgd.fit`, all run before anything is compiled.

Each raises an error that names the argument at fault and says how to fix it. Values that
are traced (``fit`` inside ``jit`` or ``vmap``) have no concrete value and pass the value
checks unchecked; shapes, dtypes and signatures are always checked.
"""

from __future__ import annotations

import inspect
import math
import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core import checks as core_checks
from jaxgd.core.cache import BoundedCache
from jaxgd.core.tree import check_float_params, dtype_of, shapes_key
from jaxgd.train import step


def _count(name: str, value: Any) -> int:
    """``value`` as a Python int ≥ 1, or an error naming ``name``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a positive integer, got the bool {value!r}.")
    try:
        count = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be a positive integer, got {value!r}.") from None
    if count <= 0:
        raise ValueError(f"{name} must be a positive integer, got {count}.")
    return count


def check_data(data: Any, name: str = "data") -> int:
    """Check that the leaves of ``data`` share a non-empty leading example axis; return
    its size."""
    leaves = jax.tree_util.tree_leaves_with_path(data)
    if not leaves:
        raise ValueError(f"{name} has no arrays; pass a pytree of arrays such as (X, y).")
    sizes = {}
    for path, leaf in leaves:
        where = jax.tree_util.keystr(path) or "(root)"
        shape = jnp.shape(leaf)
        if not shape:
            raise ValueError(
                f"{name} leaf {where} is a scalar; every leaf needs a leading example axis."
            )
        sizes[where] = shape[0]
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{w}: {s}" for w, s in sizes.items())
        raise ValueError(
            f"the leaves of {name} must share the leading (example) axis size, but got {listed}."
        )
    n = next(iter(sizes.values()))
    if n == 0:
        raise ValueError(f"{name} has no examples (leading axis size 0).")
    return n


def check_batch_size(batch_size: Any, n: int | None) -> int | None:
    """``None`` (full batch) or an int in ``[1, n]``."""
    if batch_size is None:
        return None
    if n is None:
        raise ValueError("batch_size was given but data is None; batches need data to draw from.")
    k = _count("batch_size", batch_size)
    if k > n:
        raise ValueError(
            f"batch_size={k} is larger than the data set ({n} examples); use at most {n}, "
            "or batch_size=None for full-batch gradient descent."
        )
    return k


def check_batch_placement(batch_size: int | None, placement: tuple | None) -> None:
    """A batch split over devices along its examples (data parallelism) must split
    evenly: ``batch_size`` a multiple of the number of devices its examples go to."""
    if batch_size is None or placement is None:
        return
    for sharding in placement:
        axes = sharding.spec[0] if sharding is not None and sharding.spec else None
        if axes is None:
            continue
        axes = axes if isinstance(axes, tuple) else (axes,)
        devices = math.prod(sharding.mesh.shape[a] for a in axes)
        if batch_size % devices:
            raise ValueError(
                f"batch_size={batch_size} does not split evenly over the {devices} devices "
                f"that the data's examples are sharded over (mesh axes {axes}); use a "
                f"multiple of {devices}.")


def check_steps(max_steps: Any, num_epochs: Any, steps_per_epoch: int) -> int:
    """The run length in steps: ``max_steps``, or ``num_epochs * steps_per_epoch``."""
    if max_steps is not None and num_epochs is not None:
        raise ValueError(
            f"give max_steps or num_epochs, not both (got max_steps={max_steps!r}, "
            f"num_epochs={num_epochs!r}); one epoch is {steps_per_epoch} step(s) here."
        )
    if num_epochs is not None:
        return _count("num_epochs", num_epochs) * steps_per_epoch
    return _count("max_steps", 1000 if max_steps is None else max_steps)


def check_tolerance(name: str, value: Any) -> None:
    """``None`` or a number ≥ 0 (possibly traced)."""
    if value is not None:
        core_checks.non_negative(name, value)


def check_patience(patience: Any, val_data: Any) -> int | None:
    """``None`` or a positive number of epochs, allowed only with ``val_data``."""
    if patience is None:
        return None
    if val_data is None:
        raise ValueError(
            "patience (early stopping) needs val_data: the validation loss decides when to stop."
        )
    if isinstance(patience, jax.core.Tracer):  # vmapped over: checked by nobody, like tol
        return patience
    return _count("patience", patience)


def check_val_data(val_data: Any, data: Any) -> None:
    """``val_data`` is evaluated as ``loss_fn(params, val_data)``, so it needs ``data``."""
    if val_data is not None:
        if data is None:
            raise ValueError(
                "val_data was given but data is None; validation calls loss_fn(params, "
                "val_data), so the loss must take a batch."
            )
        check_data(val_data, "val_data")


def check_restore_best(restore_best: Any, val_data: Any, batch_size: int | None) -> str:
    """What the loop keeps a copy of (:data:`jaxgd.train.step.LAST_FINITE`,
    ``BEST_TRAIN`` or ``BEST_VAL``) for ``restore_best`` (``None``: on with ``val_data``)."""
    if restore_best is not None and not isinstance(restore_best, (bool, np.bool_)):
        raise TypeError(f"restore_best must be True, False or None, got {restore_best!r}.")
    if restore_best is None:
        restore_best = val_data is not None
    if not restore_best:
        return step.LAST_FINITE
    if val_data is not None:
        return step.BEST_VAL
    if batch_size is not None:
        raise ValueError(
            "restore_best=True with mini-batches needs val_data: a batch's loss is too noisy "
            "to pick the best params by. Pass val_data (the whole training set will do), or "
            "restore_best=False."
        )
    return step.BEST_TRAIN


NONFINITE_ACTIONS = ("stop", "skip")


def check_on_nonfinite(on_nonfinite: Any) -> None:
    if on_nonfinite not in NONFINITE_ACTIONS:
        raise ValueError(f"on_nonfinite must be one of {NONFINITE_ACTIONS}, got "
                         f"{on_nonfinite!r}.")


def check_ema_decay(ema_decay: Any) -> None:
    """``None`` or one decay rate in [0, 1) (possibly traced)."""
    if ema_decay is None:
        return
    core_checks.decay_rate("ema_decay", ema_decay)
    if np.ndim(ema_decay) != 0:
        raise ValueError(f"ema_decay must be a scalar, got shape {np.shape(ema_decay)}; "
                         "vmap over fit (or use jaxgd.sweep) for several values.")


def check_positive_int(name: str, value: Any) -> int:
    """A positive Python int (``progress_every``)."""
    return _count(name, value)


def check_params(params: Any) -> None:
    """Parameters must be a non-empty tree of floating-point arrays."""
    if not jax.tree.leaves(params):
        raise ValueError("params has no arrays; there is nothing to optimize.")
    check_float_params(params)


def _spec(tree: Any) -> Any:
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)), tree)


def _check_arity(loss_fn: Callable, with_batch: bool) -> None:
    try:
        signature = inspect.signature(loss_fn)
    except (TypeError, ValueError):
        return  # no signature (some builtins): the eval_shape call below will tell
    try:
        signature.bind(*((None, None) if with_batch else (None,)))
    except TypeError:
        if with_batch:
            raise TypeError(
                f"data was given, so loss_fn is called as loss_fn(params, batch), but its "
                f"signature {signature} does not take two arguments. Write it as "
                "loss_fn(params, batch), or pass data=None."
            ) from None
        raise TypeError(
            f"data is None, so loss_fn is called as loss_fn(params), but its signature "
            f"{signature} needs more arguments. Pass data=(X, y, ...) for "
            "loss_fn(params, batch), or close over the data."
        ) from None


_CHECKED = BoundedCache(256)


def check_loss_fn(
    loss_fn: Callable, params: Any, batch: Any, has_aux: bool, with_batch: bool
) -> tuple[jax.ShapeDtypeStruct, Any]:
    """Check the calling convention and output of ``loss_fn`` with ``jax.eval_shape``
    (nothing is computed); return the shapes of the loss and of the auxiliary output.

    A check that passed is remembered for the same loss function and input shapes, so
    repeated ``fit`` calls do not trace the loss again before running."""
    try:
        key = (loss_fn, has_aux, with_batch, shapes_key((params, batch)))
    except TypeError:  # leaves without a shape: check every time
        return _check_loss_fn(loss_fn, params, batch, has_aux, with_batch)
    return _CHECKED.get(key, lambda: _check_loss_fn(loss_fn, params, batch, has_aux,
                                                    with_batch))


def _check_loss_fn(loss_fn, params, batch, has_aux, with_batch):
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}.")
    _check_arity(loss_fn, with_batch)
    how = "loss_fn(params, batch)" if with_batch else "loss_fn(params)"
    args = (_spec(params), _spec(batch)) if with_batch else (_spec(params),)
    try:
        out = jax.eval_shape(loss_fn, *args)
    except TypeError as e:
        raise TypeError(f"calling {how} failed while checking it before compiling: {e}") from e
    aux = None
    if has_aux:
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(
                f"has_aux=True, so {how} must return a pair (loss, aux), but it returned "
                f"{jax.tree.structure(out)}."
            )
        out, aux = out
    elif isinstance(out, (tuple, list)):
        raise TypeError(
            f"{how} returned a {type(out).__name__} of {len(out)}; it must return a scalar "
            "loss, or (loss, aux) with has_aux=True."
        )
    shape, dtype = getattr(out, "shape", None), getattr(out, "dtype", None)
    if shape != () or dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(
            f"{how} must return a real floating-point scalar (e.g. the mean loss over the "
            f"batch), but it returned shape {shape} and dtype {dtype}."
        )
    return out, aux


def as_key(key: Any) -> jax.Array:
    """``None`` -> ``PRNGKey(0)``, an int -> ``PRNGKey(int)``, a key (typed, as from
    ``jax.random.key``, or raw, as from ``jax.random.PRNGKey``; traced or not) unchanged;
    anything else a ``TypeError`` naming ``key``."""
    if key is None:
        return jax.random.PRNGKey(0)
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
        return jax.random.PRNGKey(int(key))
    dtype, shape = getattr(key, "dtype", None), getattr(key, "shape", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key) and shape == ():
        return key
    raw = jax.eval_shape(jax.random.PRNGKey, 0)
    if dtype == raw.dtype and shape == raw.shape:
        return key
    described = (f"an array of dtype {dtype} and shape {shape}" if dtype is not None
                 else f"{type(key).__name__} {key!r}")
    raise TypeError(
        f"key must be an int seed or one PRNG key (jax.random.key(0), or "
        f"jax.random.PRNGKey(0): {raw.dtype} of shape {raw.shape}), got {described}."
    )


_INIT_SHAPES = BoundedCache(64)


def check_opt_state(optimizer: Any, params: Any, opt_state: Any) -> None:
    """Check that a state to resume from has the structure, shapes and dtypes of
    ``optimizer.init(params)`` (traced once per optimizer setting and params shapes)."""
    key = (optimizer.update, shapes_key(params))
    expected = _INIT_SHAPES.get(key, lambda: jax.eval_shape(optimizer.init, _spec(params)))
    if jax.tree.structure(opt_state) != jax.tree.structure(expected):
        raise ValueError(
            "opt_state does not match this optimizer and params: optimizer.init(params) "
            f"has the structure {jax.tree.structure(expected)}, but opt_state has "
            f"{jax.tree.structure(opt_state)}. Resume with the state from the same "
            "optimizer (e.g. a FitResult's opt_state)."
        )
    paths = jax.tree_util.tree_leaves_with_path(expected)
    for (path, want), got in zip(paths, jax.tree.leaves(opt_state), strict=True):
        if np.shape(got) != want.shape or dtype_of(got) != want.dtype:
            raise ValueError(
                f"opt_state leaf {jax.tree_util.keystr(path)} has shape {np.shape(got)} and "
                f"dtype {dtype_of(got)}, but optimizer.init(params) gives {want.shape} and "
                f"{want.dtype}."
            )
