"""Muon: momentum orthogonalized by Newton–Schulz iterations, one matrix at a time."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd.core import checks, numerics, sharding, tree
from jaxgd.core.base import GradientTransformation, Updates, init_empty_state
from jaxgd.transforms.adam import debiased_mean

Preconditioning = Literal["frobenius", "spectral", "aol", "schatten"]
PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")

#: The quintic of Jordan et al. (2024): as steep at 0 as possible while 5 steps still
#: leave every singular value near 1 (not at 1, which does not hurt training).
DEFAULT_NS_COEFFS = (3.4445, -4.7750, 2.0315)
#: Presets for ``ns_coeffs`` given by name; "dion" is one triple per step (Ahn et al., 2025).
NS_COEFFS_PRESETS = {
    "standard": DEFAULT_NS_COEFFS,
    "dion": ((4.0848, -6.8946, 2.9270), (3.9505, -6.3029, 2.6377), (3.7418, -5.5913, 2.3037),
             (2.8769, -3.1427, 1.2046), (2.8366, -3.0525, 1.2012)),
}


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a leaf make the matrix that Muon orthogonalizes.

    ``reduction_axis`` (the rows: the input side of ``x @ W``) and ``output_axis`` (the
    columns), each an int or a sequence of ints merged in order. Every other axis is a
    batch axis: each slice along it is orthogonalized on its own. The default is a plain
    matrix, rows then columns. optax's ``MuonDimensionNumbers`` is accepted too.
    """

    reduction_axis: int | Sequence[int] = 0
    output_axis: int | Sequence[int] = 1


#: A ``MuonDimensionNumbers`` per leaf (``None``: not orthogonalized), a prefix of such a
#: tree, a function ``params -> such a tree``, or ``None`` for "every leaf is a matrix".
WeightDimensionNumbers = MuonDimensionNumbers | Any | Callable[[Any], Any] | None


def is_dimension_numbers(x: Any) -> bool:
    """Whether ``x`` is a ``MuonDimensionNumbers`` (jaxgd's or optax's)."""
    return isinstance(x, tuple) and hasattr(x, "reduction_axis") and hasattr(x, "output_axis")


def matrices(params: Any) -> Any:
    """The default choice of Muon's leaves: every 2-D leaf, as a plain matrix; ``None``
    (Adam in :func:`jaxgd.muon`) for every other leaf."""
    return jax.tree.map(lambda x: MuonDimensionNumbers() if jnp.ndim(x) == 2 else None, params)


def _dims_or_none(x: Any) -> bool:
    return x is None or is_dimension_numbers(x)


def leaf_dimension_numbers(spec: WeightDimensionNumbers, params: Any) -> list:
    """The dimension numbers of each leaf of ``params`` (a list in leaf order), ``spec``
    called on ``params`` if it is a function and spread over the leaves if a prefix."""
    if callable(spec) and not is_dimension_numbers(spec):
        spec = spec(params)
    count = len(jax.tree.leaves(params))
    if spec is None:
        return [None] * count
    structure = jax.tree.structure(spec, is_leaf=_dims_or_none)
    try:
        parts = structure.flatten_up_to(params)
    except (ValueError, TypeError) as error:
        raise ValueError(
            "the weight dimension numbers must have the tree structure of the params or a "
            f"prefix of it, but\n  dimension numbers: {tree.describe_structure(structure)}\n"
            f"  params: {tree.describe_structure(jax.tree.structure(params))}") from error
    specs = jax.tree.leaves(spec, is_leaf=_dims_or_none)
    return [d for d, part in zip(specs, parts, strict=True) for _ in jax.tree.leaves(part)]


def _axes(axes: int | Sequence[int], ndim: int, shape: tuple) -> tuple[int, ...]:
    axes = (axes,) if isinstance(axes, (int, np.integer)) else tuple(axes)
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for a leaf of shape {shape}.")
    return tuple(a % ndim for a in axes)


