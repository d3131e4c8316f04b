"""One process of a multi-host run of jaxgd, for tests/test_multihost.py.

    python tests/multihost_worker.py PROCESS_ID NUM_PROCESSES PORT OUT_JSON CASE[,CASE...]

joins ``jax.distributed`` (the coordinator on ``127.0.0.1:PORT``, hosted by process 0),
with gloo CPU collectives and ``LOCAL_DEVICES`` CPU devices per process (from
``XLA_FLAGS=--xla_force_host_platform_device_count=2`` when the environment sets it,
else from ``jax_num_cpu_devices``), runs each ``CASE`` in turn over every process's
devices and writes what it got to ``OUT_JSON``: ``{"results": {case: ...}}``, or
``{"error": ..., "traceback": ...}`` and exit status 1. Several cases share one launch
because starting the processes and joining them costs more than most cases. Every
process runs the same program on the same host inputs, as multi-controller JAX requires.

The test imports :func:`compute` to run the same case in its own process on one device:
the reference that every process must match.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback

import jax
import jax.numpy as jnp
import numpy as np

#: CPU devices per process.
LOCAL_DEVICES = 2

#: The learning rates of the sweeps.
LEARNING_RATES = [1e-3, 1e-2, 1e-1, 0.3]

CASES = ("sweep", "sweep_chunked", "fit_sharded", "fit_sharded_explicit", "other_grids")


def _jsonable(x):
    """Plain Python (dicts, lists, floats, ints, strs, bools) from NumPy / jax values."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, bool, int, float)) or x is None:
        return x
    array = np.asarray(x)
    return _jsonable(array.tolist()) if array.dtype == object else array.tolist()


def _gather(x):
    """A host NumPy copy of ``x``, also of an array split over other processes' devices."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def _sweep_record(res) -> dict:
    table = res.table()
    return {
        "final_loss": res.final_loss,
        "num_steps": res.num_steps,
        "losses": res.losses,
        "best_learning_rate": res.best["learning_rate"],
        "best_index": res.best_index,
        "table": [{name: column[i] for name, column in table.items()}
                  for i in range(res.trials.count)],
        "params": jax.tree.map(_gather, res.fit.params),
        "best_params": jax.tree.map(np.asarray, res.best_params),
    }


# --- "sweep": jaxgd.sweep of adam over 4 learning rates, one trial per device ----------

def _sweep(devices) -> dict:
    import jaxgd

    problem = jaxgd.problems.logistic_regression(256, 8, key=0)
    params = {"w": jnp.zeros(8), "b": jnp.zeros(())}
    res = jaxgd.sweep(problem.loss_fn, params, jaxgd.adam,
                      hyperparams={"learning_rate": LEARNING_RATES}, data=problem.data,
                      max_steps=50, devices=devices)
    return _sweep_record(res)


# --- "sweep_chunked": 3 rates x 2 seeds = 6 trials (seeds split over the devices, not
# shared), 4 at a time: 2 chunks, the last padded; mini-batches and validation data -----

def _sweep_chunked(devices) -> dict:
    import jaxgd

    problem = jaxgd.problems.logistic_regression(256, 8, key=0)
    params = {"w": jnp.zeros(8), "b": jnp.zeros(())}
    res = jaxgd.sweep(problem.loss_fn, params, jaxgd.adam,
                      hyperparams={"learning_rate": LEARNING_RATES[1:]}, seeds=2,
                      data=problem.data, val_data=problem.test_data, batch_size=64,
                      max_steps=24, max_parallel=4, devices=devices)
    record = _sweep_record(res)
    record["val_loss"] = res.val_loss
    return record


# --- "fit_sharded": jaxgd.fit of least squares, the (8, 4) weights split by rows -------

def least_squares_problem():
    """Host (NumPy) inputs, identical on every process: data ``(X, Y)`` and start ``W``."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((32, 8)).astype(np.float32)
    W_true = rng.standard_normal((8, 4)).astype(np.float32)
    Y = (X @ W_true + 0.1 * rng.standard_normal((32, 4))).astype(np.float32)
    return (X, Y), np.zeros((8, 4), np.float32)


def least_squares_loss(params, batch):
    X, Y = batch
    return jnp.mean((X @ params["W"] - Y) ** 2)


