"""Supervised-learning problems on small datasets: synthetic linear / logistic regression and
an MLP on scikit-learn's 8x8 digits. ``loss_fn(params, (X, y))`` is the mean loss over the
batch; ``data`` / ``test_data`` are ``(X, y)`` tuples of arrays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..losses import binary_cross_entropy, mse, softmax_cross_entropy
from .base import Problem, as_key, f32

__all__ = ["linear_regression", "logistic_regression", "mlp_digits"]


def _linear(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    return x @ params["w"] + params["b"]


def linear_regression(
    num_examples: int = 200, num_features: int = 5, noise: float = 0.1, key: Any = None
) -> Problem:
    r"""Least-squares linear regression on synthetic data.

    ``X ~ N(0, I)`` of shape ``(n, d)``, ``y = X w_true + b_true + noise * eps`` with
    ``w_true, b_true, eps ~ N(0, 1)``. Params ``{"w": (d,), "b": ()}``, initialised to zero.

    .. math:: \ell(w, b) = \frac1n \sum_i (x_i^\top w + b - y_i)^2

    ``optimum`` is the least-squares solution with an intercept column, solved in float64 on
    the float32 data; ``min_value`` its mean squared residual (about ``noise**2``).
    ``info``: ``"true_params"`` and ``"predict"`` (``(params, X) -> predictions``).
    """
    n, d = int(num_examples), int(num_features)
    k_x, k_w, k_b, k_eps = jax.random.split(as_key(key), 4)
    X = jax.random.normal(k_x, (n, d), dtype=jnp.float32)
    true_params = {
        "w": jax.random.normal(k_w, (d,), dtype=jnp.float32),
        "b": jax.random.normal(k_b, (), dtype=jnp.float32),
    }
    eps = jax.random.normal(k_eps, (n,), dtype=jnp.float32)
    y = _linear(true_params, X) + float(noise) * eps

    x1 = np.concatenate([np.asarray(X, np.float64), np.ones((n, 1))], axis=1)
    y64 = np.asarray(y, np.float64)
    coef = np.linalg.lstsq(x1, y64, rcond=None)[0]
    min_value = float(np.mean((x1 @ coef - y64) ** 2))

    def loss_fn(params: dict[str, jax.Array], batch: tuple[jax.Array, jax.Array]) -> jax.Array:
        x, targets = batch
        return mse(_linear(params, x), targets)

    return Problem(
        name="linear_regression",
        loss_fn=loss_fn,
        init_params={"w": jnp.zeros((d,), jnp.float32), "b": jnp.zeros((), jnp.float32)},
        data=(X, y),
        optimum={"w": f32(coef[:d]), "b": f32(coef[d])},
        min_value=min_value,
        info={"true_params": true_params, "predict": _linear},
    )


def _logistic_newton(x1: np.ndarray, y: np.ndarray, tol: float = 1e-10) -> np.ndarray | None:
    """Float64 damped Newton for mean logistic loss; ``None`` if no finite minimizer found."""

    def loss(theta: np.ndarray) -> float:
        z = x1 @ theta
        return float(np.mean(np.logaddexp(0.0, z) - y * z))

    theta = np.zeros(x1.shape[1])
    for _ in range(100):
        p = 0.5 * (1.0 + np.tanh(0.5 * (x1 @ theta)))  # stable sigmoid
        grad = x1.T @ (p - y) / len(y)
        if np.linalg.norm(grad) < tol:
            return theta
        hess = (x1 * (p * (1.0 - p))[:, None]).T @ x1 / len(y)
        step = np.linalg.solve(hess + 1e-12 * np.eye(len(theta)), grad)
        t, f0 = 1.0, loss(theta)
        while loss(theta - t * step) > f0 - 0.25 * t * (grad @ step) and t > 1e-10:
            t *= 0.5
        theta = theta - t * step
    return None


def logistic_regression(
    num_examples: int = 500, num_features: int = 10, key: Any = None, label_noise: float = 0.05
) -> Problem:
    r"""Binary logistic regression on synthetic, almost linearly separable data.

    ``X ~ N(0, I)``; labels ``y = 1[x^T w_true + b_true > 0]`` (``w_true ~ N(0, I)``,
    ``b_true ~ N(0, 0.25)``), each flipped with probability ``label_noise``. Labels are
    int32 in {0, 1}. Params ``{"w": (d,), "b": ()}``, initialised to zero.

    .. math:: \ell(w, b) = \frac1n \sum_i \mathrm{BCE}(x_i^\top w + b,\ y_i)

    The flipped labels make the data non-separable, so the (strictly convex) loss has a
    finite minimizer: ``optimum`` / ``min_value`` are found by float64 Newton's method (they
    are ``None`` in the unlikely case it does not converge, e.g. ``label_noise=0``).
    ``accuracy_fn`` predicts class 1 where the logit is > 0. ``test_data`` is an independent
    draw of the same size. ``info``: ``"true_params"``, ``"num_flipped"`` (training set),
    ``"predict"`` (``(params, X) -> logits``).
    """
    n, d = int(num_examples), int(num_features)
    k_w, k_b, k_train, k_test = jax.random.split(as_key(key), 4)
    true_params = {
        "w": jax.random.normal(k_w, (d,), dtype=jnp.float32),
        "b": 0.5 * jax.random.normal(k_b, (), dtype=jnp.float32),
    }

    def sample(k: jax.Array) -> tuple[tuple[jax.Array, jax.Array], int]:
        k_x, k_flip = jax.random.split(k)
        x = jax.random.normal(k_x, (n, d), dtype=jnp.float32)
        clean = _linear(true_params, x) > 0
        flip = jax.random.uniform(k_flip, (n,)) < label_noise
        return (x, jnp.logical_xor(clean, flip).astype(jnp.int32)), int(flip.sum())

    (X, y), num_flipped = sample(k_train)
    test_data, _ = sample(k_test)

    x1 = np.concatenate([np.asarray(X, np.float64), np.ones((n, 1))], axis=1)
    y64 = np.asarray(y, np.float64)
    theta = _logistic_newton(x1, y64)
    optimum = min_value = None
    if theta is not None:
        optimum = {"w": f32(theta[:d]), "b": f32(theta[d])}
        z = x1 @ theta
        min_value = float(np.mean(np.logaddexp(0.0, z) - y64 * z))

    def loss_fn(params: dict[str, jax.Array], batch: tuple[jax.Array, jax.Array]) -> jax.Array:
        x, labels = batch
        return binary_cross_entropy(_linear(params, x), labels)

    def accuracy_fn(params: dict[str, jax.Array], batch: tuple[jax.Array, jax.Array]):
        x, labels = batch
        return jnp.mean((_linear(params, x) > 0).astype(jnp.int32) == labels)

    return Problem(
        name="logistic_regression",
        loss_fn=loss_fn,
        init_params={"w": jnp.zeros((d,), jnp.float32), "b": jnp.zeros((), jnp.float32)},
        data=(X, y),
        optimum=optimum,
        min_value=min_value,
        test_data=test_data,
        accuracy_fn=accuracy_fn,
        info={"true_params": true_params, "num_flipped": num_flipped, "predict": _linear},
    )


def _mlp_apply(params: list[dict[str, jax.Array]], x: jax.Array) -> jax.Array:
    """ReLU MLP; returns the logits of the last (linear) layer."""
    for layer in params[:-1]:
        x = jax.nn.relu(_linear(layer, x))
    return _linear(params[-1], x)


def mlp_digits(
    hidden: Sequence[int] = (64,), key: Any = None, test_fraction: float = 0.25
) -> Problem:
    r"""ReLU multi-layer perceptron on scikit-learn's 8x8 handwritten digits (1,797 images).

    Features are pixel intensities scaled from 0..16 to [0, 1] (64 features); labels int32
    in 0..9. The train/test split is a random permutation from ``key`` with
    ``round(test_fraction * 1797)`` test examples (``test_data`` is ``None`` if that is 0).
    Params: a list of ``{"w": (fan_in, fan_out), "b": (fan_out,)}`` dicts, ``w`` He-normal
    (``N(0, 2 / fan_in)``) for hidden layers and Glorot-normal (``N(0, 2 / (fan_in +
    fan_out))``) for the output layer, ``b = 0``. ``hidden=()`` gives softmax regression.

    .. math:: \ell(\theta, B) = \frac{1}{|B|} \sum_{i \in B}
              \Big(\log \sum_c e^{f_\theta(x_i)_c} - f_\theta(x_i)_{y_i}\Big)

    Non-convex: ``optimum`` and ``min_value`` are ``None``. ``accuracy_fn`` is the fraction of
    examples whose argmax logit equals the label. ``info``: ``"predict"`` (``(params, X) ->
    logits``), ``"num_classes"`` (10). Requires scikit-learn (imported lazily).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "mlp_digits needs scikit-learn: `pip install scikit-learn` (or `pip install "
            "jaxgd[dev]`)."
        ) from e
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}.")
    digits = load_digits()
    features = np.asarray(digits.data, np.float32) / 16.0
    labels = np.asarray(digits.target, np.int32)
    n = len(labels)
    n_test = int(round(test_fraction * n))

    k_split, k_init = jax.random.split(as_key(key))
    perm = np.asarray(jax.random.permutation(k_split, n))
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    data = (f32(features[train_idx]), jnp.asarray(labels[train_idx]))
    test_data = (f32(features[test_idx]), jnp.asarray(labels[test_idx])) if n_test else None

    sizes = [features.shape[1], *(int(h) for h in hidden), 10]
    layer_keys = jax.random.split(k_init, len(sizes) - 1)
    params = []
    for i, (k, fan_in, fan_out) in enumerate(zip(layer_keys, sizes[:-1], sizes[1:], strict=True)):
        is_output = i == len(sizes) - 2
        std = np.sqrt(2.0 / (fan_in + fan_out)) if is_output else np.sqrt(2.0 / fan_in)
        w = float(std) * jax.random.normal(k, (fan_in, fan_out), dtype=jnp.float32)
        params.append({"w": w, "b": jnp.zeros((fan_out,), jnp.float32)})

    def loss_fn(params: list[dict[str, jax.Array]], batch: tuple[jax.Array, jax.Array]):
        x, y = batch
        return softmax_cross_entropy(_mlp_apply(params, x), y)

    def accuracy_fn(params: list[dict[str, jax.Array]], batch: tuple[jax.Array, jax.Array]):
        x, y = batch
        return jnp.mean(jnp.argmax(_mlp_apply(params, x), axis=-1) == y)

    return Problem(
        name="mlp_digits",
        loss_fn=loss_fn,
        init_params=params,
        data=data,
        test_data=test_data,
        accuracy_fn=accuracy_fn,
        info={"predict": _mlp_apply, "num_classes": 10},
    )
