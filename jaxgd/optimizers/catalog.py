"""The one list of jaxgd's optimizers, by name: used by the demo, the CLI, tests and
benchmarks. Each factory's signature is the list of its hyperparameters
(:func:`jaxgd.hyperparam_names`)."""

from __future__ import annotations

from collections.abc import Callable

from jaxgd.core.base import GradientTransformation
from jaxgd.optimizers.adam_family import (
    adabelief,
    adadelta,
    adamax,
    adamaxw,
    adamw,
    amsgrad,
    lion,
    nadam,
    nadamw,
    radam,
    yogi,
)
from jaxgd.optimizers.adaptive import adagrad, adam, rmsprop
from jaxgd.optimizers.ademamix import ademamix, simplified_ademamix
from jaxgd.optimizers.adopt import adopt
from jaxgd.optimizers.first_order import (
    noisy_sgd,
    optimistic_gradient_descent,
    polyak_sgd,
    rprop,
    sign_sgd,
)
from jaxgd.optimizers.layerwise import fromage, lamb, lars, novograd
from jaxgd.optimizers.madgrad import madgrad
from jaxgd.optimizers.memory_efficient import adafactor, sm3
from jaxgd.optimizers.muon import muon
from jaxgd.optimizers.parameter_free import cocob, dadapt_adamw, dog, dowg, prodigy
from jaxgd.optimizers.quasi_newton import lbfgs
from jaxgd.optimizers.schedule_free import schedule_free_adamw, schedule_free_sgd
from jaxgd.optimizers.second_order import newton
from jaxgd.optimizers.sgd import momentum, nesterov, sgd
from jaxgd.optimizers.sophia import sophia

OPTIMIZERS: dict[str, Callable[..., GradientTransformation]] = {
    "sgd": sgd,
    "momentum": momentum,
    "nesterov": nesterov,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adam": adam,
    "adamw": adamw,
    "nadam": nadam,
    "nadamw": nadamw,
    "amsgrad": amsgrad,
    "adamax": adamax,
    "adamaxw": adamaxw,
    "radam": radam,
    "adabelief": adabelief,
    "yogi": yogi,
    "lion": lion,
    "adadelta": adadelta,
    "lamb": lamb,
    "lars": lars,
    "novograd": novograd,
    "fromage": fromage,
    "adafactor": adafactor,
    "sm3": sm3,
    "noisy_sgd": noisy_sgd,
    "sign_sgd": sign_sgd,
    "rprop": rprop,
    "optimistic_gradient_descent": optimistic_gradient_descent,
    "ademamix": ademamix,
    "simplified_ademamix": simplified_ademamix,
    "schedule_free_sgd": schedule_free_sgd,
    "schedule_free_adamw": schedule_free_adamw,
    "madgrad": madgrad,
    "adopt": adopt,
    "prodigy": prodigy,
    "dadapt_adamw": dadapt_adamw,
    "cocob": cocob,
    "dog": dog,
    "dowg": dowg,
    "muon": muon,
    # These read extra arguments that jaxgd.fit passes: value (polyak_sgd),
    # value_fn (lbfgs's line search, newton).
    "polyak_sgd": polyak_sgd,
    "lbfgs": lbfgs,
    "newton": newton,
    # sophia's Hessian estimate reads the loss as value_fn (or optax's obj_fn).
    "sophia": sophia,
}
