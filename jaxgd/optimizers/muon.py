"""Muon: orthogonalized momentum for the weight matrices, AdamW for the other leaves.

Arguments, defaults and formulas are optax's (0.2.8, ``optax.contrib.muon``), except
where the docstring says so.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import jax

from jaxgd.core import checks
from jaxgd.core.base import GradientTransformation, chain
from jaxgd.core.hyperparams import inject_hyperparams
from jaxgd.core.interop import is_params_placeholder
from jaxgd.transforms.adam import scale_by_adam
from jaxgd.transforms.masking import partition
from jaxgd.transforms.muon import (
    DEFAULT_NS_COEFFS,
    Preconditioning,
    WeightDimensionNumbers,
    leaf_dimension_numbers,
    matrices,
    scale_by_muon,
    scale_by_shape,
)
from jaxgd.transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxgd.transforms.weight_decay import add_decayed_weights

Mask = Any | Callable[[Any], Any] | None


def muon(
    learning_rate: ScalarOrSchedule,
    ns_coeffs=DEFAULT_NS_COEFFS,
    ns_steps: int = 5,
    beta=0.95,
    eps=1e-8,
    weight_decay=0.0,
    weight_decay_mask: Mask = None,
    mu_dtype=None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: Preconditioning = "frobenius",
    adam_b1=0.9,
    adam_b2=0.999,
    adam_eps_root=0.0,
    adam_weight_decay=0.0,
    adam_learning_rate: ScalarOrSchedule | None = None,
    muon_weight_dimension_numbers: WeightDimensionNumbers = None,
    consistent_rms=None,
) -> GradientTransformation:
    """Muon (Jordan et al., 2024): MomentUm Orthogonalized by Newton–Schulz.

    For each leaf Muon takes (a matrix :math:`n_{in} \\times n_{out}`):

    .. math::
       m_t = \\beta m_{t-1} + (1 - \\beta) g_t, \\qquad
       \\hat m_t = \\frac{\\beta\\, m_t}{1 - \\beta^{t+1}}
                 + \\frac{(1 - \\beta)\\, g_t}{1 - \\beta^t}, \\\\
       X_0 = \\frac{\\hat m_t}{\\|\\hat m_t\\|_F + \\epsilon}, \\quad
       X_{k+1} = a X_k + (b A_k + c A_k^2) X_k, \\quad A_k = X_k X_k^\\top
       \\quad (k < K), \\\\
       p_{t+1} = p_t - \\eta\\left(\\sqrt{\\max(1, n_{out}/n_{in})}\\; X_K
                 + \\lambda p_t\\right)

    :math:`X_K \\approx UV^\\top` for :math:`\\hat m_t = USV^\\top`: a step of the same
    size along every singular direction (steepest descent under the spectral norm). The
    iteration runs on the wide orientation (transposed when :math:`n_{in} > n_{out}`).
    Every other leaf takes an AdamW step, with ``adam_b1``, ``adam_b2``, ``eps``,
    ``adam_eps_root``, ``adam_weight_decay``, ``adam_learning_rate`` (default
    :math:`\\eta`), and Nesterov momentum when ``nesterov``.

    **Which leaves get Muon.** By default every 2-D leaf, as a plain matrix (rows: the
    input side of ``x @ W``); vectors, scalars and higher-rank leaves go to Adam. Override
    with ``muon_weight_dimension_numbers``: a tree shaped like the params (or a prefix of
    it) holding a :class:`~jaxgd.transforms.muon.MuonDimensionNumbers` for each leaf Muon
    should take (naming its row and column axes, the other axes batching independent
    matrices, e.g. a stack of per-head or per-layer kernels) and ``None`` for each leaf
    for Adam; or a function ``params -> such a tree``. With no leaf for Muon (say, params
    with no matrix), a warning says so at ``init`` and every leaf takes Adam's step.

    Not flatten-invariant: each matrix is orthogonalized on its own.

    Differs from optax on purpose: ``eps`` must be > 0 (it keeps a zero momentum finite),
    and the ``"aol"`` / ``"schatten"`` preconditionings floor their scale with ``eps``
    (optax: a fixed 1e-8).

    Args:
      learning_rate: :math:`\\eta`, or a schedule.
      ns_coeffs: :math:`(a, b, c)`, a sequence of triples (one per step, at most
        ``ns_steps``), or a preset name: ``"standard"``, ``"dion"``.
      ns_steps: :math:`K`, the number of Newton–Schulz iterations (fixed when built).
      beta: :math:`\\beta \\in [0, 1)`, the momentum decay.
      eps: :math:`\\epsilon > 0`, in the normalization and in Adam's denominator.
      weight_decay: :math:`\\lambda \\ge 0` for Muon's leaves, multiplied by :math:`\\eta`.
      weight_decay_mask: which of Muon's leaves to decay (bools shaped like the params,
        a prefix, or a function of them); ``None``: all.
      mu_dtype: the dtype of both momenta, or ``None`` for each parameter's.
      nesterov: Nesterov momentum (both parts); ``False`` uses
        :math:`\\hat m_t = m_t / (1 - \\beta^t)`.
      adaptive: scale :math:`X_K` by the dual norm :math:`\\langle \\hat m_t, X_K\\rangle`
        (Bernstein & Newhouse, 2024).
      preconditioning: the normalization of :math:`X_0`: ``"frobenius"``,
        ``"spectral"``, ``"aol"`` or ``"schatten"`` (see
        :func:`~jaxgd.transforms.muon.orthogonalize_via_newton_schulz`).
      adam_b1, adam_b2: Adam's decays in [0, 1) for the other leaves.
      adam_eps_root: Adam's :math:`\\epsilon_{root} \\ge 0`.
      adam_weight_decay: AdamW's decay for the other leaves.
      adam_learning_rate: Adam's learning rate; ``None``: ``learning_rate``.
      muon_weight_dimension_numbers: which leaves get Muon, see above.
      consistent_rms: :math:`\\rho`: replaces :math:`\\sqrt{\\max(1, n_{out}/n_{in})}` by
        :math:`\\rho\\sqrt{\\max(n_{in}, n_{out})}`, an update RMS of about :math:`\\rho`
        like AdamW's (Liu et al., 2025 suggest 0.2); ``None``: off.

    Example:
      >>> import jax.numpy as jnp, jaxgd
      >>> params = {"w": jnp.ones((4, 3)), "b": jnp.zeros(3)}  # w: Muon, b: Adam
      >>> opt = jaxgd.muon(0.02)
      >>> state = opt.init(params)

    References:
      Jordan et al., `Muon: An optimizer for hidden layers in neural networks
      <https://kellerjordan.github.io/posts/muon/>`_, 2024.

      Bernstein & Newhouse, `Old Optimizer, New Norm: An Anthology
      <https://arxiv.org/abs/2409.20325>`_, 2024.

      Liu et al., `Muon is Scalable for LLM Training <https://arxiv.org/abs/2502.16982>`_,
      2025.
    """
    checks.decay_rate("adam_b1", adam_b1)
    checks.decay_rate("adam_b2", adam_b2)
    checks.non_negative("adam_eps_root", adam_eps_root)
    checks.non_negative("adam_weight_decay", adam_weight_decay)
    if adam_learning_rate is None:
        adam_learning_rate = learning_rate
    elif not callable(adam_learning_rate):
        checks.non_negative("adam_learning_rate", adam_learning_rate)
    selection = matrices if muon_weight_dimension_numbers is None else \
        muon_weight_dimension_numbers

    def labels(params):
        dims = leaf_dimension_numbers(selection, params)
        return jax.tree.structure(params).unflatten(
            "adam" if d is None else "muon" for d in dims)

    split = partition({
        "muon": chain(
            scale_by_muon(ns_coeffs, ns_steps, beta, eps, mu_dtype, nesterov=nesterov,
                          adaptive=adaptive, preconditioning=preconditioning,
                          weight_dimension_numbers=selection),
            scale_by_shape(selection, consistent_rms),
            add_decayed_weights(weight_decay, weight_decay_mask),
            scale_by_learning_rate(learning_rate),
        ),
        "adam": chain(
            scale_by_adam(adam_b1, adam_b2, eps, adam_eps_root, mu_dtype, nesterov=nesterov),
            add_decayed_weights(adam_weight_decay),
            scale_by_learning_rate(adam_learning_rate),
        ),
    }, labels)

    def init(params):
        if not is_params_placeholder(params) and "muon" not in jax.tree.leaves(labels(params)):
            warnings.warn(
                "muon: no leaf of the params is chosen for Muon (by default: no 2-D leaf), "
                "so every leaf takes the Adam fallback's step. Give "
                "muon_weight_dimension_numbers to choose Muon's leaves, or use jaxgd.adamw.",
                UserWarning, stacklevel=3)
        return split.init(params)

    return GradientTransformation(init, split.update)


# ns_steps sets the program's unrolled loop, and the dimension numbers may be a function
# of the params: neither is a value to hold in the state (or a schedule).
muon = inject_hyperparams(
    muon, static_args=("ns_coeffs", "ns_steps", "muon_weight_dimension_numbers"))
