"""The one list of jaxgd's optimizers, by name: used by the demo, the CLI, tests and
benchmarks. Each factory's signature is the list of its hyperparameters
(:func:`jaxgd.hyperparam_names`)."""

from __future__ import annotations

from collections.abc import Callable

from jaxgd.core.base import GradientTransformation
from jaxgd.optimizers.adafactor import adafactor
from jaxgd.optimizers.adam import adam, adamax, adamaxw, adamw, amsgrad, nadam, nadamw
from jaxgd.optimizers.adam_variants import adabelief, radam, yogi
from jaxgd.optimizers.ademamix import ademamix, simplified_ademamix
from jaxgd.optimizers.adopt import adopt
from jaxgd.optimizers.layerwise import fromage, lamb, lars, novograd
from jaxgd.optimizers.lbfgs import lbfgs
from jaxgd.optimizers.lion import lion
from jaxgd.optimizers.madgrad import madgrad
from jaxgd.optimizers.muon import muon
from jaxgd.optimizers.newton import newton
from jaxgd.optimizers.optimistic import optimistic_gradient_descent
from jaxgd.optimizers.parameter_free import cocob, dadapt_adamw, dog, dowg, prodigy
from jaxgd.optimizers.polyak import polyak_sgd
from jaxgd.optimizers.rms import adadelta, adagrad, rmsprop
from jaxgd.optimizers.schedule_free import schedule_free_adamw, schedule_free_sgd
from jaxgd.optimizers.sgd import momentum, nesterov, noisy_sgd, sgd
from jaxgd.optimizers.sign import rprop, sign_sgd
from jaxgd.optimizers.sm3 import sm3
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
