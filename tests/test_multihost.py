"""jaxgd under multi-host JAX: two local processes joined by ``jax.distributed`` (gloo CPU
collectives), two CPU devices each, four global devices. Each process runs
``tests/multihost_worker.py``; both must give the numbers of the same computation run in
one process on one device (here, in the test's own process) to rel 1e-5.

The workers import jaxgd from where this process does (their ``PYTHONPATH`` starts
there), so ``PYTHONPATH=/some/copy pytest tests/test_multihost.py`` tests a copy."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import multihost_worker as worker  # tests/ is on sys.path, as for conftest
import numpy as np
import pytest

WORKER = Path(__file__).with_name("multihost_worker.py")
NUM_PROCESSES = 2
#: A run takes ~10 s alone; under ``pytest -n 2`` its 2 processes share the 2 cores with
#: the other worker (the 4-device child among them), so allow many times that.
TIMEOUT_S = 300
RTOL, ATOL = 1e-5, 1e-7
#: What process 0 prints when another program took the port between _free_port and
#: the coordinator's bind: then the run is retried on another port.
PORT_TAKEN = ("Failed to start RPC server", "Failed to add port")


def _free_port() -> int:
    """A TCP port free now on every interface: the coordinator binds ``[::]:PORT``, not
    just 127.0.0.1."""
    if socket.has_dualstack_ipv6():
        server = socket.create_server(("", 0), family=socket.AF_INET6, dualstack_ipv6=True)
    else:
        server = socket.create_server(("", 0))
    with server:
        return server.getsockname()[1]


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    flags = [f for f in env.get("XLA_FLAGS", "").split()
             if not f.startswith("--xla_force_host_platform_device_count")]
    flags.append(f"--xla_force_host_platform_device_count={worker.LOCAL_DEVICES}")
    env.update(XLA_FLAGS=" ".join(flags), JAX_PLATFORMS="cpu")
    import jaxgd  # the workers use this jaxgd (a checkout or a copy on PYTHONPATH)

    root = str(Path(jaxgd.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


class _Run:
    """One launch of the ``NUM_PROCESSES`` workers of a case on a fresh port."""

    def __init__(self, case: str, tmp_path: Path, attempt: int):
        self.case = case
        self.outs = [tmp_path / f"{case}.{attempt}.{i}.json" for i in range(NUM_PROCESSES)]
        self.errs = [tmp_path / f"{case}.{attempt}.{i}.stderr" for i in range(NUM_PROCESSES)]
        port, env = _free_port(), _worker_env()
        self.start = time.perf_counter()
        self.procs: list[subprocess.Popen] = []
        try:
            for i in range(NUM_PROCESSES):
                with open(self.errs[i], "w") as err:
                    self.procs.append(subprocess.Popen(
                        [sys.executable, str(WORKER), str(i), str(NUM_PROCESSES), str(port),
                         str(self.outs[i]), case],
                        stdout=subprocess.DEVNULL, stderr=err, env=env))
            self._wait()
        finally:
            self._kill()
        self.wall = time.perf_counter() - self.start
        self.codes = [p.returncode for p in self.procs]

    def _wait(self) -> None:
        """Until both exit, one fails (the other may wait on a collective for ever), or
        ``TIMEOUT_S`` has passed."""
        deadline = self.start + TIMEOUT_S
        while any(p.poll() is None for p in self.procs):
            if any(p.returncode not in (None, 0) for p in self.procs):
                return
            if time.perf_counter() > deadline:
                return
            time.sleep(0.05)

    def _kill(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            p.wait()

    def stderr(self, i: int) -> str:
        text = self.errs[i].read_text(errors="replace") if self.errs[i].exists() else ""
        return "\n".join(line for line in text.splitlines() if not line.startswith("[Gloo]"))

    @property
    def ok(self) -> bool:
        return all(c == 0 for c in self.codes) and all(o.exists() for o in self.outs)

    @property
    def port_taken(self) -> bool:
        return not self.ok and any(s in self.stderr(0) for s in PORT_TAKEN)

    def records(self) -> list[dict]:
        if self.ok:
            return [json.loads(out.read_text()) for out in self.outs]
        status = (f"timed out after {TIMEOUT_S} s (killed)" if self.wall > TIMEOUT_S
                  else f"exit codes {self.codes} after {self.wall:.1f} s")
        details = []
        for i, out in enumerate(self.outs):
            if out.exists():
                details.append(f"process {i}: {json.loads(out.read_text()).get('error')}")
        for i in range(NUM_PROCESSES):
            details.append(f"--- process {i} stderr (last 4000 chars) ---\n"
                           f"{self.stderr(i)[-4000:]}")
        raise AssertionError(f"multi-host case {self.case!r}: {status}\n" + "\n".join(details))


def _assert_close(got, want, path="result"):
    """Nested dicts / lists: numbers equal to rel ``RTOL``, strings and bools exactly;
    dict entries whose key starts with ``_`` (about the run) are not compared."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), (path, got, want)
        for k in want:
            if not k.startswith("_"):
                _assert_close(got[k], want[k], f"{path}[{k!r}]")
    elif isinstance(want, (str, bool)) or (
            isinstance(want, list) and any(isinstance(w, (str, bool, dict, list))
                                           for w in want)):
        if isinstance(want, list):
            assert isinstance(got, list) and len(got) == len(want), (path, got, want)
            for i, (g, w) in enumerate(zip(got, want, strict=True)):
                _assert_close(g, w, f"{path}[{i}]")
        else:
            assert got == want, (path, got, want)
    else:
        np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                                   rtol=RTOL, atol=ATOL, err_msg=path)


