"""Hand independent pieces of work to a ``concurrent.futures.Executor``: Dask distributed, a process pool.

The workbench does not schedule work across machines itself; the studies that split into independent pieces
(:func:`workbench.experiments.sweep.sweep`, :func:`workbench.kernels.empirical.empirical_ntk` with
``block_size``, :func:`workbench.studies.hessian.batch_hessian_study`) take ``executor=`` and submit one task
per piece through :func:`run_tasks`. ``executor`` is any :class:`concurrent.futures.Executor` or a
``dask.distributed.Client`` (used through ``client.get_executor(pure=False)``); see ``docs/scaling.md``.

What is sent: the objects every task shares (the model's functions, the data, the settings) are pickled once
on the client with cloudpickle into a payload (scattered once to every Dask worker); each task sends only its
own small arguments. cloudpickle sends a function defined in a notebook or ``__main__`` (and any lambda) by
value, but a function from an importable module by reference (module and name): the workers must be able to
import that module. When they cannot, the worker says so and the client raises :class:`WorkerImportError`
naming the function and the remedy, without a pickling traceback. A payload that cannot be pickled at all
(an open file, a lock) raises ``TypeError`` on the client before anything is submitted.

Precision: each task runs under the client's float width (``jax_enable_x64``) and matmul precision at the
time of submission (one precision per worker process at a time: use one thread per worker).

Retries: a task whose worker died (Dask's ``KilledWorker``) is submitted again, up to ``retries`` times; Dask
itself already reschedules the tasks of a worker that disappears, so most deaths never reach the client.
Results stream back in completion order (``concurrent.futures.as_completed``) with ``tqdm`` progress;
interrupting the client (Ctrl-C) cancels the pending tasks and keeps what has arrived.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import os
import pickle
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
from tqdm.auto import tqdm

from workbench import config

__all__ = ["WorkerImportError", "as_executor", "run_tasks", "worker_label"]

_REMEDY = ("make the module importable on every worker: put it on a path they share and add that path to "
           "PYTHONPATH (or pip install it there), send it with client.upload_file('<module>.py'), or define the "
           "function in the notebook / __main__ (then it is sent by value)")


class WorkerImportError(RuntimeError):
    """A function (or other object) the workers cannot import; the message names it and the remedy."""


def as_executor(executor: Any) -> cf.Executor | None:
    """None, a ``concurrent.futures.Executor`` as is, or a Dask ``Client`` as ``client.get_executor(pure=False)``."""
    if executor is None or isinstance(executor, cf.Executor):
        return executor
    get = getattr(executor, "get_executor", None)
    if callable(get):
        return get(pure=False)  # pure=False: a resubmitted task gets a new key (a retry, not the cached failure)
    raise TypeError("executor must be a concurrent.futures.Executor or a dask.distributed.Client, "
                    f"got {type(executor).__name__}")


def _describe(obj: Any) -> str:
    mod, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if mod and name:
        return f"{mod}.{name}"
    text = repr(obj)
    return text if len(text) <= 80 else text[:77] + "..."


def _pickler() -> Any:
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - dask[distributed] brings cloudpickle
        return pickle
    return cloudpickle


def _pack(shared: dict[str, Any]) -> bytes:
    """Pickle each shared object on its own (so a failure names it), then the dict of (description, bytes)."""
    dumps = _pickler().dumps
    items = {}
    for name, obj in shared.items():
        try:
            items[name] = (_describe(obj), dumps(obj))
        except Exception as exc:  # noqa: BLE001 - any pickling failure becomes one clear error
            raise TypeError(f"{name}={_describe(obj)} cannot be pickled to send it to the workers "
                            f"({type(exc).__name__}: {exc}); pass a module-level function or a picklable object "
                            "(no open files, locks or live connections)") from None
    return pickle.dumps(items)


_CACHE: dict[str, dict[str, Any]] = {}  # worker side: the last few unpacked payloads (data is not reloaded per task)


def _unpack(blob: bytes) -> dict[str, Any]:
    digest = hashlib.sha1(blob).hexdigest()
    if digest in _CACHE:
        return _CACHE[digest]
    loads = _pickler().loads
    out = {}
    for name, (desc, data) in pickle.loads(blob).items():
        try:
            out[name] = loads(data)
        except (ImportError, AttributeError) as exc:
            raise WorkerImportError(
                f"{name}={desc} cannot be loaded on {worker_label()}: {type(exc).__name__}: {exc}. Functions from an "
                f"importable module are sent by reference (module and name), so the workers must import it; "
                f"remedy: {_REMEDY}.") from None
    while len(_CACHE) >= 4:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[digest] = out
    return out


def worker_label() -> str:
    """Where this code runs: the Dask worker's address, or host and pid."""
    try:
        from distributed import get_worker

        return f"dask worker {get_worker().address} (pid {os.getpid()})"
    except (ImportError, ValueError):
        return f"host {socket.gethostname()} (pid {os.getpid()})"


