"""Reference problems with known answers for testing and benchmarking optimizers.

Each factory returns a :class:`Problem`; see its docstring for the calling convention of
``loss_fn``. All factories are deterministic given their arguments and produce float32
params and data.
"""

from .base import Problem
from .datasets import linear_regression, logistic_regression, mlp_digits
from .functions import HIMMELBLAU_MINIMA, beale, himmelblau, rosenbrock
from .quadratics import noisy_quadratic, quadratic

__all__ = [
    "HIMMELBLAU_MINIMA",
    "Problem",
    "beale",
    "himmelblau",
    "linear_regression",
    "logistic_regression",
    "mlp_digits",
    "noisy_quadratic",
    "quadratic",
    "rosenbrock",
]
