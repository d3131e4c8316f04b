"""Muon on a matrix split over its rows: the momentum stays split like it, and the
updates are those of one device."""

import jax
import numpy as np
from placement import make_mesh, on, put, spec_of

import jaxgd

ROWS, COLS = 8, 6  # more rows than columns: the iteration runs on the transpose


def one_device_params():
    w = np.random.RandomState(0).randn(ROWS, COLS).astype(np.float32)
    return {"w": w, "b": np.linspace(-1.0, 1.0, COLS, dtype=np.float32)}


def gradients(step):
    rng = np.random.RandomState(10 + step)
    return {"w": rng.randn(ROWS, COLS).astype(np.float32),
            "b": rng.randn(COLS).astype(np.float32)}


def run(opt, params, place, num_steps=3):
    """The updates of ``num_steps`` jitted steps and the last state."""
    step = jax.jit(opt.update)
    state, updates = opt.init(params), []
    for t in range(num_steps):
        u, state = step(place(gradients(t)), state, params)
        updates.append(u)
        params = jax.tree.map(lambda p, x: p + x, params, u)
    return updates, state


def test_muon_state_and_updates_follow_a_row_sharded_matrix(axis_type):
    mesh = make_mesh((4,), ("d",), axis_type)

    def place(tree):
        return {"w": put(tree["w"], mesh, "d", None), "b": put(tree["b"], mesh)}

    opt = jaxgd.muon(0.02, weight_decay=0.1, adaptive=True)
    alone, _ = run(opt, one_device_params(), lambda tree: tree)
    with on(mesh, axis_type):
        sharded, state = run(opt, place(one_device_params()), place)

    muon_mu = state.inner_state.inner_states["muon"].inner_state[0].mu
    adam_mu = state.inner_state.inner_states["adam"].inner_state[0].mu
    assert spec_of(muon_mu["w"]) == ("d",)
    assert adam_mu["b"].sharding.is_fully_replicated
    for u_sharded, u_alone in zip(sharded, alone, strict=True):
        assert spec_of(u_sharded["w"]) == ("d",)
        for a, b in zip(jax.tree.leaves(u_sharded), jax.tree.leaves(u_alone), strict=True):
            np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-7)