def matrix_axes(shape: tuple, dims: MuonDimensionNumbers | None):
    """``(batch, reduction, output)`` axes of a leaf of ``shape``; ``None`` dims stand for
    a plain matrix. Raises a ``ValueError`` when the leaf has no such matrix."""
    ndim = len(shape)
    if ndim < 2 or (dims is None and ndim != 2):
        raise ValueError(
            f"Muon orthogonalizes matrices, but this leaf has shape {shape}. Give its "
            "MuonDimensionNumbers (which axes are the rows and the columns), or leave it to "
            "another optimizer (jaxgd.muon sends it to Adam).")
    dims = dims or MuonDimensionNumbers()
    reduction = _axes(dims.reduction_axis, ndim, shape)
    output = _axes(dims.output_axis, ndim, shape)
    if not reduction or not output or set(reduction) & set(output):
        raise ValueError(f"the reduction axes {reduction} and output axes {output} must be "
                         f"non-empty and disjoint (leaf of shape {shape}).")
    batch = tuple(a for a in range(ndim) if a not in reduction + output)
    return batch, reduction, output


def check_leaves(dims: list, params: Any) -> None:
    """Raise a ``ValueError`` naming the first leaf of ``params`` with no matrix for
    Muon under its dimension numbers ``dims``."""
    for (path, leaf), d in zip(jax.tree_util.tree_leaves_with_path(params), dims, strict=True):
        try:
            matrix_axes(np.shape(leaf), d)
        except ValueError as error:
            raise ValueError(f"the leaf at {jax.tree_util.keystr(path) or '(root)'}: "
                             f"{error}") from None


def ns_coefficients(ns_coeffs, ns_steps: int) -> np.ndarray:
    """``ns_coeffs`` (a preset name, a triple or a sequence of triples) as a checked array."""
    if isinstance(ns_coeffs, str):
        if ns_coeffs not in NS_COEFFS_PRESETS:
            raise ValueError(f"ns_coeffs must be one of the presets {sorted(NS_COEFFS_PRESETS)}"
                             f" or coefficients, got {ns_coeffs!r}.")
        ns_coeffs = NS_COEFFS_PRESETS[ns_coeffs]
    if isinstance(ns_steps, jax.core.Tracer):
        raise ValueError("ns_steps must be an int >= 1, not a traced value: it sets how many "
                         "iterations are unrolled. Fix it (functools.partial) to vmap or sweep "
                         "the other arguments.")
    if isinstance(ns_steps, bool) or not isinstance(ns_steps, (int, np.integer)) or ns_steps < 1:
        raise ValueError(f"ns_steps must be an int >= 1, got {ns_steps!r}.")
    coeffs = np.asarray(ns_coeffs, dtype=np.float64)
    if coeffs.ndim not in (1, 2) or coeffs.shape[-1] != 3:
        raise ValueError(f"ns_coeffs must have shape (3,) or (n, 3), got {coeffs.shape}.")
    if coeffs.ndim == 2 and coeffs.shape[0] > ns_steps:
        raise ValueError(f"ns_coeffs has {coeffs.shape[0]} rows, one per step, but "
                         f"ns_steps={ns_steps}; pass ns_steps >= {coeffs.shape[0]} (as optax).")
    checks.finite("ns_coeffs", coeffs)
    return coeffs


def _quintic(x, c, a):
    return c[0] * x + (c[1] * a + c[2] * a @ a) @ x


def _first_step(x, c, preconditioning, eps):
    """The first iteration, rescaled first by AOL's row sums of :math:`|XX^*|` or by the
    Schatten-4 norm :math:`\\|XX^*\\|_F^{1/2}` (these two skip the upfront normalization)."""
    a = x @ x.T.conj()
    if preconditioning == "aol":
        s = jax.lax.rsqrt(jnp.clip(jnp.abs(a).sum(axis=-1), min=eps))[:, None]
        return _quintic(x * s, c, a * s * s.T)
    if preconditioning == "schatten":
        s = jax.lax.rsqrt(jnp.clip(jnp.linalg.norm(a), min=eps))
        return _quintic(x * s, c, a * s**2)
    return _quintic(x, c, a)


