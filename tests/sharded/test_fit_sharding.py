"""Optimizer state and fit on 4 devices: the state follows the params, fit keeps the
params' and state's shardings, data-parallel mini-batches equal one device."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from catalog_tiers import catalog_params
from jax.sharding import AxisType, NamedSharding
from placement import make_mesh, on, put, spec_of

import jaxgd
from jaxgd.optimizers.catalog import OPTIMIZERS
from jaxgd.train.fit import lower_fit

ROWS, COLS = 8, 6


def sharded_params(mesh):
    """A matrix split over its rows and a replicated vector."""
    w = np.random.RandomState(0).randn(ROWS, COLS).astype(np.float32) * 0.3
    return {"w": put(w, mesh, "d", None), "b": put(np.zeros(COLS, np.float32), mesh)}


def check_state_follows(state, params):
    """Each params-shaped leaf sharded like its param; every other leaf replicated."""
    param_specs = {x.shape: spec_of(x) for x in jax.tree.leaves(params)}
    for path, x in jax.tree_util.tree_leaves_with_path(state):
        where = jax.tree_util.keystr(path)
        if x.shape == (ROWS, COLS):
            assert spec_of(x) == param_specs[x.shape], (where, x.sharding)
        else:
            assert x.sharding.is_fully_replicated, (where, x.sharding)


def build(name):
    factory = OPTIMIZERS[name]
    return factory() if "learning_rate" not in jaxgd.hyperparam_names(factory) else factory(
        learning_rate=1e-2)


#: The kinds of state the default run shards (elementwise moments, factored moments,
#: layerwise norms, a flat memory); the whole catalog with -m slow.
SHARDED_BY_DEFAULT = ("adafactor", "adam", "lamb", "lbfgs", "sgd")


@pytest.mark.parametrize("name", catalog_params(sorted(OPTIMIZERS), SHARDED_BY_DEFAULT))
def test_every_optimizers_state_follows_its_params_sharding(name, axis_type):
    mesh = make_mesh((4,), ("d",), axis_type)
    params, tx = sharded_params(mesh), build(name)
    with on(mesh, axis_type):
        eager = tx.init(params)
        traced = jax.jit(tx.init)(params)
    check_state_follows(eager, params)
    check_state_follows(traced, params)
    # eagerly, counters and hyperparameters are replicated over the params' own mesh
    for x in jax.tree.leaves(eager):
        assert x.sharding.device_set == set(mesh.devices.flat), x.sharding


def mlp_loss(p, batch=None):
    x = jnp.ones((4, ROWS)) if batch is None else batch[0]
    y = jnp.zeros((x.shape[0],)) if batch is None else batch[1]
    h = jnp.tanh(x @ p["w"] + p["b"])
    return jnp.mean((h.sum(axis=1) - y) ** 2)


def param_sized_all_gathers(hlo: str, min_size: int) -> list[str]:
    found = []
    for shape in re.findall(r"= \w+\[([\d,]*)\]\S* all-gather\(", hlo):
        size = int(np.prod([int(d) for d in shape.split(",") if d]))
        if size >= min_size:
            found.append(shape)
    return found


@pytest.mark.parametrize("name", ["adam", "momentum", "adafactor", "lbfgs"])
def test_fit_keeps_params_and_state_sharded_and_gathers_nothing(name, axis_type):
    mesh = make_mesh((4,), ("d",), axis_type)
    params, tx = sharded_params(mesh), build(name)
    one_device = jax.tree.map(np.asarray, params)
    with on(mesh, axis_type):
        res = jaxgd.fit(mlp_loss, params, tx, max_steps=5)
        hlo = jax.jit(lambda p: jaxgd.fit(mlp_loss, p, tx, max_steps=5).params).lower(
            params).compile().as_text()
    assert spec_of(res.params["w"]) == ("d",) and spec_of(res.params["b"]) == ()
    check_state_follows(res.opt_state, params)
    if name != "lbfgs":  # its state is one flat vector (as optax's): gathered by design
        assert param_sized_all_gathers(hlo, ROWS * COLS // 2) == []
    ref = jaxgd.fit(mlp_loss, one_device, tx, max_steps=5)
    np.testing.assert_allclose(res.losses, ref.losses, rtol=1e-5)
    np.testing.assert_allclose(res.params["w"], ref.params["w"], rtol=1e-5, atol=1e-7)


def test_many_sharded_leaves_do_not_take_the_flat_path():
    mesh = make_mesh((4,), ("d",), AxisType.Auto)
    # more leaves than the flat path converts inside a program (flat_layout.IN_PROGRAM_LEAVES)
    params = {f"w{i}": put(np.full((8, 4), 0.1 * i, np.float32), mesh, "d") for i in range(12)}

    def loss(p):
        return sum(jnp.sum(jnp.sin(x) ** 2) for x in jax.tree.leaves(p))

    hlo = lower_fit(loss, params, jaxgd.adam(1e-2), max_steps=3).compile().as_text()
    assert param_sized_all_gathers(hlo, 8) == []
    res = jaxgd.fit(loss, params, jaxgd.adam(1e-2), max_steps=3)
    assert all(spec_of(x) == ("d",) for x in jax.tree.leaves(res.params))
    with pytest.raises(ValueError, match="params on one device"):
        jaxgd.fit(loss, params, jaxgd.adam(1e-2), max_steps=3, flat_params=True)


def regression_data(n=512, f=ROWS, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(n, f).astype(np.float32)
    return x, np.sin(x @ rng.randn(f)).astype(np.float32)


def test_data_parallel_mini_batches_equal_one_device(axis_type):
    mesh = make_mesh((4,), ("data",), axis_type)
    x, y = regression_data()
    params = {"w": np.full((ROWS, COLS), 0.1, np.float32), "b": np.zeros(COLS, np.float32)}
    ref = jaxgd.fit(mlp_loss, params, jaxgd.adam(1e-2), (x, y), batch_size=64, num_epochs=3)
    data = (put(x, mesh, "data"), put(y, mesh, "data"))
    with on(mesh, axis_type):
        res = jaxgd.fit(mlp_loss, params, jaxgd.adam(1e-2), data, batch_size=64, num_epochs=3)
        hlo = lower_fit(mlp_loss, params, jaxgd.adam(1e-2), data, batch_size=64,
                        num_epochs=3).compile().as_text()
    np.testing.assert_allclose(res.losses, ref.losses, rtol=1e-5)
    np.testing.assert_allclose(res.params["w"], ref.params["w"], rtol=1e-5, atol=1e-7)
    # the data set is never gathered: at most a batch's worth crosses devices per step
    assert param_sized_all_gathers(hlo, 65 * ROWS) == []
    assert "all-reduce" in hlo  # the loss's mean over the split batch


def test_fsdp_params_and_data_parallel_batches_on_a_2d_mesh(axis_type):
    mesh = make_mesh((2, 2), ("model", "data"), axis_type)
    x, y = regression_data()
    start = {"w": np.full((ROWS, COLS), 0.1, np.float32), "b": np.zeros(COLS, np.float32)}
    ref = jaxgd.fit(mlp_loss, start, jaxgd.adam(1e-2), (x, y), batch_size=32, num_epochs=2)
    params = {"w": put(start["w"], mesh, "model", None), "b": put(start["b"], mesh)}
    data = (put(x, mesh, "data"), put(y, mesh, "data"))
    with on(mesh, axis_type):
        res = jaxgd.fit(mlp_loss, params, jaxgd.adam(1e-2), data, batch_size=32, num_epochs=2)
    assert spec_of(res.params["w"]) == ("model",)
    np.testing.assert_allclose(res.losses, ref.losses, rtol=1e-5)
    np.testing.assert_allclose(res.params["w"], ref.params["w"], rtol=1e-5, atol=1e-7)


def test_a_batch_that_does_not_split_over_the_data_devices_is_an_error():
    mesh = make_mesh((4,), ("data",), AxisType.Auto)
    x, y = regression_data()
    params = {"w": np.zeros((ROWS, COLS), np.float32), "b": np.zeros(COLS, np.float32)}
    with pytest.raises(ValueError, match="batch_size=30 does not split evenly over the 4"):
        jaxgd.fit(mlp_loss, params, jaxgd.adam(1e-2), (put(x, mesh, "data"), put(y, mesh, "data")),
                  batch_size=30)


def test_placement_is_read_from_concrete_arrays_only():
    # a leaf on one device gives no placement; a split one gives its sharding
    mesh = make_mesh((4,), ("data",), AxisType.Auto)
    from jaxgd.train import batching
    assert batching.shardings((np.zeros((8, 2)), jnp.zeros(8))) is None
    found = batching.shardings((put(np.zeros((8, 2)), mesh, "data"), jnp.zeros(8)))
    assert isinstance(found[0], NamedSharding) and found[1] is None


def test_replicated_leaves_stay_replicated_beside_split_ones():
    # XLA's propagation alone would split the biases of a deeper model like the weights
    mesh = make_mesh((4,), ("d",), AxisType.Auto)
    rng = np.random.RandomState(0)
    layers = [{"w": put(rng.randn(64, 64).astype(np.float32) * 0.1, mesh, "d", None),
               "b": put(np.zeros(64, np.float32), mesh)} for _ in range(4)]
    x = rng.randn(16, 64).astype(np.float32)

    def loss(ps):
        h = x
        for p in ps:
            h = jnp.tanh(h @ p["w"] + p["b"])
        return jnp.mean(h ** 2)

    res = jaxgd.fit(loss, layers, jaxgd.adam(1e-3), max_steps=5)
    for got, given in zip(jax.tree.leaves(res.params), jax.tree.leaves(layers), strict=True):
        assert spec_of(got) == spec_of(given)
    for layer in res.opt_state.inner_state[0].mu:
        assert spec_of(layer["w"]) == ("d",) and spec_of(layer["b"]) == ()


def test_an_explicit_mesh_needs_set_mesh():
    mesh = make_mesh((4,), ("d",), AxisType.Explicit)
    with pytest.raises(ValueError, match=r"explicit axes \('d',\): call this inside"):
        jaxgd.fit(mlp_loss, sharded_params(mesh), jaxgd.adam(1e-2), max_steps=2)
