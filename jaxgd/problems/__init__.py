"""Reference problems with known answers for testing and benchmarking optimizers.

Each factory returns a :class:`Problem`; see its docstring for the calling convention of
``loss_fn``. All factories are deterministic given their arguments and produce float32
params and data.
"""

from .base import Problem
from .datasets import linear_regression, logistic_regression, mlp_digits
from .functions import (
    CAMEL_MINIMA,
    FUNCTIONS,
    HIMMELBLAU_MINIMA,
    beale,
    himmelblau,
    ill_conditioned,
    rosenbrock,
    saddle,
    six_hump_camel,
)
from .quadratics import noisy_quadratic, quadratic
from .recommender import matrix_factorization

__all__ = [
    "CAMEL_MINIMA",
    "FUNCTIONS",
    "HIMMELBLAU_MINIMA",
    "Problem",
    "beale",
    "himmelblau",
    "ill_conditioned",
    "linear_regression",
    "logistic_regression",
    "matrix_factorization",
    "mlp_digits",
    "noisy_quadratic",
    "quadratic",
    "rosenbrock",
    "saddle",
    "six_hump_camel",
]
