"""The one list of jaxgd's optimizers, by name: used by the demo, the CLI, tests and
benchmarks. Each factory's signature is the list of its hyperparameters
(:func:`jaxgd.hyperparam_names`)."""

from __future__ import annotations

from collections.abc import Callable

from jaxgd.core.base import GradientTransformation
from jaxgd.optimizers.adaptive import adagrad, adam, rmsprop
from jaxgd.optimizers.second_order import newton
from jaxgd.optimizers.sgd import momentum, nesterov, sgd

OPTIMIZERS: dict[str, Callable[..., GradientTransformation]] = {
    "sgd": sgd,
    "momentum": momentum,
    "nesterov": nesterov,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adam": adam,
    "newton": newton,  # its update needs value_fn=, which jaxgd.fit passes
}