def _fit_sharded(devices, explicit: bool) -> dict:
    """On one device: plain arrays. Otherwise ``W`` split by rows over a 1-D mesh ``d``
    of all devices (Auto axis, or Explicit as ``jax.make_mesh`` makes by default, then
    under ``jax.set_mesh``), the data replicated; both global arrays built from the same
    host arrays on every process."""
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    import jaxgd

    (X, Y), W0 = least_squares_problem()
    optimizer = jaxgd.adam(0.05)
    if len(devices) == 1:
        res = jaxgd.fit(least_squares_loss, {"W": jnp.asarray(W0)}, optimizer,
                        (jnp.asarray(X), jnp.asarray(Y)), max_steps=40)
    else:
        axis_type = AxisType.Explicit if explicit else AxisType.Auto
        mesh = jax.make_mesh((len(devices),), ("d",), axis_types=(axis_type,),
                             devices=devices)
        rows, replicated = NamedSharding(mesh, P("d", None)), NamedSharding(mesh, P())

        def global_array(host, sharding):
            return jax.make_array_from_callback(host.shape, sharding, lambda i: host[i])

        params = {"W": global_array(W0, rows)}
        data = (global_array(X, replicated), global_array(Y, replicated))
        if explicit:
            with jax.set_mesh(mesh):
                res = jaxgd.fit(least_squares_loss, params, optimizer, data, max_steps=40)
        else:
            res = jaxgd.fit(least_squares_loss, params, optimizer, data, max_steps=40)
    W = res.params["W"]
    return {
        "losses": _gather(res.losses),
        "num_steps": _gather(res.num_steps),
        "stop_reason": str(res.stop_reason),
        "W": _gather(W),
        # about the run, not compared with the one-device reference (keys with "_")
        "_W_sharding": str(W.sharding),
        "_W_devices": len(W.sharding.device_set),
    }


# --- "other_grids": each process sweeps other learning rates: an error on both ----------

def _other_grids(devices) -> dict:
    import jaxgd

    rates = LEARNING_RATES[jax.process_index():]
    try:
        jaxgd.sweep(lambda p: jnp.sum(p ** 2), jnp.ones(2), jaxgd.sgd, max_steps=2,
                    hyperparams={"learning_rate": rates}, devices=devices)
    except ValueError as err:
        return {"error_message": str(err)}
    return {"error_message": None}


def compute(case: str, devices=None) -> dict:
    """Run ``case`` over ``devices`` (default all of ``jax.devices()``, every process's):
    its results as plain Python, the same in every process. Entries whose key starts
    with ``_`` describe the run (shardings) and differ from the one-device reference."""
    devices = list(jax.devices() if devices is None else devices)
    if case == "sweep":
        out = _sweep(devices)
    elif case == "sweep_chunked":
        out = _sweep_chunked(devices)
    elif case == "other_grids":
        out = _other_grids(devices)
    elif case in ("fit_sharded", "fit_sharded_explicit"):
        out = _fit_sharded(devices, explicit=case == "fit_sharded_explicit")
    else:
        raise ValueError(f"unknown case {case!r}; one of {CASES}")
    return _jsonable(out)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    process_id, num_processes, port = int(argv[0]), int(argv[1]), int(argv[2])
    out_path, cases = argv[3], argv[4].split(",")
    start = time.perf_counter()
    if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        jax.config.update("jax_num_cpu_devices", LOCAL_DEVICES)
    # gloo is already the default CPU collectives in jax 0.10; set it for older ones
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                               num_processes=num_processes, process_id=process_id,
                               initialization_timeout=60)
    assert jax.process_index() == process_id, (jax.process_index(), process_id)
    assert jax.process_count() == num_processes, jax.process_count()
    assert jax.local_device_count() == LOCAL_DEVICES, jax.local_devices()
    assert jax.device_count() == LOCAL_DEVICES * num_processes, jax.devices()
    initialized = time.perf_counter()
    record = {"process_id": process_id, "cases": cases, "device_count": jax.device_count(),
              "process_count": jax.process_count(), "results": {}}
    case = None
    try:
        for case in cases:
            record["results"][case] = compute(case)
        status = 0
    except Exception as err:  # written down for the parent, which shows it
        record["error"] = f"case {case!r}: {type(err).__name__}: {err}"
        record["traceback"] = traceback.format_exc()
        print(record["traceback"], file=sys.stderr)
        status = 1
    done = time.perf_counter()
    record["seconds"] = {"initialize": initialized - start, "compute": done - initialized,
                         "cpu": _cpu_seconds()}
    with open(out_path, "w") as f:
        json.dump(record, f)
    if status == 0:
        # a barrier: no process leaves (process 0 would take the coordination service
        # with it) while another still computes
        jax.distributed.shutdown()
    return status


if __name__ == "__main__":
    code = main(sys.argv[1:])
    if code:
        # no atexit handlers: jax's would shut jax.distributed down, a barrier that a
        # peer stuck in a collective never reaches; the parent kills that peer
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
