"""Wall time of the learning-rate x batch-size sweep in process and on 1 and 2 local workers.

Usage:
    python benchmarks/scaling.py              # a reduced sweep (the fast-mode configuration; about a minute idle)
    python benchmarks/scaling.py --full       # the notebook's default sweep (about 100 s in process, 2 cores)
    python benchmarks/scaling.py --steps 300  # the fast configuration with more steps per run
    python benchmarks/scaling.py --full --rows dask1,dask2   # only the rows the issue asks for (about 4 min)

Rows: the sweep in this process (executor=None, the baseline), on a Dask LocalCluster with 1 and 2 worker
processes (one thread each), and on ``concurrent.futures.ProcessPoolExecutor(2)`` (the standard-library peer).
Each worker gets one XLA thread (``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false``), so 2 workers can use at
most the 2 cores; cluster startup is timed separately. Every row must give the same losses (checked).
One task per (optimizer, batch size) point: each worker compiles the programs of the points it trains.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")  # before jax starts; workers inherit it

import numpy as np  # noqa: E402

from workbench import config  # noqa: E402
from workbench.experiments.sweep import sweep  # noqa: E402
from workbench.studies.lr_batch import build_problem, default_config  # noqa: E402


def run(cfg, executor) -> tuple[float, dict]:
    prob = build_problem(cfg)
    start = time.perf_counter()
    out = sweep(prob.loss_fn, prob.init_fn, (prob.x, prob.y), batch_sizes=cfg.batch_sizes, lrs=cfg.lrs,
                optimizers=cfg.optimizers, seeds=cfg.seeds, num_steps=cfg.num_steps, record_every=cfg.record_every,
                momentum=cfg.momentum, tag=prob.description, progress=False, executor=executor)
    return time.perf_counter() - start, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="the notebook's default sweep (long)")
    ap.add_argument("--steps", type=int, default=None, help="override num_steps")
    ap.add_argument("--rows", default="inprocess,dask1,dask2,pool",
                    help="comma-separated subset of inprocess, dask1, dask2, pool (the first row run is the "
                         "reference the others are checked against)")
    args = ap.parse_args()
    wanted = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = sorted(set(wanted) - {"inprocess", "dask1", "dask2", "pool"})
    if unknown or not wanted:
        ap.error(f"--rows {args.rows!r}: unknown rows {unknown}; allowed: inprocess, dask1, dask2, pool")
    from distributed import Client, LocalCluster

    over = {} if args.steps is None else {"num_steps": args.steps}
    cfg = default_config(fast=not args.full, **over)
    points = len(cfg.optimizers) * len(cfg.batch_sizes)
    print(f"sweep: {len(cfg.optimizers)} optimizers x {len(cfg.batch_sizes)} batch sizes = {points} tasks, "
          f"{cfg.num_lrs} lrs x {cfg.seeds} seeds x {cfg.num_steps} steps each; {config.device_report()}; "
          f"os.cpu_count()={os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    rows = []

    def add(name: str, startup: str, secs: float) -> None:
        rows.append([name, startup, secs])
        print(f"  {name}: startup {startup} s, sweep {secs:.1f} s", flush=True)

    ref = None

    def check(out: dict) -> dict:
        if ref is not None:  # the first row run is the reference
            for opt in ref:
                np.testing.assert_allclose(out[opt].train_loss, ref[opt].train_loss, rtol=1e-6)
        return out

    if "inprocess" in wanted:
        base_s, ref = run(cfg, None)
        add("in process (executor=None)", "-", base_s)
    for n in (1, 2):
        if f"dask{n}" not in wanted:
            continue
        t0 = time.perf_counter()
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
                Client(cluster) as client:
            client.run(__import__, "workbench.experiments.sweep")
            startup = time.perf_counter() - t0
            secs, out = run(cfg, client)
        add(f"Dask LocalCluster, {n} worker{'s' * (n > 1)}", f"{startup:.1f}", secs)
        ref = check(out) if ref is None else ref
    if "pool" in wanted:
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            secs, out = run(cfg, pool)
        add("ProcessPoolExecutor(2) (peer)", "-", secs)
        check(out)
    one = next((secs for name, _, secs in rows if "1 worker" in name), rows[0][2])
    print(f"load average now {os.getloadavg()[0]:.1f}")
    print(f"\n{'run':34s} {'startup s':>9s} {'sweep s':>8s} {'vs 1 worker':>11s}")
    for name, startup, secs in rows:
        print(f"{name:34s} {startup:>9s} {secs:8.1f} {one / secs:10.2f}x")
    print("ideal on 2 cores: 2.00x for 2 workers (all rows give the same losses, checked to rtol 1e-6)")


if __name__ == "__main__":
    main()