def orthogonalize_via_newton_schulz(
    x: jax.Array, ns_coeffs, ns_steps: int = 5, preconditioning: Preconditioning = "frobenius",
    eps=1e-8, dimension_numbers: MuonDimensionNumbers | None = None,
) -> jax.Array:
    """:math:`\\approx UV^*` for :math:`X = USV^*`, by Newton–Schulz iterations.

    .. math::
       X_0 = \\frac{X}{\\|X\\| + \\epsilon}, \\qquad
       X_{k+1} = a X_k + (b A_k + c A_k^2) X_k, \\quad A_k = X_k X_k^*

    on the wide orientation of :math:`X` (transposed when it has more rows than columns,
    so that :math:`A_k` is the smaller Gram matrix). The quintic maps each singular value
    :math:`\\sigma \\mapsto a\\sigma + b\\sigma^3 + c\\sigma^5`; the default coefficients
    push small values up fast and leave them near 1, not exactly 1.

    Args:
      x: a matrix, or an array with ``dimension_numbers``.
      ns_coeffs: :math:`(a, b, c)`, or one triple per step, shape ``(n, 3)``.
      ns_steps: the number of iterations (with one triple per step: must be >= ``n``,
        which sets the count).
      preconditioning: the norm in :math:`X_0`: ``"frobenius"``, ``"spectral"``, or
        ``"aol"`` / ``"schatten"``, which instead rescale inside the first iteration.
      eps: :math:`\\epsilon`, keeps a zero matrix finite.
      dimension_numbers: which axes form the matrix; the others are batch axes.
    """
    coeffs = jnp.asarray(ns_coeffs)
    batch, reduction, output = matrix_axes(x.shape, dimension_numbers)
    order = batch + reduction + output
    size = lambda axes: math.prod(x.shape[a] for a in axes)  # noqa: E731
    steps = [coeffs] * ns_steps if coeffs.ndim == 1 else list(coeffs)
    # in the matrix's own precision, whatever the dtype of a traced eps (as optax's float)
    eps = jnp.asarray(eps, jnp.finfo(x.dtype).dtype)

    def one(m):
        wide = m.shape[0] <= m.shape[1]
        m = m if wide else m.T
        if preconditioning == "frobenius":
            m = m / (jnp.linalg.norm(m) + eps)
        elif preconditioning == "spectral":
            m = m / (jnp.linalg.norm(m, ord=2) + eps)
        for i, c in enumerate(steps):
            c = c.astype(m.dtype)
            m = _first_step(m, c, preconditioning, eps) if i == 0 else _quintic(
                m, c, m @ m.T.conj())
        return m if wide else m.T

    stacked = x.transpose(order).reshape(size(batch), size(reduction), size(output))
    out = jax.vmap(one)(stacked).reshape([x.shape[a] for a in order])
    return out.transpose(np.argsort(order))


class MuonState(NamedTuple):
    """Step count, the momentum :math:`m` and the Newton–Schulz coefficients."""

    count: jax.Array
    mu: Updates
    ns_coeffs: jax.Array


