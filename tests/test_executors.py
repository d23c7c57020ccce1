"""Work handed to a Dask LocalCluster of 2 worker processes equals the in-process run (workbench.executors).

One cluster for the module (its startup is printed with ``-s``). Equality to rounding: the workers run the
same XLA programs in float32 on the same CPU, but a worker process may compile a contraction with another
summation order, so an entry may differ by a few float32 ulps of the largest term that enters it: compared
with a relative 1e-6 plus an absolute 1e-6 x max|reference| (8 ulps of the scale; measured: kernel entries
that cancel to 0.2% of the largest differ by 1.6e-7 = 2.5e-8 of the scale). Any real difference (a wrong
block, a swapped draw, learning rate or seed) is orders of magnitude larger.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import textwrap
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

#: a 2-process Dask cluster and its trainings cost minutes on 2 cores: slow tier (WORKBENCH_SLOW=1)
pytestmark = pytest.mark.slow

from workbench import config  # noqa: E402
from workbench.executors import WorkerImportError, as_executor, run_tasks  # noqa: E402
from workbench.experiments.sweep import sweep  # noqa: E402
from workbench.hessian import mlp_loss  # noqa: E402
from workbench.kernels.empirical import empirical_ntk  # noqa: E402
from workbench.nets import MLP  # noqa: E402
from workbench.studies.hessian import batch_hessian_study  # noqa: E402

# the helpers below travel by value (the workers need not import this test module)
cloudpickle.register_pickle_by_value(sys.modules[__name__])

RTOL = 1e-6  # see the module docstring


def assert_close(got, ref, **kw):
    ref = np.asarray(ref)
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=1e-6 * float(np.nanmax(np.abs(ref), initial=0.0)), **kw)
NET = MLP(depth=1, width=8, activation="tanh", w_std=1.5, b_std=0.1, parametrization="standard")
SWEEP = dict(batch_sizes=[4, 8], lrs=[0.05, 0.5], seeds=1, num_steps=20, record_every=10,
             optimizers=("sgd", "adam"), tag=NET.describe(), progress=False)
POINTS = 4  # optimizers x batch sizes


@pytest.fixture(scope="module")
def client():
    start = time.perf_counter()
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                       silence_logs=logging.CRITICAL)
    c = distributed.Client(cluster)
    c.wait_for_workers(2)
    c.run(__import__, "workbench.experiments.sweep")  # jax and the workbench imported on both workers
    print(f"\nLocalCluster(2 processes) ready in {time.perf_counter() - start:.1f} s")
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def problem():
    kx, _ = jax.random.split(jax.random.PRNGKey(3))
    x = jax.random.normal(kx, (32, 3))
    y = jnp.tanh(x[:, :1] - x[:, 1:2])
    return mlp_loss(NET, "mse"), functools.partial(NET.init, in_dim=3), (x, y)


@pytest.fixture(scope="module")
def reference(problem):
    loss_fn, init_fn, data = problem
    return sweep(loss_fn, init_fn, data, **SWEEP)  # in process, no executor


def assert_same_sweep(got, ref):
    assert set(got) == set(ref)
    for opt, r in ref.items():
        g = got[opt]
        assert g.completed and g.batch_sizes.tolist() == r.batch_sizes.tolist()
        assert_close(g.train_loss, r.train_loss)
        np.testing.assert_array_equal(g.diverged, r.diverged)
        np.testing.assert_array_equal(g.diverged_step, r.diverged_step)


def point_files(d) -> list:
    return [p for p in d.glob("*.npz") if not p.name.endswith(".tmp.npz")]  # finished points, not a write in flight


def task_workers(stream) -> list[str]:
    return [t["worker"] for t in stream.data if str(t["key"]).startswith("_call")]


def test_sweep_on_workers_equals_in_process(client, problem, reference, tmp_path):
    loss_fn, init_fn, data = problem
    with distributed.get_task_stream(client) as ts:
        got = sweep(loss_fn, init_fn, data, executor=client, results_dir=str(tmp_path / "client"), **SWEEP)
    assert_same_sweep(got, reference)
    workers = task_workers(ts)
    assert len(workers) == POINTS and set(workers) <= set(client.scheduler_info()["workers"])
    device = got["sgd"].device
    assert "[cpu:0]" in device and "dask worker tcp://" in device and f"pid {os.getpid()})" not in device
    assert len(point_files(tmp_path / "client")) == POINTS  # the client wrote every point
    # workers write into a shared directory; a rerun loads everything and submits nothing
    shared = tmp_path / "shared"
    got_w = sweep(loss_fn, init_fn, data, executor=client.get_executor(), results_dir=str(shared), workers_write=True,
                  **SWEEP)
    assert_same_sweep(got_w, reference)
    assert len(point_files(shared)) == POINTS
    with distributed.get_task_stream(client) as ts:
        again = sweep(loss_fn, init_fn, data, executor=client, results_dir=str(shared), **SWEEP)
    assert task_workers(ts) == []
    assert_same_sweep(again, reference)


class HoldAllButOne:
    """A training callback (it runs on the workers): the first task to call it takes a token file and runs free;
    every other task waits after its first chunk until the release file exists. So exactly one point can finish
    before the client is interrupted, whatever the compile times (a warm compilation cache made the earlier
    timing-based version of this test finish all points before the interrupt)."""

    def __init__(self, folder: str) -> None:
        self.token, self.release = os.path.join(folder, "token"), os.path.join(folder, "release")
        self.mine = False

    def __call__(self, steps_done: int) -> None:
        if self.mine:
            return
        try:
            os.close(os.open(self.token, os.O_CREAT | os.O_EXCL))
            self.mine = True
            return
        except FileExistsError:
            pass
        while not os.path.exists(self.release):
            time.sleep(0.01)


def test_interrupted_client_resumes_with_only_missing_points(client, problem, reference, tmp_path):
    loss_fn, init_fn, data = problem
    client.wait_for_workers(2)
    results, flags = tmp_path / "results", tmp_path / "flags"
    results.mkdir()
    flags.mkdir()
    hold = HoldAllButOne(str(flags))
    kw = {**SWEEP, "num_steps": 30}

    def interrupt_after_first_point():
        while not point_files(results):
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the client

    watcher = threading.Thread(target=interrupt_after_first_point, daemon=True)
    watcher.start()
    part = sweep(loss_fn, init_fn, data, executor=client, results_dir=str(results), callback=hold, **kw)
    watcher.join()
    finished = len(point_files(results))
    assert finished == 1 and not all(r.completed for r in part.values())
    (flags / "release").touch()  # the held tasks (no longer wanted) finish; wait until the workers are idle
    deadline = time.monotonic() + 120
    while any(client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    with distributed.get_task_stream(client) as ts:
        full = sweep(loss_fn, init_fn, data, executor=client, results_dir=str(results), callback=hold, **kw)
    assert len(task_workers(ts)) == POINTS - finished  # trained only the missing points
    assert all(r.completed and r.train_loss.shape[0] == 2 for r in full.values())
    for opt, r in part.items():  # the point finished before the interrupt is the one loaded now
        for k, b in enumerate(r.batch_sizes):
            np.testing.assert_array_equal(full[opt].train_loss[list(full[opt].batch_sizes).index(b)], r.train_loss[k])


def test_blocked_empirical_ntk_on_workers(client):
    client.wait_for_workers(2)
    params = NET.init(jax.random.PRNGKey(1), 3)
    x = jax.random.normal(jax.random.PRNGKey(2), (10, 3))
    x2 = jax.random.normal(jax.random.PRNGKey(4), (6, 3))
    with distributed.get_task_stream(client) as ts:
        sym = empirical_ntk(NET, params, x, block_size=4, executor=client)  # 6 upper-triangle blocks
        cross = empirical_ntk(NET.apply, params, x, x2, method="jacobian", output="full", block_size=4,
                              executor=client)  # 3 x 2 blocks
    assert len(task_workers(ts)) == 6 + 6
    assert_close(sym, empirical_ntk(NET, params, x, block_size=4))
    assert_close(cross, empirical_ntk(NET.apply, params, x, x2, method="jacobian", output="full", block_size=4))
    # and against the unblocked kernel (float32: the blocks' matmuls are summed in another order, 1e-5)
    np.testing.assert_allclose(sym, empirical_ntk(NET, params, x), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="block_size"):
        empirical_ntk(NET, params, x, executor=client)


def test_batch_hessian_study_on_workers(client):
    client.wait_for_workers(2)
    net = MLP(depth=1, width=4, activation="tanh")
    x = jax.random.normal(jax.random.PRNGKey(5), (16, 2))
    y = jnp.sin(x[:, :1])
    kw = dict(batch_sizes=[4, 16], num_batches=2, top_k=2, slq_steps=8, slq_probes=2, noise_probes=2,
              grid_size=50, progress=False)
    ref = batch_hessian_study(net, x, y, **kw)
    with distributed.get_task_stream(client) as ts:
        got = batch_hessian_study(net, x, y, executor=client, **kw)
    assert len(task_workers(ts)) == 4
    for name in ("batch_top", "frob_sq", "frob_sq_stderr", "noise_top", "moments", "full_top"):
        assert_close(getattr(got, name), getattr(ref, name), err_msg=name)
    # the densities broaden the SLQ nodes with Gaussians of width sigma = 1% of the node range, so a node moved by
    # 1e-6 of the range (rounding, as above) changes the density by about 1e-6 / 1% = 1e-4 of its scale
    np.testing.assert_allclose(got.batch_density, ref.batch_density, atol=1e-4 * ref.batch_density.max())


def _precision_task(shared, _):
    return config.get_precision(), str(jnp.zeros(1).dtype)


def test_tasks_run_with_the_clients_precision(client):
    with config.precision("float64"):
        got = [r for _, r in run_tasks(client, _precision_task, {}, [(0,)], progress=False)]
    assert got == [("float64", "float64")]


def test_unimportable_model_function_gives_a_clear_error(client, problem, tmp_path, monkeypatch):
    _, init_fn, data = problem
    (tmp_path / "wb_private_model.py").write_text(textwrap.dedent("""
        from workbench.hessian import mlp_loss
        from workbench.nets import MLP

        def loss(params, batch):
            return mlp_loss(MLP(depth=1, width=8, activation="tanh"), "mse")(params, batch)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))  # importable here, not on the workers
    import wb_private_model

    with pytest.raises(WorkerImportError) as err:
        sweep(wb_private_model.loss, init_fn, data, executor=client, **SWEEP)
    msg = str(err.value)
    assert "loss_fn=wb_private_model.loss" in msg and "No module named 'wb_private_model'" in msg
    assert "client.upload_file" in msg and "PYTHONPATH" in msg
    assert err.value.__cause__ is None and err.value.__suppress_context__ and "Traceback" not in msg
    # an object that cannot be pickled at all is refused on the client, naming the argument
    lock = threading.Lock()
    with pytest.raises(TypeError, match="init_fn=.*cannot be pickled"):
        sweep(mlp_loss(NET, "mse"), lambda k: (lock, NET.init(k, 3))[1], data, executor=client, **SWEEP)
    with pytest.raises(TypeError, match="concurrent.futures.Executor"):
        as_executor("tcp://scheduler:8786")


def test_killed_worker_still_completes_the_sweep(client, problem, reference):
    loss_fn, init_fn, data = problem
    client.wait_for_workers(2)
    pids = client.run(os.getpid)
    killed = []

    def kill_a_busy_worker():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            busy = [w for w, tasks in client.processing().items() if tasks]
            if busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(busy[0])
                return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    got = sweep(loss_fn, init_fn, data, executor=client, **SWEEP)
    killer.join()
    assert killed, "no worker was killed"
    assert_same_sweep(got, reference)
