"""Checks of hyperparameter values, raised when an optimizer is built.

Values that are traced (inside ``jit`` or ``vmap``) have no concrete value yet and
cannot be checked at trace time: they pass unchecked. Every check here is keyed by the
hyperparameter's name, so the factories and :func:`jaxgd.set_hyperparams` share them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def concrete(value) -> np.ndarray | None:
    """``value`` as a numpy array, or ``None`` when it is traced or not numeric."""
    if value is None or callable(value) or isinstance(value, jax.core.Tracer):
        return None
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _check(name: str, value, ok: Callable[[np.ndarray], np.ndarray], expected: str) -> None:
    if isinstance(value, (str, bytes)):
        # numpy would read "0.1" as a number here, and JAX fail on it much later.
        raise TypeError(f"{name} must be a number, got the string {value!r}.")
    array = concrete(value)
    if array is None:
        return
    if not np.all(ok(array)):
        shown = array.item() if array.size == 1 else array
        raise ValueError(f"{name} must be {expected}, got {shown!r}.")


def finite(name: str, value) -> None:
    """A finite number of either sign (scale factors)."""
    _check(name, value, np.isfinite, "a finite number")


def non_negative(name: str, value) -> None:
    """A finite number ≥ 0 (learning rates, weight decay, ...)."""
    _check(name, value, lambda x: np.isfinite(x) & (x >= 0), "a finite number >= 0")


def positive(name: str, value) -> None:
    """A finite number > 0 (eps where it would divide by zero, norms, ...)."""
    _check(name, value, lambda x: np.isfinite(x) & (x > 0), "a finite number > 0")


def decay_rate(name: str, value) -> None:
    """A rate in [0, 1) (``b1``, ``b2``, ``decay``, ``momentum``)."""
    _check(name, value, lambda x: (x >= 0) & (x < 1), "in [0, 1)")


def learning_rate(value) -> None:
    """A finite number ≥ 0, or a schedule ``step -> value`` (checked when called)."""
    if isinstance(value, (str, bytes)):
        raise TypeError(
            f"learning_rate must be a number or a schedule step -> value, got the string "
            f"{value!r}; pass a number (e.g. float(...) of a value read from a config)."
        )
    if not callable(value):
        non_negative("learning_rate", value)


def adam_moments(b1, b2, eps, eps_root) -> None:
    """The arguments of Adam-like scalings: two rates in [0, 1), ``eps_root >= 0``, and
    ``eps > 0`` unless ``eps_root > 0`` keeps the square root away from zero."""
    decay_rate("b1", b1)
    decay_rate("b2", b2)
    non_negative("eps_root", eps_root)
    root = concrete(eps_root)
    if root is None or not np.all(root > 0):
        positive("eps", eps)


BY_NAME: dict[str, Callable[[str, object], None]] = {
    "learning_rate": lambda _, v: learning_rate(v),
    "b1": decay_rate,
    "b2": decay_rate,
    "decay": decay_rate,
    "momentum": decay_rate,
    "eps": non_negative,  # > 0 where it divides: checked by the blocks that know
    "eps_root": non_negative,
    "initial_scale": non_negative,
    "initial_accumulator_value": non_negative,
    "weight_decay": non_negative,
    "max_norm": positive,
    "max_delta": non_negative,
    "damping": non_negative,
    "cg_tol": non_negative,
    "rho": decay_rate,
    "threshold": finite,
    "smooth_beta": positive,
    "eta_minus": positive,
    "eta_plus": positive,
    "clipping_threshold": positive,
    "eta": non_negative,
    "gamma": non_negative,
    "min_norm": non_negative,
    "min_step_size": non_negative,
    "max_step_size": non_negative,
    "max_learning_rate": non_negative,
    "weight_decay_rate": non_negative,
    "trust_coefficient": finite,
    "f_min": finite,
    "alpha": finite,
    "beta": finite,
    "beta3": decay_rate,
    "b3": decay_rate,
    "clip_threshold": positive,
    "adam_b1": decay_rate,
    "adam_b2": decay_rate,
    "adam_eps_root": non_negative,
    "adam_weight_decay": non_negative,
    "adam_learning_rate": lambda name, v: None if callable(v) else non_negative(name, v),
    "consistent_rms": non_negative,
    "weight_lr_power": finite,
    "estim_lr0": positive,
    "estim_lr_coef": positive,
    "init_estim_sq_dist": positive,
}


def count(name: str, value) -> None:
    """A concrete whole number >= 1 (a size or a period that shapes the program)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}.")


def params_given(name: str, params, why: str = "") -> None:
    """The check of every rule that reads the params (``update(updates, state)`` gives
    ``None``): an error naming the rule and saying what it needs them for."""
    if params is None:
        raise ValueError(f"{name} needs params{why}: call update(updates, state, params).")


def check_by_name(name: str, value) -> None:
    """Run the check registered for ``name``, if there is one."""
    check = BY_NAME.get(name)
    if check is not None:
        check(name, value)


def state_dtype(name: str, dtype: Any) -> Any:
    """``dtype`` made canonical (float64 is float32 unless x64 is on, as optax does), or
    ``None`` for "each parameter's dtype". Raises a ``ValueError`` naming ``name`` for a
    dtype that is not floating point: an integer accumulator would round every step to 0.
    """
    if dtype is None:
        return None
    try:
        canonical = jax.dtypes.canonicalize_dtype(dtype)
    except TypeError as error:
        raise ValueError(f"{name} must be a floating-point dtype or None, got {dtype!r}.") \
            from error
    if not jnp.issubdtype(canonical, jnp.inexact):
        raise ValueError(
            f"{name} must be a floating-point dtype (e.g. jnp.bfloat16) or None, got "
            f"{np.dtype(canonical).name}."
        )
    return canonical