def scale_by_muon(
    ns_coeffs=DEFAULT_NS_COEFFS, ns_steps: int = 5, beta=0.95, eps=1e-8, mu_dtype=None, *,
    nesterov: bool = True, adaptive: bool = False,
    preconditioning: Preconditioning = "frobenius",
    weight_dimension_numbers: WeightDimensionNumbers = None,
) -> GradientTransformation:
    """Muon scaling (Jordan et al., 2024): orthogonalized momentum, matrix by matrix.

    .. math::
       m_t = \\beta m_{t-1} + (1 - \\beta) g_t, \\qquad
       \\hat m_t = \\frac{\\beta\\, m_t}{1 - \\beta^{t+1}}
                 + \\frac{(1 - \\beta)\\, g_t}{1 - \\beta^t}
       \\ \\text{(Nesterov; else } \\hat m_t = m_t / (1 - \\beta^t)), \\\\
       u_t = \\mathrm{NS}(\\hat m_t) \\approx UV^* \\text{ for } \\hat m_t = USV^*

    per matrix, with :math:`\\mathrm{NS}` the Newton–Schulz iteration of
    :func:`orthogonalize_via_newton_schulz`: steepest descent under the spectral norm.
    With ``adaptive`` (Bernstein & Newhouse, 2024), :math:`u_t \\leftarrow
    \\langle \\hat m_t, u_t \\rangle\\, u_t`.

    Every leaf it is given must be a matrix under its dimension numbers (optax, given
    none, accepts a single array only); :func:`jaxgd.muon` routes the others to Adam.

    Args:
      ns_coeffs: :math:`(a, b, c)`, one triple per step, or a preset name
        (:data:`NS_COEFFS_PRESETS`).
      ns_steps: the number of Newton–Schulz iterations (static).
      beta: :math:`\\beta \\in [0, 1)`.
      eps: :math:`\\epsilon > 0` of the normalization.
      mu_dtype: the dtype :math:`m` is stored in, or ``None`` for each parameter's.
      nesterov: Nesterov momentum.
      adaptive: scale by the dual norm, as above.
      preconditioning: see :func:`orthogonalize_via_newton_schulz`.
      weight_dimension_numbers: a ``MuonDimensionNumbers`` per leaf (or a prefix, or a
        function of the params giving them); ``None``: every leaf is a plain matrix.
    """
    coeffs = ns_coefficients(ns_coeffs, ns_steps)
    checks.decay_rate("beta", beta)
    checks.positive("eps", eps)
    mu_dtype = checks.state_dtype("mu_dtype", mu_dtype)
    if preconditioning not in PRECONDITIONINGS:
        raise ValueError(f"preconditioning must be one of {PRECONDITIONINGS}, "
                         f"got {preconditioning!r}.")

    def init(params):
        check_leaves(leaf_dimension_numbers(weight_dimension_numbers, params), params)
        return MuonState(numerics.zero_count(), tree.zeros_like(params, mu_dtype),
                         jnp.asarray(coeffs.tolist()))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        dims = leaf_dimension_numbers(weight_dimension_numbers, updates)
        check_leaves(dims, updates)
        count = numerics.safe_increment(state.count)
        mean = debiased_mean(beta, count, nesterov=nesterov)

        def rule(g, m):
            m = (1 - beta) * g + beta * numerics.widened(m, g)
            return mean(g, m), m

        mu_hat, mu = tree.map_rule(rule, updates, state.mu, names=("mu",))
        leaves, treedef = jax.tree.flatten(mu_hat)
        # The iteration needs each whole matrix: an explicitly split one is gathered for
        # it, and the result split like the momentum again.
        out = [sharding.placed_like(orthogonalize_via_newton_schulz(
            sharding.gathered(x), state.ns_coeffs, ns_steps, preconditioning, eps, d), x)
            for x, d in zip(leaves, dims, strict=True)]
        if adaptive:
            out = [jnp.sum(x.conj() * o) * o for x, o in zip(leaves, out, strict=True)]
        return treedef.unflatten(out), MuonState(count, mu, state.ns_coeffs)

    return GradientTransformation(init, update)


def _shape_factor(shape: tuple, dims, consistent_rms):
    _, reduction, output = matrix_axes(shape, dims)
    fan_in, fan_out = (math.prod(shape[a] for a in axes) for axes in (reduction, output))
    if consistent_rms is None:
        return math.sqrt(max(1.0, fan_out / fan_in))
    return math.sqrt(max(fan_in, fan_out)) * consistent_rms


def scale_by_shape(weight_dimension_numbers: WeightDimensionNumbers = None,
                   consistent_rms=None) -> GradientTransformation:
    """Scale each matrix's update by a factor of its shape, :math:`n_{in} \\times n_{out}`.

    .. math::
       u \\leftarrow \\sqrt{\\max(1, n_{out} / n_{in})}\\; u
       \\quad\\text{or, with } \\rho = \\text{consistent\\_rms:}\\quad
       u \\leftarrow \\rho \\sqrt{\\max(n_{in}, n_{out})}\\; u

    The first keeps Muon's step size transferable across widths (Jordan, 2024); the
    second gives every matrix's update an RMS of about :math:`\\rho`, like AdamW's
    (Liu et al., 2025, who suggest 0.2).

    Args:
      weight_dimension_numbers: as :func:`scale_by_muon`.
      consistent_rms: :math:`\\rho \\ge 0`, or ``None`` for the first rule.
    """
    if consistent_rms is not None:
        checks.non_negative("consistent_rms", consistent_rms)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        dims = leaf_dimension_numbers(weight_dimension_numbers, updates)
        check_leaves(dims, updates)
        leaves, treedef = jax.tree.flatten(updates)
        return treedef.unflatten([
            (_shape_factor(x.shape, d, consistent_rms) * x).astype(x.dtype)
            for x, d in zip(leaves, dims, strict=True)]), state

    return GradientTransformation(init_empty_state, update)
