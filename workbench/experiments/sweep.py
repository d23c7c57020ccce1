"""Resumable learning-rate x batch-size sweeps of a model: every (optimizer, batch size, lr, seed) trained
by :func:`workbench.training.train`, each finished (optimizer, batch size) point written at once so that an
interrupted sweep loses nothing finished; the lr grid is sharded over several devices when there are several.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jax
import numpy as np

from workbench import config, store, training
from workbench.lr_batch._inputs import ArrayLike, check_batch_sizes
from workbench.lr_batch.analysis import SweepResult
from workbench.validation import check_choice, check_data_pair, check_lrs, check_positive_int, check_seeds

__all__ = ["SWEEP_OPTIMIZERS", "sweep", "sweep_point_path"]

SWEEP_OPTIMIZERS = ("sgd", "momentum", "adam")


def _fingerprint(**fields: Any) -> str:
    h = hashlib.sha1()
    for k in sorted(fields):
        v = fields[k]
        h.update(k.encode())
        if isinstance(v, (np.ndarray, jax.Array)):
            a = np.ascontiguousarray(np.asarray(v))
            h.update(str((a.dtype, a.shape)).encode())
            h.update(a.tobytes())
        else:
            h.update(repr(v).encode())
    return h.hexdigest()[:16]


def sweep_point_path(results_dir: str, optimizer: str, batch_size: int, fingerprint: str) -> str:
    """File of one finished (optimizer, batch size) point of a sweep: ``<dir>/<opt>_B<B>_<fingerprint>.npz``."""
    return os.path.join(str(results_dir), f"{optimizer}_B{int(batch_size)}_{fingerprint}.npz")


def sweep(loss_fn: Callable, init_fn: Callable[[jax.Array], Any], train_data: Any, *,
          batch_sizes: ArrayLike, lrs: ArrayLike, optimizers: Sequence[str] = SWEEP_OPTIMIZERS,
          seeds: int | Sequence[int] = 2, num_steps: int, record_every: int = 10, momentum: float = 0.9,
          sampling: str = "iid", divergence_threshold: float = 1e4, results_dir: str | None = None,
          tag: str = "", progress: bool = True, devices: Sequence[Any] | None = None,
          executor: Any = None, workers_write: bool = False, **train_kwargs: Any) -> dict[str, SweepResult]:
    """Train every (optimizer, batch size, lr, seed) with :func:`workbench.training.train`; one
    :class:`SweepResult` per optimizer.

    Each batch size is a separately compiled program (a new shape); inside it the learning rates and seeds
    are vmapped. ``optimizers``: ``"sgd"``, ``"momentum"`` (heavy ball with coefficient ``momentum``),
    ``"adam"``. Batches are drawn with ``sampling`` (``"iid"``: B distinct examples per step, the c_B model).

    Resume: with ``results_dir``, every finished (optimizer, B) point is written at once to
    :func:`sweep_point_path`; its file name holds a fingerprint of everything that defines the run
    (data, lrs, seeds, steps, optimizer settings, ``tag``: describe the model there, e.g.
    ``net.describe()``), so a rerun loads finished points and trains only the missing ones, and a
    changed configuration never reuses stale files. Files are written atomically with a checksum
    (:mod:`workbench.store`); a damaged, truncated, empty or foreign one is recomputed, with one
    ``DamagedResultWarning`` naming it. Interrupting (Ctrl-C) returns the finished points
    (``completed=False``); divergent runs are results (``diverged``), never errors.

    Devices: ``devices=None`` uses ``jax.devices()``; with several, the lr grid of each point is split into
    one contiguous chunk per device, each trained by :func:`~workbench.training.train` in its own thread
    under ``jax.default_device`` (runs are independent per lr, so the result is the same as on one device).

    Executor: with ``executor`` (a ``concurrent.futures.Executor`` or a Dask ``Client``, see ``docs/scaling.md``)
    every missing (optimizer, B) point is one task, trained on the worker's default JAX device (``devices`` is
    not used); points stream back as they finish (:func:`workbench.executors.run_tasks`: progress bar, retry of
    a task whose worker died) and the result equals the in-process one to rounding. The client writes each
    arriving point to ``results_dir``; with ``workers_write=True`` the workers write it themselves
    (``results_dir`` must then be a directory every worker shares, e.g. on the cluster's shared filesystem), so
    a point is on disk even if the client dies before it arrives. ``loss_fn``/``init_fn`` must be importable on
    the workers (or defined in the notebook): otherwise :class:`workbench.executors.WorkerImportError` names the
    function and the remedy.
    """
    x, y = check_data_pair("train_data", train_data)
    n = int(x.shape[0])
    bs = check_batch_sizes(batch_sizes, num_data=n)
    eta = check_lrs(lrs, grid=True)
    if isinstance(optimizers, str):
        optimizers = (optimizers,)
    optimizers = tuple(optimizers)
    if not optimizers:
        raise ValueError("optimizers must not be empty")
    for opt in optimizers:
        check_choice("optimizers", opt, SWEEP_OPTIMIZERS)
    seed_arr = check_seeds(seeds)
    num_steps = check_positive_int("num_steps", num_steps)
    record_every = check_positive_int("record_every", record_every)
    check_choice("sampling", sampling, ("iid", "shuffle"))
    if not isinstance(tag, str):
        raise TypeError(f"tag must be a string, got {type(tag).__name__}")
    if results_dir is not None:
        try:
            os.makedirs(results_dir, exist_ok=True)
        except OSError as exc:  # a file of that name, no permission, a read-only disk
            raise OSError(f"results_dir {str(results_dir)!r} cannot be used as a directory of sweep results: "
                          f"{exc.strerror or exc}") from None
    devices = list(jax.devices()) if devices is None else list(devices)
    if not devices:
        raise ValueError("devices must not be empty (None uses jax.devices())")
    if not isinstance(workers_write, bool):
        raise TypeError(f"workers_write must be True or False, got {type(workers_write).__name__}")
    if executor is not None:
        return _sweep_on_executor(executor, workers_write, loss_fn, init_fn, x, y, bs, eta, optimizers, seed_arr,
                                  results_dir, progress, train_kwargs, tag=tag, num_steps=num_steps,
                                  record_every=record_every, momentum=momentum, sampling=sampling,
                                  divergence_threshold=divergence_threshold)
    out: dict[str, SweepResult] = {}
    interrupted = False
    for opt in optimizers:
        rows: dict[int, dict[str, Any]] = {}
        for b in bs:
            if interrupted:
                break
            fp = _point_fingerprint(x, y, eta, seed_arr, opt, b, train_kwargs, tag=tag, num_steps=num_steps,
                                    record_every=record_every, momentum=momentum, sampling=sampling,
                                    divergence_threshold=divergence_threshold)
            path = sweep_point_path(results_dir, opt, b, fp) if results_dir is not None else None
            stored = _load_point(path)  # damaged file: warned, recomputed
            if stored is not None:
                rows[int(b)] = stored
                continue
            start = time.perf_counter()
            row = _run_point(training.train, devices, loss_fn, init_fn, x, y, eta, optimizer=opt,
                             seeds=seed_arr.tolist(), num_steps=num_steps, batch_size=int(b), sampling=sampling, momentum=momentum,
                             record_every=record_every, divergence_threshold=divergence_threshold,
                             progress=progress, **train_kwargs)
            if row is None:  # interrupted: keep what is finished
                interrupted = True
                break
            row["seconds"] = np.asarray(time.perf_counter() - start)
            row["device"] = np.asarray(config.device_report(devices) + (f" ({len(devices)} devices, lrs sharded)"
                                                                 if devices and len(devices) > 1 else ""))
            rows[int(b)] = row
            if path is not None:
                _save_point(path, row)
        if rows:
            out[opt] = _assemble(opt, rows, eta, seed_arr, completed=not interrupted and len(rows) == bs.size)
        if interrupted:
            break
    return out


# train() arguments that cannot change a result: left out of the fingerprint, so that a run stopped from a
# callback (or watched by one) resumes from its finished points without it
_NOT_RESULTS = ("callback",)


def _point_fingerprint(x: jax.Array, y: jax.Array, eta: np.ndarray, seed_arr: np.ndarray, opt: str, b: int,
                       train_kwargs: dict[str, Any], *, tag: str, num_steps: int, record_every: int, momentum: float,
                       sampling: str, divergence_threshold: float) -> str:
    return _fingerprint(x=x, y=y, lrs=eta, seeds=seed_arr, num_steps=num_steps, record_every=record_every,
                        optimizer=opt, momentum=momentum if opt == "momentum" else None, batch_size=int(b),
                        sampling=sampling, divergence_threshold=divergence_threshold, tag=tag,
                        extra=sorted((k, repr(v)) for k, v in train_kwargs.items() if k not in _NOT_RESULTS))


def _assemble(opt: str, rows: dict[int, dict[str, Any]], eta: np.ndarray, seed_arr: np.ndarray, *,
              completed: bool) -> SweepResult:
    done = np.asarray(sorted(rows))
    first = rows[int(done[0])]
    return SweepResult(
        opt, done, eta, seed_arr, np.asarray(first["steps"]),
        np.stack([rows[int(b)]["train_loss"] for b in done]),
        np.stack([rows[int(b)]["diverged"] for b in done]),
        np.stack([rows[int(b)]["diverged_step"] for b in done]),
        np.asarray([float(rows[int(b)]["seconds"]) for b in done]),
        str(first["device"]), completed=completed)


def _load_point(path: str | None) -> dict[str, np.ndarray] | None:
    """A finished point's arrays, or None when it is missing or damaged (warned once, then recomputed)."""
    return store.load_result(path) if path is not None else None


def _save_point(path: str, row: dict[str, np.ndarray]) -> None:
    """Atomic, checksummed write (:mod:`workbench.store`), by the client or by a worker."""
    store.save_result(path, row)


def _sweep_on_executor(executor: Any, workers_write: bool, loss_fn: Callable, init_fn: Callable, x: jax.Array,
                       y: jax.Array, bs: np.ndarray, eta: np.ndarray, optimizers: tuple[str, ...],
                       seed_arr: np.ndarray, results_dir: str | None, progress: bool, train_kwargs: dict[str, Any],
                       **settings: Any) -> dict[str, SweepResult]:
    """:func:`sweep` with one task per missing (optimizer, B) point on ``executor`` (finished points load)."""
    from workbench.executors import run_tasks

    rows: dict[str, dict[int, dict[str, Any]]] = {opt: {} for opt in optimizers}
    tasks, paths = [], []
    for opt in optimizers:
        for b in bs:
            fp = _point_fingerprint(x, y, eta, seed_arr, opt, b, train_kwargs, **settings)
            path = sweep_point_path(results_dir, opt, b, fp) if results_dir is not None else None
            stored = _load_point(path)
            if stored is not None:
                rows[opt][int(b)] = stored
            else:
                tasks.append((opt, int(b), path if workers_write else None))
                paths.append(path)
    del settings["tag"]
    shared = {"loss_fn": loss_fn, "init_fn": init_fn, "x": np.asarray(x), "y": np.asarray(y), "lrs": eta,
              "seeds": seed_arr.tolist(), "settings": {**settings, **train_kwargs}}
    interrupted = False
    try:
        for i, row in run_tasks(executor, _train_point_task, shared, tasks, progress=progress, desc="sweep points"):
            opt, b, _ = tasks[i]
            rows[opt][b] = row
            if paths[i] is not None and not workers_write:
                _save_point(paths[i], row)
    except KeyboardInterrupt:  # keep what has arrived; the rest is cancelled
        interrupted = True
    return {opt: _assemble(opt, rows[opt], eta, seed_arr, completed=not interrupted and len(rows[opt]) == bs.size)
            for opt in optimizers if rows[opt]}


def _train_point_task(shared: dict[str, Any], opt: str, b: int, path: str | None) -> dict[str, np.ndarray]:
    """Worker side: train one (optimizer, B) point on the default device (and write it when given a path)."""
    from workbench.executors import worker_label

    start = time.perf_counter()
    s = shared["settings"]
    row = _run_point(training.train, [jax.devices()[0]], shared["loss_fn"], shared["init_fn"], jax.numpy.asarray(
        shared["x"]), jax.numpy.asarray(shared["y"]), shared["lrs"], optimizer=opt, seeds=shared["seeds"],
        batch_size=b, progress=False, **s)
    if row is None:  # pragma: no cover - only a callback in train_kwargs can stop a run
        raise RuntimeError(f"training of ({opt}, B={b}) was interrupted on {worker_label()}")
    row["seconds"] = np.asarray(time.perf_counter() - start)
    row["device"] = np.asarray(f"{config.device_report([jax.devices()[0]])} on {worker_label()}")
    if path is not None:
        _save_point(path, row)
    return row


def _run_point(train: Callable, devices: list[Any], loss_fn: Callable, init_fn: Callable, x: jax.Array,
               y: jax.Array, lrs: np.ndarray, *, progress: bool, **kwargs: Any) -> dict[str, np.ndarray] | None:
    """One (optimizer, B) point: train on one device, or shard the lr grid over several (one thread each).
    Returns the arrays to store, or None if the run was interrupted."""
    chunks = [c for c in np.array_split(lrs, min(len(devices), lrs.size)) if c.size]
    if len(chunks) == 1:
        results = [train(loss_fn, init_fn, (x, y), lrs=lrs, progress=progress, **kwargs)]
    else:
        def run(i: int) -> Any:
            dev = devices[i]
            with jax.default_device(dev):
                data = (jax.device_put(x, dev), jax.device_put(y, dev))
                return train(loss_fn, init_fn, data, lrs=chunks[i], progress=progress and i == 0, **kwargs)

        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            results = list(pool.map(run, range(len(chunks))))
    if not all(r.completed for r in results):
        return None
    return {"train_loss": np.concatenate([np.asarray(r.train_loss) for r in results], axis=0),
            "diverged": np.concatenate([np.asarray(r.diverged) for r in results], axis=0),
            "diverged_step": np.concatenate([np.asarray(r.diverged_step) for r in results], axis=0),
            "steps": np.asarray(results[0].steps)}
