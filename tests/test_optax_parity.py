"""Every alias and building block gives optax's updates (rtol 1e-5, 100 steps, nested trees)."""

import numpy as np
import optax
import pytest
from conftest import updates_side_by_side

import jaxgd

LR = 0.01

ALIASES = {
    "sgd": (lambda: jaxgd.sgd(LR), lambda: optax.sgd(LR)),
    "sgd_momentum": (lambda: jaxgd.sgd(LR, 0.9), lambda: optax.sgd(LR, 0.9)),
    "sgd_nesterov": (lambda: jaxgd.sgd(LR, 0.8, True), lambda: optax.sgd(LR, 0.8, True)),
    "momentum": (lambda: jaxgd.momentum(LR), lambda: optax.sgd(LR, momentum=0.9)),
    "nesterov": (lambda: jaxgd.nesterov(LR), lambda: optax.sgd(LR, 0.9, nesterov=True)),
    "adagrad": (lambda: jaxgd.adagrad(LR), lambda: optax.adagrad(LR)),
    "rmsprop": (lambda: jaxgd.rmsprop(LR), lambda: optax.rmsprop(LR)),
    "rmsprop_centered_momentum": (
        lambda: jaxgd.rmsprop(LR, centered=True, momentum=0.9),
        lambda: optax.rmsprop(LR, centered=True, momentum=0.9),
    ),
    "rmsprop_torch_style": (
        lambda: jaxgd.rmsprop(LR, decay=0.99, eps_in_sqrt=False, nesterov=True, momentum=0.5),
        lambda: optax.rmsprop(LR, decay=0.99, eps_in_sqrt=False, nesterov=True, momentum=0.5),
    ),
    "adam": (lambda: jaxgd.adam(LR), lambda: optax.adam(LR)),
    "adam_eps_root_nesterov": (
        lambda: jaxgd.adam(LR, b1=0.8, eps_root=1e-8, nesterov=True),
        lambda: optax.adam(LR, b1=0.8, eps_root=1e-8, nesterov=True),
    ),
    "adam_schedule": (
        lambda: jaxgd.adam(optax.cosine_decay_schedule(LR, 50)),
        lambda: optax.adam(optax.cosine_decay_schedule(LR, 50)),
    ),
}

BLOCKS = {
    "identity": (jaxgd.identity, optax.identity),
    "scale": (lambda: jaxgd.scale(-0.3), lambda: optax.scale(-0.3)),
    "scale_by_learning_rate": (
        lambda: jaxgd.scale_by_learning_rate(0.2),
        lambda: optax.scale_by_learning_rate(0.2),
    ),
    "scale_by_schedule": (
        lambda: jaxgd.scale_by_schedule(optax.exponential_decay(1.0, 10, 0.5)),
        lambda: optax.scale_by_schedule(optax.exponential_decay(1.0, 10, 0.5)),
    ),
    "trace": (lambda: jaxgd.trace(0.9), lambda: optax.trace(0.9)),
    "trace_nesterov": (lambda: jaxgd.trace(0.5, True), lambda: optax.trace(0.5, True)),
    "scale_by_adagrad": (jaxgd.scale_by_adagrad, optax.scale_by_rss),
    "scale_by_rms": (jaxgd.scale_by_rms, optax.scale_by_rms),
    "scale_by_rms_bias_corrected": (
        lambda: jaxgd.scale_by_rms(0.99, 1e-6, 0.1, eps_in_sqrt=False, bias_correction=True),
        lambda: optax.scale_by_rms(0.99, 1e-6, 0.1, eps_in_sqrt=False, bias_correction=True),
    ),
    "scale_by_stddev": (jaxgd.scale_by_stddev, optax.scale_by_stddev),
    "scale_by_stddev_eps_outside": (
        lambda: jaxgd.scale_by_stddev(0.95, 1e-6, 0.1, eps_in_sqrt=False),
        lambda: optax.scale_by_stddev(0.95, 1e-6, 0.1, eps_in_sqrt=False),
    ),
    "scale_by_adam": (jaxgd.scale_by_adam, optax.scale_by_adam),
    "add_decayed_weights": (
        lambda: jaxgd.add_decayed_weights(0.1), lambda: optax.add_decayed_weights(0.1)
    ),
    "add_decayed_weights_masked": (
        lambda: jaxgd.add_decayed_weights(0.1, mask=lambda p: {
            "dense": {"w": True, "b": False}, "pair": False, "stack": [True, False]}),
        lambda: optax.add_decayed_weights(0.1, mask=lambda p: {
            "dense": {"w": True, "b": False}, "pair": (False, False), "stack": [True, False]}),
    ),
    "clip": (lambda: jaxgd.clip(0.5), lambda: optax.clip(0.5)),
    "clip_by_global_norm": (
        lambda: jaxgd.clip_by_global_norm(2.0), lambda: optax.clip_by_global_norm(2.0)
    ),
}


@pytest.mark.parametrize("name", sorted({**ALIASES, **BLOCKS}))
def test_matches_optax_over_100_steps(name, params):
    make_ours, make_theirs = {**ALIASES, **BLOCKS}[name]
    ours, theirs = updates_side_by_side(make_ours(), make_theirs(), params)
    assert len(ours) == len(theirs) == 6
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert np.all(np.isfinite(a))
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
