"""Gradient descent: plain, with heavy-ball or Nesterov momentum, and with annealed gradient
noise."""

from __future__ import annotations

import jax

from jaxgd.core.base import GradientTransformation, chain, identity
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.transforms.noise import add_noise
from jaxgd.transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxgd.transforms.sgd import trace


@inject_hyperparams
def sgd(
    learning_rate: ScalarOrSchedule, momentum=None, nesterov: bool = False,
    accumulator_dtype=None,
) -> GradientTransformation:
    """Gradient descent, optionally with heavy-ball or Nesterov momentum.

    Plain (``momentum=None``): :math:`p_{t+1} = p_t - \\eta\\,g_t`. With momentum
    :math:`\\mu`: :math:`v_t = g_t + \\mu v_{t-1}`, :math:`p_{t+1} = p_t - \\eta\\,v_t`
    (Nesterov: :math:`p_{t+1} = p_t - \\eta\\,(g_t + \\mu v_t)`).

    Whether the gradient comes from the whole data set, one example or a mini-batch
    (batch, stochastic or mini-batch gradient descent) is the data regime, chosen in
    :func:`jaxgd.fit`, not here.

    Args:
      learning_rate: :math:`\\eta \\ge 0`, or a schedule ``step -> value``.
      momentum: :math:`\\mu \\in [0, 1)`, or ``None`` for plain gradient descent.
      nesterov: use Nesterov momentum.
      accumulator_dtype: the dtype :math:`v` is stored in (e.g. ``jnp.bfloat16``), or
        ``None`` for each parameter's dtype; see :func:`jaxgd.trace`.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgd
      >>> params = jnp.array([1.0, -2.0])
      >>> opt = jaxgd.sgd(0.1)
      >>> state = opt.init(params)
      >>> grads = jax.grad(lambda p: jnp.sum(p**2))(params)
      >>> updates, state = opt.update(grads, state)
      >>> jaxgd.apply_updates(params, updates)
      Array([ 0.8, -1.6], dtype=float32)
    """
    return chain(
        (trace(momentum, nesterov, accumulator_dtype) if momentum is not None
         else identity()),
        scale_by_learning_rate(learning_rate),
    )


@inject_hyperparams
def momentum(
    learning_rate: ScalarOrSchedule, momentum=0.9, accumulator_dtype=None
) -> GradientTransformation:
    """Gradient descent with heavy-ball momentum (Polyak, 1964); ``sgd(lr, momentum)``.

    .. math:: v_t = g_t + \\mu\\,v_{t-1}, \\qquad p_{t+1} = p_t - \\eta\\,v_t
    """
    return chain(trace(momentum, False, accumulator_dtype), scale_by_learning_rate(learning_rate))


@inject_hyperparams
def nesterov(
    learning_rate: ScalarOrSchedule, momentum=0.9, accumulator_dtype=None
) -> GradientTransformation:
    """Gradient descent with Nesterov momentum; ``sgd(lr, momentum, nesterov=True)``.

    Sutskever et al., 2013, after Nesterov, 1983.

    .. math:: v_t = g_t + \\mu\\,v_{t-1}, \\qquad p_{t+1} = p_t - \\eta\\,(g_t + \\mu\\,v_t)
    """
    return chain(trace(momentum, True, accumulator_dtype), scale_by_learning_rate(learning_rate))


def noisy_sgd(
    learning_rate: ScalarOrSchedule,
    eta=0.01,
    gamma=0.55,
    key: jax.Array | int | None = None,
    *,
    seed: int | None = None,
) -> GradientTransformation:
    """Gradient descent with annealed Gaussian gradient noise (Neelakantan et al., 2015).

    .. math::
       p_{t+1} = p_t - \\eta_t\\,(g_t + \\sigma_t \\xi_t), \\qquad
       \\sigma_t^2 = \\frac{\\eta}{t^{\\gamma}}, \\quad \\xi_t \\sim \\mathcal N(0, I)

    The PRNG key is held in the state and split at every step. The same ``key`` gives the
    same noise as ``optax.noisy_sgd``.

    Args:
      learning_rate: :math:`\\eta_t`, or a schedule.
      eta: :math:`\\eta \\ge 0`, the initial noise variance.
      gamma: :math:`\\gamma \\ge 0`, the decay exponent of the variance.
      key: a PRNG key (``jax.random.key(0)``) or an int seed; ``None`` means seed 0.
      seed: an int seed, optax's older spelling of ``key`` (give at most one of the two).

    Reference:
      Neelakantan et al., `Adding Gradient Noise Improves Learning for Very Deep Networks
      <https://arxiv.org/abs/1511.06807>`_, 2015.
    """
    return chain(add_noise(eta, gamma, key, seed=seed), scale_by_learning_rate(learning_rate))


# The key is not a hyperparameter: an int seed must stay an int, not become a float array.
noisy_sgd = inject_hyperparams(noisy_sgd, static_args=("key", "seed"))
