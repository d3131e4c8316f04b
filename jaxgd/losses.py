"""Cost functions for gradient descent.

Every loss reduces to a scalar by taking the mean over examples, is written in a numerically
stable form and works under ``jax.jit``, ``jax.grad`` and ``jax.vmap``. Shapes are checked at
trace time from the static shapes of the arguments: a mismatch raises ``ValueError`` instead
of silently broadcasting.

The formulas match optax 0.2.8:

* :func:`mse` is ``optax.squared_error(predictions, targets).mean()``,
* :func:`binary_cross_entropy` is ``optax.sigmoid_binary_cross_entropy(logits, labels).mean()``,
* :func:`softmax_cross_entropy` is
  ``optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["binary_cross_entropy", "mse", "softmax_cross_entropy"]

ArrayLike = Any


def _as_float(x: ArrayLike) -> jax.Array:
    """Converts ``x`` to a JAX array with a floating dtype (ints/bools -> default float)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    return x


def mse(predictions: ArrayLike, targets: ArrayLike) -> jax.Array:
    r"""Mean squared error.

    .. math::
        \mathrm{mse}(p, t) = \frac{1}{N} \sum_{i=1}^{N} (p_i - t_i)^2

    where the mean runs over *all* ``N`` elements of the arrays.

    Args:
      predictions: array of any shape.
      targets: array of exactly the same shape as ``predictions`` (no broadcasting).

    Returns:
      A scalar.

    Raises:
      ValueError: if the shapes differ.
    """
    predictions, targets = jnp.asarray(predictions), jnp.asarray(targets)
    if predictions.shape != targets.shape:
        raise ValueError(
            f"mse: predictions shape {predictions.shape} != targets shape {targets.shape}; "
            "reshape explicitly (e.g. predictions.squeeze(-1)) instead of relying on "
            "broadcasting."
        )
    return jnp.mean(jnp.square(_as_float(predictions) - targets))


def binary_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Binary (sigmoid) cross entropy computed from logits.

    With :math:`z` the logits and :math:`y \in \{0, 1\}` the labels,

    .. math::
        \ell(z, y) = -y \log \sigma(z) - (1 - y) \log(1 - \sigma(z))
                   = -y \log\sigma(z) - (1 - y) \log\sigma(-z),

    evaluated through ``jax.nn.log_sigmoid`` so that it stays finite (and has finite
    gradients) for arbitrarily large ``|z|``. The result is the mean of :math:`\ell` over all
    elements. Labels may be float, int or bool; soft labels in ``[0, 1]`` also work.

    Args:
      logits: array of any shape (one logit per binary prediction).
      labels: array of exactly the same shape as ``logits``.

    Returns:
      A scalar.

    Raises:
      ValueError: if the shapes differ.
    """
    logits, labels = _as_float(logits), jnp.asarray(labels)
    if logits.shape != labels.shape:
        raise ValueError(
            f"binary_cross_entropy: logits shape {logits.shape} != labels shape "
            f"{labels.shape}; pass one logit per label (e.g. logits.squeeze(-1))."
        )
    labels = labels.astype(logits.dtype)
    log_p = jax.nn.log_sigmoid(logits)
    log_not_p = jax.nn.log_sigmoid(-logits)
    return jnp.mean(-labels * log_p - (1.0 - labels) * log_not_p)


def softmax_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Softmax cross entropy computed from logits and *integer* class labels.

    With :math:`z \in \mathbb{R}^{C}` the logits of one example and :math:`y` its class,

    .. math::
        \ell(z, y) = -\log \operatorname{softmax}(z)_y
                   = \log \sum_{j=1}^{C} e^{z_j} - z_y,

    evaluated with ``logsumexp`` so it is finite for extreme logits. The result is the mean
    of :math:`\ell` over all examples (all leading axes). Labels outside ``[0, C)`` give NaN.

    Args:
      logits: array of shape ``(..., num_classes)``.
      labels: integer array of shape ``logits.shape[:-1]``.

    Returns:
      A scalar.

    Raises:
      ValueError: if ``logits`` is a scalar or ``labels.shape != logits.shape[:-1]``.
      TypeError: if ``labels`` does not have an integer dtype (one-hot or float labels).
    """
    logits, labels = _as_float(logits), jnp.asarray(labels)
    if logits.ndim == 0:
        raise ValueError("softmax_cross_entropy: logits must have shape (..., num_classes).")
    if labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"softmax_cross_entropy: labels shape {labels.shape} != logits leading shape "
            f"{logits.shape[:-1]} (logits shape {logits.shape}); labels must be integer "
            "class indices, one per example, not one-hot vectors."
        )
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(
            f"softmax_cross_entropy: labels must be integer class indices, got dtype "
            f"{labels.dtype}."
        )
    label_logits = jnp.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
    log_normalizers = jax.nn.logsumexp(logits, axis=-1)
    return jnp.mean(log_normalizers - label_logits)