def launch(cases: tuple[str, ...], tmp_path: Path) -> list[dict]:
    """Run ``cases`` one after another in one launch of the workers; their records."""
    for attempt in range(3):
        run = _Run(",".join(cases), tmp_path, attempt)
        if not run.port_taken:
            break
    records = run.records()
    for i, record in enumerate(records):
        assert record["process_id"] == i
        assert record["process_count"] == NUM_PROCESSES
        assert record["device_count"] == NUM_PROCESSES * worker.LOCAL_DEVICES
    print(f"{cases}: {run.wall:.1f} s for both processes; "
          f"{[r['seconds'] for r in records]}")
    return records


#: The default run's cases share one launch: starting and joining the processes costs
#: more than most cases. other_grids, where the processes disagree on purpose, goes last.
SHARED = ("sweep", "fit_sharded", "fit_sharded_explicit", "other_grids")


def check_case(case: str, records: list[dict]) -> list[dict]:
    """Check every worker's result of ``case`` against the same case run here on one
    device; return each worker's result."""
    reference = worker.compute(case, devices=worker.jax.devices()[:1])
    for i, record in enumerate(records):
        _assert_close(record["results"][case], reference, f"process {i}")
    return [record["results"][case] for record in records]


def test_two_processes_give_the_one_device_results(subtests, tmp_path):
    """The cases of one launch (one test, so that no pytest-xdist worker launches it
    again): a sweep, fit over an auto and an explicit mesh, and processes that sweep
    other grids."""
    records = launch(SHARED, tmp_path)
    with subtests.test("sweep"):
        for result in check_case("sweep", records):
            table = result["table"]
            assert ([row["learning_rate"] for row in table]
                    == pytest.approx(worker.LEARNING_RATES))
    for case in ("fit_sharded", "fit_sharded_explicit"):  # auto mesh, explicit mesh
        with subtests.test(case):
            for result in check_case(case, records):
                assert result["_W_devices"] == NUM_PROCESSES * worker.LOCAL_DEVICES
    with subtests.test("other_grids"):
        for record in records:
            message = record["results"]["other_grids"]["error_message"]
            assert "process(es) [1] passed other hyperparameters" in message


@pytest.mark.slow
def test_sweep_in_padded_chunks_of_seeds_over_two_processes(tmp_path):
    for result in check_case("sweep_chunked", launch(("sweep_chunked",), tmp_path)):
        assert len(result["table"]) == 6
        assert sorted({row["seed"] for row in result["table"]}) == [0, 1]
