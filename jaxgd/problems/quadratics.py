"""Quadratic problems with closed-form answers: a deterministic ill-conditioned quadratic and
a DeepOBS-style noisy quadratic whose mini-batch gradients are stochastic."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .base import Problem, as_key, f32

__all__ = ["noisy_quadratic", "quadratic"]


def _random_rotation(key: jax.Array, dim: int) -> np.ndarray:
    """Haar-distributed orthogonal matrix (float64) from QR of a Gaussian matrix."""
    g = np.asarray(jax.random.normal(key, (dim, dim), dtype=jnp.float32), dtype=np.float64)
    q, r = np.linalg.qr(g)
    return q * np.sign(np.diag(r))[None, :]


def _spd(rotation: np.ndarray, eigenvalues: np.ndarray) -> np.ndarray:
    """``Q diag(eigenvalues) Q^T`` as an exactly symmetric float32 NumPy matrix."""
    m = (rotation * eigenvalues[None, :]) @ rotation.T
    return (0.5 * (m + m.T)).astype(np.float32)


def quadratic(
    dim: int = 10,
    mu: float = 1.0,
    L: float = 100.0,
    key: Any = None,
    start: Any = None,
    spacing: str = "geometric",
) -> Problem:
    r"""Deterministic strongly convex quadratic with prescribed spectrum.

    .. math:: f(x) = \tfrac12 x^\top A x - b^\top x, \qquad
              x^\star = A^{-1} b, \qquad f(x^\star) = -\tfrac12 b^\top A^{-1} b

    ``A = Q diag(lambda) Q^T`` with ``Q`` a random rotation and eigenvalues
    ``lambda_i = mu * (L / mu) ** (i / (dim - 1))`` (``spacing="geometric"``, the default) or
    ``lambda_i = mu + (L - mu) * i / (dim - 1)`` (``spacing="linear"``), ``i = 0..dim-1``, so
    both ``mu`` (strong convexity) and ``L`` (smoothness) are attained. ``b ~ N(0, I)``.
    ``A`` is rounded to float32 (changing its eigenvalues by ~1e-7 relative); ``optimum`` and
    ``min_value`` are then solved in float64 for that float32 ``A`` and ``b``.

    Args:
      dim: dimension (``>= 2`` unless ``mu == L``).
      mu, L: smallest and largest eigenvalue, ``0 < mu <= L``.
      key: PRNG key or int seed for ``Q`` and ``b``; default ``PRNGKey(0)``.
      start: initial point, default the origin (where ``f = 0``).
      spacing: ``"geometric"`` or ``"linear"``.

    ``info``: ``"A"``, ``"b"`` (the float32 arrays ``loss_fn`` uses), ``"mu"``, ``"L"``,
    ``"eigenvalues"`` (float64, the designed spectrum, ascending), ``"condition_number"``.
    """
    dim, mu, L = int(dim), float(mu), float(L)
    if not 0.0 < mu <= L:
        raise ValueError(f"need 0 < mu <= L, got mu={mu}, L={L}.")
    if dim < 1 or (dim == 1 and mu != L):
        raise ValueError(f"dim={dim} cannot attain both mu={mu} and L={L}; use dim >= 2.")
    t = np.arange(dim, dtype=np.float64) / max(dim - 1, 1)
    if spacing == "geometric":
        eigenvalues = mu * (L / mu) ** t
    elif spacing == "linear":
        eigenvalues = mu + (L - mu) * t
    else:
        raise ValueError(f"spacing must be 'geometric' or 'linear', got {spacing!r}.")
    eigenvalues[0], eigenvalues[-1] = mu, L
    k_rot, k_b = jax.random.split(as_key(key))
    a32 = _spd(_random_rotation(k_rot, dim), eigenvalues)
    b32 = np.asarray(jax.random.normal(k_b, (dim,), dtype=jnp.float32))
    x_star = np.linalg.solve(a32.astype(np.float64), b32.astype(np.float64))
    min_value = float(-0.5 * b32.astype(np.float64) @ x_star)
    A, b = f32(a32), f32(b32)

    def loss_fn(x: jax.Array) -> jax.Array:
        return 0.5 * x @ (A @ x) - b @ x

    x0 = jnp.zeros((dim,), jnp.float32) if start is None else f32(start)
    if x0.shape != (dim,):
        raise ValueError(f"start must have shape ({dim},), got {x0.shape}.")
    return Problem(
        name="quadratic",
        loss_fn=loss_fn,
        init_params=x0,
        optimum=f32(x_star),
        min_value=min_value,
        info={
            "A": A,
            "b": b,
            "mu": mu,
            "L": L,
            "eigenvalues": eigenvalues,
            "condition_number": L / mu,
        },
    )


def noisy_quadratic(key: Any = None, batch_noise: float = 0.6, num_examples: int = 1000) -> Problem:
    r"""Noisy 100-D quadratic in the style of DeepOBS ``quadratic_deep``.

    .. math:: \ell(\theta, B) = \frac{1}{|B|} \sum_{i \in B}
              \tfrac12 (\theta - x_i)^\top H (\theta - x_i),
              \qquad x_i \sim \mathcal N(0, \sigma^2 I_{100}),\ \sigma = \text{batch\_noise}

    ``H = Q diag(lambda) Q^T`` with a random rotation ``Q``, 90 eigenvalues ~ U(0, 1) and
    10 ~ U(30, 60). ``data`` is the ``(num_examples, 100)`` float32 array of noise vectors
    ``x_i`` (``test_data``: an independent draw of the same size), so a mini-batch gradient
    ``H (theta - mean_B x_i)`` is a noisy estimate of the full-batch one.
    ``init_params`` is ``ones(100)`` (as in DeepOBS).

    Since ``H`` is positive definite, the full-batch minimizer is *exactly* the mean of the
    training data, ``optimum = data.mean(0)`` (computed in float64, stored as float32), and
    ``min_value = mean_i 1/2 (x_i - xbar)^T H (x_i - xbar)`` (float64).

    ``info``: ``"H"`` (float32, as used by ``loss_fn``), ``"eigenvalues"`` (float64, the 100
    designed eigenvalues in draw order: first the 90 small, then the 10 large ones).
    """
    dim, num_examples = 100, int(num_examples)
    k_rot, k_lo, k_hi, k_train, k_test = jax.random.split(as_key(key), 5)
    lo = np.asarray(jax.random.uniform(k_lo, (90,), jnp.float32, 0.0, 1.0), np.float64)
    hi = np.asarray(jax.random.uniform(k_hi, (10,), jnp.float32, 30.0, 60.0), np.float64)
    eigenvalues = np.concatenate([lo, hi])
    h32 = _spd(_random_rotation(k_rot, dim), eigenvalues)
    H = f32(h32)
    sigma = float(batch_noise)
    train = sigma * jax.random.normal(k_train, (num_examples, dim), dtype=jnp.float32)
    test = sigma * jax.random.normal(k_test, (num_examples, dim), dtype=jnp.float32)

    x64 = np.asarray(train, np.float64)
    mean = x64.mean(axis=0)
    centered = x64 - mean
    min_value = float(0.5 * np.mean(np.sum((centered @ h32.astype(np.float64)) * centered, -1)))

    def loss_fn(theta: jax.Array, batch: jax.Array) -> jax.Array:
        d = theta - batch
        return 0.5 * jnp.mean(jnp.sum((d @ H) * d, axis=-1))

    return Problem(
        name="noisy_quadratic",
        loss_fn=loss_fn,
        init_params=jnp.ones((dim,), jnp.float32),
        data=train,
        optimum=f32(mean),
        min_value=min_value,
        test_data=test,
        info={"H": H, "eigenvalues": eigenvalues},
    )
