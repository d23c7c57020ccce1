"""Benchmark: workbench.training.train (all runs in one vmapped, scanned program) against the usual script.

Task: an MLP (depth 2, tanh) on a teacher data set, full-batch GD and Adam, a grid of learning rates x seeds.
Baselines, each with the same optax update, compiled once with the learning rate as a traced argument:
  * "python loop": for each run, a jitted optax step called from Python once per step (the usual script);
  * "scan per run": for each run, one jitted ``lax.scan`` over all steps (a careful script).
Reported: first call (compile + run) and second call (run only, compiled code reused), wall-clock and CPU seconds,
plus the largest difference of the final losses against the workbench result (same arithmetic: ~1e-6 in float32).

Run: ``.venv/bin/python benchmarks/training.py`` (``--steps``, ``--width``, ``--lrs``, ``--seeds``).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from workbench import config, data
from workbench.nets import MLP
from workbench.training import train_mlp


def make_baselines(net: MLP, x, y, optimizer: str, num_steps: int):
    def loss(p):
        r = net.apply(p, x) - y
        return 0.5 * jnp.sum(r * r)

    def tx(lr):
        return optax.sgd(lr) if optimizer == "gd" else optax.adam(lr)

    @jax.jit
    def step(p, s, lr):  # compiled once; lr is traced
        g = jax.grad(loss)(p)
        u, s = tx(lr).update(g, s, p)
        return optax.apply_updates(p, u), s

    @jax.jit
    def run(p, lr):
        def body(c, _):
            p, s = c
            g = jax.grad(loss)(p)
            u, s = tx(lr).update(g, s, p)
            return (optax.apply_updates(p, u), s), None
        (p, _), _ = jax.lax.scan(body, (p, tx(lr).init(p)), None, length=num_steps)
        return loss(p)

    def init(seed):
        return net.init(jax.random.split(jax.random.PRNGKey(seed), 2)[0], x.shape[1])

    def python_loop(lr, seed):
        p = init(seed)
        s = tx(lr).init(p)
        for _ in range(num_steps):
            p, s = step(p, s, lr)
        return float(loss(p))

    def scan_run(lr, seed):
        return float(run(init(seed), lr))

    return python_loop, scan_run


def timed(fn):
    """(wall seconds, CPU seconds of this process, result): on a shared machine CPU time is the fair measure."""
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t, time.process_time() - c, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--lrs", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=4)
    args = ap.parse_args()
    ds = data.mlp_teacher(jax.random.PRNGKey(0), args.n, 64, 8)
    net = MLP(depth=2, width=args.width, activation="tanh", w_std=1.5, b_std=0.1)
    print(f"# {config.device_report()}")
    print(f"# MLP depth 2 width {args.width}, n={args.n}, {args.steps} steps, {args.lrs} lrs x {args.seeds} seeds")
    print(f"{'optimizer':>9} {'method':>14} {'1st wall':>9} {'1st cpu':>9} {'2nd wall':>9} {'2nd cpu':>9} "
          f"{'max |dloss|':>12}")
    for optimizer, lrs in (("gd", np.geomspace(1e-4, 1e-3, args.lrs)), ("adam", np.geomspace(1e-4, 1e-2, args.lrs))):
        seeds = tuple(range(args.seeds))

        def ours(lrs=lrs):
            r = train_mlp(net, (ds.x_train, ds.y_train), optimizer=optimizer, lrs=lrs, seeds=seeds,
                          num_steps=args.steps, record_every=args.steps, progress=False)
            return np.asarray(r.train_loss[:, :, -1])

        w1, c1, ref = timed(ours)
        w2, c2, _ = timed(ours)
        print(f"{optimizer:>9} {'workbench':>14} {w1:9.2f} {c1:9.2f} {w2:9.2f} {c2:9.2f} {0.0:12.2e}")
        loop, scan = make_baselines(net, ds.x_train, ds.y_train, optimizer, args.steps)
        for name, fn in (("python loop", loop), ("scan per run", scan)):
            def all_runs(fn=fn):
                return np.array([[fn(lr, s) for s in seeds] for lr in lrs])
            w1, c1, out = timed(all_runs)
            w2, c2, _ = timed(all_runs)
            print(f"{optimizer:>9} {name:>14} {w1:9.2f} {c1:9.2f} {w2:9.2f} {c2:9.2f} {np.max(np.abs(out - ref)):12.2e}")


if __name__ == "__main__":
    main()