def _call(fn: Callable, blob: bytes, precisions: tuple[str, str | None], args: tuple) -> Any:
    """Worker side: unpack the shared payload and run ``fn(shared, *args)`` under the client's precisions."""
    shared = _unpack(blob)
    width, matmul = precisions
    with config.precision(width), jax.default_matmul_precision(matmul):
        return fn(shared, *args)


class _WorkerLost(RuntimeError):
    """A task that came back cancelled without the client cancelling it (its worker died)."""


def _is_worker_death(exc: BaseException) -> bool:
    return type(exc).__name__ in ("KilledWorker", "WorkerLost", "_WorkerLost")


def _shared_ref(executor: cf.Executor, blob: bytes) -> Any:
    """The payload, or for a Dask executor a future of it scattered once to every worker."""
    client = getattr(executor, "_client", None)
    if client is not None and hasattr(client, "scatter"):
        return client.scatter(blob, broadcast=True, hash=False)
    return blob


def run_tasks(executor: Any, fn: Callable, shared: dict[str, Any], tasks: Sequence[tuple], *, retries: int = 2,
              progress: bool = True, desc: str = "tasks") -> Iterator[tuple[int, Any]]:
    """Run ``fn(shared, *tasks[i])`` for every i on ``executor``; yield ``(i, result)`` as each finishes.

    ``fn`` must be a module-level function of an installed package (the workbench's own task functions are).
    A task whose worker died is resubmitted up to ``retries`` times; any other task error is raised on the client
    (after cancelling the pending tasks), a :class:`WorkerImportError` without the worker's traceback.
    Closing the generator (an interrupt) cancels the pending tasks.
    """
    ex = as_executor(executor)
    if ex is None:
        raise TypeError("run_tasks needs an executor")
    if not tasks:
        return
    blob = _pack(shared)
    ref = _shared_ref(ex, blob)
    precisions = (config.get_precision(), jax.config.jax_default_matmul_precision)
    pending = {ex.submit(_call, fn, ref, precisions, tuple(args)): i for i, args in enumerate(tasks)}
    attempts: dict[int, int] = {}
    bar = tqdm(total=len(tasks), desc=desc, disable=not progress, leave=False)
    try:
        while pending:
            for fut in cf.as_completed(list(pending)):
                i = pending.pop(fut)
                # a future we did not cancel ends cancelled when Dask lost it (or its scattered payload) with a worker
                exc = _WorkerLost("task lost with its worker") if fut.cancelled() else fut.exception()
                if exc is None:
                    bar.update(1)
                    yield i, fut.result()
                elif _is_worker_death(exc) and attempts.get(i, 0) < retries:
                    attempts[i] = attempts.get(i, 0) + 1
                    if getattr(ref, "status", "finished") != "finished":  # the scattered payload was lost too
                        ref = _shared_ref(ex, blob)
                    pending[ex.submit(_call, fn, ref, precisions, tuple(tasks[i]))] = i
                elif isinstance(exc, WorkerImportError):
                    raise WorkerImportError(str(exc)) from None
                else:
                    raise exc
    finally:
        bar.close()
        for fut in pending:
            fut.cancel()
