"""A recommender problem: matrix factorization of a synthetic, noisy low-rank ratings matrix.

``data`` / ``test_data`` are ``(user, item, rating)`` tuples of observed entries (int32,
int32, float32); ``loss_fn(params, batch)`` is the mean squared error over the batch's
ratings plus an optional per-rating L2 penalty.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .base import Problem, as_key, f32

__all__ = ["matrix_factorization"]

#: The global mean of the true ratings (a 1-5 star scale, roughly).
MEAN_RATING = 3.5
#: Standard deviation of the true user and item biases.
BIAS_STD = 0.3


def _predict(params: dict[str, jax.Array], user: jax.Array, item: jax.Array) -> jax.Array:
    """``mean + user_bias[u] + item_bias[i] + <user[u], item[i]>`` for each pair."""
    interaction = jnp.sum(params["user"][user] * params["item"][item], axis=-1)
    return params["mean"] + params["user_bias"][user] + params["item_bias"][item] + interaction


def _rmse(params: dict[str, jax.Array], batch: tuple[jax.Array, ...]) -> jax.Array:
    user, item, rating = batch
    return jnp.sqrt(jnp.mean((_predict(params, user, item) - rating) ** 2))


def _generator(key: Any) -> np.random.Generator:
    """NumPy's generator seeded from the bits of a JAX key (or int, or None). NumPy rather
    than ``jax.random``: compiling the draws would cost more than everything else this
    small problem does, every time a process builds it."""
    key = as_key(key)
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.random.default_rng(np.asarray(key, np.uint32).ravel().tolist())


def _draw(rng: np.random.Generator, num_users: int, num_items: int, rank: int,
          num_observed: int, noise: float, init_scale: float):
    """The random parts of :func:`matrix_factorization`: the true params, the observed
    cells' ``user``, ``item``, ``rating`` and noise, and the start embeddings."""
    def normal(std, *shape):
        return (std * rng.standard_normal(shape)).astype(np.float32)

    scale = rank ** -0.25
    true_params = {
        "user": normal(scale, num_users, rank),
        "item": normal(scale, num_items, rank),
        "user_bias": normal(BIAS_STD, num_users),
        "item_bias": normal(BIAS_STD, num_items),
        "mean": np.float32(MEAN_RATING),
    }
    cells = rng.permutation(num_users * num_items)[:num_observed]
    user = (cells // num_items).astype(np.int32)
    item = (cells % num_items).astype(np.int32)
    eps = normal(noise, num_observed)
    t = true_params
    rating = (t["mean"] + t["user_bias"][user] + t["item_bias"][item]
              + np.sum(t["user"][user] * t["item"][item], axis=-1) + eps).astype(np.float32)
    init = normal(init_scale, num_users, rank), normal(init_scale, num_items, rank)
    return jax.tree.map(f32, true_params), user, item, rating, eps, init


def matrix_factorization(
    num_users: int = 200,
    num_items: int = 150,
    rank: int = 4,
    density: float = 0.25,
    noise: float = 0.5,
    l2: float = 0.0,
    test_fraction: float = 0.2,
    init_scale: float = 0.1,
    key: Any = None,
) -> Problem:
    r"""Matrix factorization of a synthetic ratings matrix: the model behind recommender
    systems, with user and item embeddings and biases.

    The true ratings are :math:`R_{ui} = \mu + b_u + c_i + p_u^\top q_i` with
    :math:`\mu = 3.5`, biases :math:`b_u, c_i \sim N(0, 0.3^2)` and embeddings
    :math:`p_u, q_i \in \mathbb{R}^r` with entries :math:`N(0, r^{-1/2})`, so that
    :math:`p_u^\top q_i` has unit variance. ``round(density * num_users * num_items)``
    distinct cells are observed, each as :math:`r_{ui} = R_{ui} + \sigma\varepsilon`
    (``noise`` :math:`= \sigma`); a ``test_fraction`` of them is held out as
    ``test_data``. Params ``{"user": (U, r), "item": (I, r), "user_bias": (U,),
    "item_bias": (I,), "mean": ()}``: embeddings ``N(0, init_scale**2)`` (zero would be
    a saddle point), biases zero, ``mean`` the average training rating.

    .. math:: \ell(\theta, B) = \frac{1}{|B|} \sum_{(u, i, r) \in B}
              \Big[(\mu + b_u + c_i + p_u^\top q_i - r)^2
              + \lambda\big(\|p_u\|^2 + \|q_i\|^2 + b_u^2 + c_i^2\big)\Big]

    The penalty (``l2`` :math:`= \lambda`) is per rating, as in Koren et al. (2009): a
    batch touches only its own users' and items' rows, so the gradient stays sparse.

    ``key``: ``None`` (seed 0), an int or a JAX key; the draws are NumPy's, seeded from its
    bits, so the problem is the same on every platform.

    The regularized minimizer is not known: ``optimum`` and ``min_value`` are ``None``.
    The noise floor is: no model predicts held-out ratings better, on average, than the
    true matrix, whose RMSE is :math:`\sigma`. ``info``:

    * ``"true_params"``: the generating model, in the layout of the params;
    * ``"noise"``: :math:`\sigma`, the expected RMSE of the true matrix on any ratings;
    * ``"train_noise_mse"``: the mean squared noise of the training ratings, which is
      ``loss_fn(true_params, data)`` when ``l2 == 0`` (float64);
    * ``"test_noise_rmse"``: the RMSE of the true matrix on ``test_data`` (float64), the
      held-out noise floor;
    * ``"predict"``: ``(params, user, item) -> ratings``;
    * ``"rmse"``: ``(params, batch) -> root mean squared error``, without the penalty.
    """
    for name, value in (("num_users", num_users), ("num_items", num_items), ("rank", rank)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}.")
    # written so that NaN fails each check too
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}.")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}.")
    for name, value in (("noise", noise), ("l2", l2)):
        if not value >= 0.0:
            raise ValueError(f"{name} must be >= 0, got {value}.")
    if not init_scale > 0.0:
        raise ValueError(f"init_scale must be > 0 (zero embeddings are a saddle point), "
                         f"got {init_scale}.")
    num_users, num_items, rank = int(num_users), int(num_items), int(rank)
    cells = num_users * num_items
    num_observed = int(round(density * cells))
    num_test = int(round(test_fraction * num_observed))
    if num_observed - num_test < 1:
        raise ValueError(
            f"density={density} observes {num_observed} of {cells} cells, and "
            f"test_fraction={test_fraction} leaves no training rating; raise density.")

    true_params, user, item, rating, eps, (init_user, init_item) = _draw(
        _generator(key), num_users, num_items, rank, num_observed, float(noise),
        float(init_scale))
    test = slice(0, num_test)
    train = slice(num_test, num_observed)
    data = tuple(jnp.asarray(x[train]) for x in (user, item, rating))
    test_data = tuple(jnp.asarray(x[test]) for x in (user, item, rating)) if num_test else None

    eps64 = np.asarray(eps, np.float64)
    train_noise_mse = float(np.mean(eps64[train] ** 2))
    test_noise_rmse = float(np.sqrt(np.mean(eps64[test] ** 2))) if num_test else None
    init_params = {
        "user": f32(init_user),
        "item": f32(init_item),
        "user_bias": jnp.zeros((num_users,), jnp.float32),
        "item_bias": jnp.zeros((num_items,), jnp.float32),
        "mean": f32(np.mean(rating[train], dtype=np.float64)),
    }
    penalty = float(l2)

    def loss_fn(params: dict[str, jax.Array], batch: tuple[jax.Array, ...]) -> jax.Array:
        user, item, rating = batch
        squared_error = (_predict(params, user, item) - rating) ** 2
        if penalty == 0.0:
            return jnp.mean(squared_error)
        norms = (jnp.sum(params["user"][user] ** 2, axis=-1)
                 + jnp.sum(params["item"][item] ** 2, axis=-1)
                 + params["user_bias"][user] ** 2 + params["item_bias"][item] ** 2)
        return jnp.mean(squared_error + penalty * norms)

    return Problem(
        name="matrix_factorization",
        loss_fn=loss_fn,
        init_params=init_params,
        data=data,
        test_data=test_data,
        info={
            "true_params": true_params,
            "noise": float(noise),
            "train_noise_mse": train_noise_mse,
            "test_noise_rmse": test_noise_rmse,
            "predict": _predict,
            "rmse": _rmse,
        },
    )
