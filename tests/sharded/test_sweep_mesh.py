"""Sweeps on a 2-D mesh: trials over one axis, the data's examples over the other."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec
from placement import make_mesh, spec_of

import jaxgd

PROBLEM = jaxgd.problems.logistic_regression(256, 8, key=0)
START = {"w": jnp.zeros(8), "b": jnp.zeros(())}
RATES = [1e-3, 1e-2, 1e-1, 0.3, 1.0, 3.0]


def run(data=PROBLEM.data, **kwargs):
    return jaxgd.sweep(PROBLEM.loss_fn, START, jaxgd.adam, data=data,
                       hyperparams={"learning_rate": RATES}, max_steps=30, **kwargs)


@pytest.mark.parametrize("regime", [{}, {"batch_size": 32, "seeds": 2}],
                         ids=["full-batch", "mini-batch"])
def test_a_sweep_on_a_trials_by_data_mesh_equals_one_device(regime, axis_type):
    mesh = make_mesh((2, 2), ("trials", "data"), axis_type)
    one = run(devices=jax.devices()[:1], **regime)
    res = run(mesh=mesh, **regime)
    assert spec_of(res.fit.stop_code) == ("trials",)
    np.testing.assert_allclose(res.losses, one.losses, rtol=1e-5)
    np.testing.assert_allclose(res.final_loss, one.final_loss, rtol=1e-5)
    assert res.best["learning_rate"] == one.best["learning_rate"]


def test_trials_split_over_all_devices_equal_one_device():
    """6 trials over the 4 devices: padded to 8, 2 per device, the padding dropped."""
    res, one = run(devices=jax.devices()), run(devices=jax.devices()[:1])
    assert len(res.fit.stop_code.sharding.device_set) == 4
    assert len(res.fit.params["w"].sharding.device_set) == 4
    assert res.losses.shape[0] == len(RATES)
    np.testing.assert_allclose(res.losses, one.losses, rtol=1e-5)
    np.testing.assert_allclose(res.final_loss, one.final_loss, rtol=1e-5)


def test_the_trial_axis_can_have_any_name():
    mesh = make_mesh((2, 2), ("runs", "batch"), AxisType.Auto)
    np.testing.assert_allclose(run(mesh=mesh, trial_axis="runs").losses,
                               run(devices=jax.devices()[:1]).losses, rtol=1e-5)


def test_bad_placements_are_named_before_compiling():
    mesh = make_mesh((2, 2), ("trials", "data"), AxisType.Auto)
    with pytest.raises(ValueError, match="trial_axis='lanes' is not an axis of the mesh"):
        run(mesh=mesh, trial_axis="lanes")
    with pytest.raises(ValueError, match="devices or mesh, not both"):
        run(mesh=mesh, devices=jax.devices())
    with pytest.raises(ValueError, match="5 trials do not split evenly over the 2 devices"):
        jaxgd.sweep(PROBLEM.loss_fn, START, jaxgd.adam, data=PROBLEM.data, mesh=mesh,
                    hyperparams={"learning_rate": RATES[:5]}, max_steps=3, pad=False)
    odd = jax.tree.map(lambda x: x[:255], PROBLEM.data)
    with pytest.raises(ValueError, match="data has 255 examples, which do not split evenly"):
        run(data=odd, mesh=mesh)


def test_start_params_and_data_placed_elsewhere_are_moved_onto_the_sweeps_mesh(axis_type):
    other = make_mesh((4,), ("d",), AxisType.Auto)
    start = jax.device_put(START, NamedSharding(other, PartitionSpec()))
    data = jax.device_put(PROBLEM.data, NamedSharding(other, PartitionSpec("d")))
    res = jaxgd.sweep(PROBLEM.loss_fn, start, jaxgd.adam, data=data, max_steps=30,
                      hyperparams={"learning_rate": RATES},
                      mesh=make_mesh((2, 2), ("trials", "data"), axis_type))
    np.testing.assert_allclose(res.losses, run(devices=jax.devices()[:1]).losses, rtol=1e-5)
