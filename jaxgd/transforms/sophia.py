"""Sophia: momentum preconditioned by a running estimate of the Hessian diagonal, clipped
elementwise; and Hutchinson's estimate of that diagonal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core import checks, numerics, tree
from jaxgd.core.base import (
    GradientTransformation,
    Updates,
    accepts_extra_args,
    bind_value_fn,
    flatten_invariant,
    is_flatten_invariant,
)
from jaxgd.transforms.noise import as_prng_key


def objective(obj_fn: Callable | None, extra_args: dict[str, Any], owner: str) -> Callable:
    """``params -> loss``: ``obj_fn`` as given (optax's name), else ``value_fn`` (what
    :func:`jaxgd.fit` passes) with the batch arguments it names bound."""
    if obj_fn is not None:
        if not callable(obj_fn):
            raise TypeError(f"{owner}: obj_fn must be callable, got {type(obj_fn).__name__}.")
        return obj_fn
    if extra_args.get("value_fn") is None:
        raise ValueError(
            f"{owner} needs the objective: pass obj_fn= (a function params -> scalar loss) "
            "to update, e.g. opt.update(grads, state, params, obj_fn=loss_fn); value_fn= "
            "(as jaxgd.fit passes it) works too."
        )
    return bind_value_fn(extra_args["value_fn"], extra_args, owner)


class HutchinsonState(NamedTuple):
    """The PRNG key of the next draw."""

    key: jax.Array


def _key_maker(random_seed) -> Callable[[], jax.Array]:
    """The state's first key, made when ``init`` runs: a key made when the factory is
    called would start JAX's backend on ``import jaxgd`` (the default in sophia's
    signature is built then)."""
    if random_seed is None or (isinstance(random_seed, int) and not isinstance(random_seed,
                                                                               bool)):
        seed = 0 if random_seed is None else random_seed
        return lambda: as_prng_key(seed)
    key = as_prng_key(random_seed)
    return lambda: key


def hutchinson_estimator_diag_hessian(random_seed: jax.Array | int | None = None):
    """Hutchinson's estimate of the Hessian diagonal of the objective at the params.

    .. math:: \\hat h = z \\odot (\\nabla^2 f(p)\\, z), \\qquad z_i = \\pm 1
              \\text{ with probability } 1/2

    unbiased (:math:`\\mathbb E[\\hat h] = \\mathrm{diag}\\,\\nabla^2 f(p)`) but noisy. The
    Hessian-vector product costs about two gradients (forward-over-reverse). The incoming
    updates are ignored; ``update`` returns :math:`\\hat h`. The signs of each leaf are
    drawn with a key of its own, split from the state's key as optax splits it, so the
    same key gives optax's draws.

    ``update`` needs ``params`` and the objective: ``obj_fn=`` (optax's name, a function
    ``params -> loss``) or ``value_fn=`` (what :func:`jaxgd.fit` passes).

    Args:
      random_seed: a PRNG key (``jax.random.key(0)`` or ``jax.random.PRNGKey(0)``) or an
        int seed; ``None`` means seed 0, as in optax.

    Reference:
      Hutchinson, A stochastic estimator of the trace of the influence matrix for
      Laplacian smoothing splines, 1989.
    """
    first_key = _key_maker(random_seed)

    def init(params):
        del params
        return HutchinsonState(first_key())

    def update(updates, state, params=None, *, obj_fn=None, **extra_args):
        del updates
        checks.params_given("hutchinson_estimator_diag_hessian", params)
        loss = objective(obj_fn, extra_args, "hutchinson_estimator_diag_hessian")
        key, draw = jax.random.split(state.key)
        leaves, treedef = jax.tree.flatten(params)
        keys = jax.random.split(draw, len(leaves))
        # Drawn in float32 as optax draws them; each then takes its own param's dtype
        # (the tangent must), where optax casts all to the lowest dtype of the tree.
        signs = treedef.unflatten([
            jax.random.rademacher(k, jnp.shape(p), jnp.float32).astype(tree.dtype_of(p))
            for k, p in zip(keys, leaves, strict=True)])
        hvp = jax.jvp(jax.grad(loss), (params,), (signs,))[1]
        return jax.tree.map(jnp.multiply, hvp, signs), HutchinsonState(key)

    return GradientTransformation(init, update)


#: The default estimator of :func:`scale_by_sophia` and :func:`jaxgd.sophia` (seed 0).
HUTCHINSON = hutchinson_estimator_diag_hessian()


class SophiaState(NamedTuple):
    """Step count, the momentum :math:`m`, the running Hessian-diagonal estimate
    :math:`h` and the state of the transformation that estimates it."""

    count: jax.Array
    mu: Updates
    nu: Updates
    hessian_fn_state: Any


def _check_interval(name: str, value) -> None:
    """An integer >= 1 (a traced value passes unchecked)."""
    if isinstance(value, (bool, str, bytes)):
        raise TypeError(f"{name} must be an integer >= 1, got {value!r}.")
    array = checks.concrete(value)
    if array is not None and not np.all((array >= 1) & (array == np.round(array))):
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")


def scale_by_sophia(
    b1=0.965,
    b2=0.99,
    eps=1e-8,
    gamma=0.01,
    clip_threshold=1.0,
    update_interval=10,
    hessian_diagonal_fn: GradientTransformation = HUTCHINSON,
    mu_dtype=None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
) -> GradientTransformation:
    """Sophia scaling (Liu et al., 2023): a clipped, Hessian-preconditioned momentum.

    .. math::
       m_t = \\beta_1 m_{t-1} + (1 - \\beta_1) g_t, \\qquad
       u_t = \\mathrm{clip}\\!\\left(\\frac{m_t / (1 - \\beta_1^t)}
             {\\max(\\gamma\\, h_{t-1}, \\epsilon)}, -\\rho, \\rho\\right), \\\\
       h_t = \\beta_2 h_{t-1} + (1 - \\beta_2)\\, \\hat h_t
       \\text{ at steps } t - 1 \\equiv 0 \\pmod k, \\text{ else } h_t = h_{t-1}

    with :math:`\\hat h_t` the estimate of the Hessian diagonal made by
    ``hessian_diagonal_fn`` (Hutchinson's, "Sophia-H", by default) and :math:`h_0 = 0`:
    the first step, with no curvature yet, is :math:`\\rho\\,\\mathrm{sign}(m_1)`. The
    estimate used by a step is the one made before it. Since :math:`h` is refreshed every
    :math:`k` steps only, its effective decay per step is about
    :math:`1 - (1 - \\beta_2) / k`.

    ``update`` needs ``params`` and, for the default estimator, the objective:
    ``obj_fn=`` (optax's name) or ``value_fn=`` (what :func:`jaxgd.fit` passes). Other
    extra arguments go on to ``hessian_diagonal_fn``, with ``obj_fn`` set to the
    objective (``value_fn`` with its batch arguments bound) when either was given.

    Args:
      b1: :math:`\\beta_1 \\in [0, 1)`, the momentum's decay.
      b2: :math:`\\beta_2 \\in [0, 1)`, the Hessian estimate's decay per refresh.
      eps: :math:`\\epsilon > 0`, the floor of the denominator.
      gamma: :math:`\\gamma \\ge 0`, the scale of the Hessian estimate.
      clip_threshold: :math:`\\rho > 0`, the largest step per coordinate before the
        learning rate, or ``None`` for no clipping.
      update_interval: :math:`k \\ge 1`: the Hessian estimate is refreshed at steps
        :math:`1, k + 1, 2k + 1, \\dots`.
      hessian_diagonal_fn: a transformation whose ``update`` returns the Hessian
        diagonal estimate at ``params`` (jaxgd's or optax's). Mark it with
        :func:`jaxgd.core.base.flatten_invariant` if it is elementwise: Sophia is then too.
        Hutchinson's is not (its signs are drawn leaf by leaf).
      mu_dtype: the dtype :math:`m` is stored in, or ``None`` for each parameter's.
      verbose: print the win rate, the fraction of coordinates not clipped, every
        ``print_win_rate_every_n_steps`` steps (0: never). The authors advise keeping it
        between 0.1 and 0.5, raising ``gamma`` when it is lower.
      print_win_rate_every_n_steps: see ``verbose``.

    Reference:
      Liu, Li, Hall, Liang & Ma, `Sophia: A Scalable Stochastic Second-order Optimizer for
      Language Model Pre-training <https://arxiv.org/abs/2305.14342>`_, 2023.
    """
    checks.decay_rate("b1", b1)
    checks.decay_rate("b2", b2)
    checks.positive("eps", eps)
    checks.non_negative("gamma", gamma)
    if clip_threshold is not None:
        checks.positive("clip_threshold", clip_threshold)
    _check_interval("update_interval", update_interval)
    if not (callable(getattr(hessian_diagonal_fn, "init", None))
            and callable(getattr(hessian_diagonal_fn, "update", None))):
        raise TypeError("hessian_diagonal_fn must be a gradient transformation (with init and "
                        f"update), got {type(hessian_diagonal_fn).__name__}.")
    mu_dtype = checks.state_dtype("mu_dtype", mu_dtype)
    every = print_win_rate_every_n_steps
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise ValueError(f"print_win_rate_every_n_steps must be an int >= 0, got {every!r}.")
    hessian_takes_extra = accepts_extra_args(hessian_diagonal_fn.update)

    def init(params):
        return SophiaState(numerics.zero_count(), tree.zeros_like(params, mu_dtype),
                           tree.zeros_like(params), hessian_diagonal_fn.init(params))

    def estimate(grads, params, extra_args, obj_fn):
        def refresh(hessian_fn_state, nu):
            kwargs = {}
            if hessian_takes_extra:
                kwargs = dict(extra_args)
                if obj_fn is not None or extra_args.get("value_fn") is not None:
                    kwargs["obj_fn"] = objective(obj_fn, extra_args, "sophia")
            diagonal, hessian_fn_state = hessian_diagonal_fn.update(
                grads, hessian_fn_state, params, **kwargs)
            nu = jax.tree.map(
                lambda h, v: ((1 - b2) * h + b2 * numerics.widened(v, h)).astype(v.dtype),
                diagonal, nu)
            return hessian_fn_state, nu

        return refresh

    def update(updates, state, params=None, *, obj_fn=None, **extra_args):
        checks.params_given("sophia", params)
        count = numerics.safe_increment(state.count)
        correction = numerics.bias_correction(b1, count)

        def rule(g, m, h):
            m = (1 - b1) * g + b1 * numerics.widened(m, g)
            step = (m / correction) / jnp.maximum(gamma * h, eps)
            if clip_threshold is not None:
                step = jnp.clip(step, -clip_threshold, clip_threshold)
            return step, m, h

        grads = updates
        updates, mu, _ = tree.map_rule(rule, grads, state.mu, state.nu, names=("mu", "nu"))
        if verbose and every > 0 and clip_threshold is not None:
            _print_win_rate(updates, clip_threshold, count, every)
        hessian_fn_state, nu = jax.lax.cond(
            state.count % update_interval == 0,
            estimate(grads, params, extra_args, obj_fn),
            lambda s, n: (s, n),
            state.hessian_fn_state, state.nu)
        return updates, SophiaState(count, mu, nu, hessian_fn_state)

    scaled = GradientTransformation(init, update)
    return flatten_invariant(scaled) if is_flatten_invariant(hessian_diagonal_fn) else scaled


def _print_win_rate(updates, clip_threshold, count, every) -> None:
    """Print the fraction of coordinates inside the clipping range at every ``every``-th
    step (a clipped step sits exactly on its bound)."""
    leaves = jax.tree.leaves(updates)
    inside = sum(jnp.sum(jnp.abs(u) < clip_threshold) for u in leaves)
    rate = inside / max(sum(jnp.size(u) for u in leaves), 1)
    jax.lax.cond(count % every == 0,
                 lambda: jax.debug.print("Sophia optimizer win rate: {}", rate),
                 lambda: None)
