"""Background experiments of a panel: chunked, superseded by newer requests, cached by their parameters.

A panel's work has two parts. The *instant* part (closed-form theory, formulas, cached results) runs
synchronously in the widget callback. The *experiment* part (training, Hessians, sweeps, Monte Carlo) is an
:class:`Experiment`: a generator of partial results, run by a :class:`Runner` on one worker thread per panel,
so that the kernel keeps handling widget messages while it computes. After every chunk the runner

* draws the partial result (``experiment.draw(partial, done)``), so figures fill in as chunks finish;
* reports progress (``on_status``): what is computed, how far along, how long it has run;
* checks whether a newer request arrived: if so the stale generator is closed between chunks (no queue of
  obsolete work; the last request wins) and the newest request starts. Long work inside a chunk (a training
  run) calls :func:`checkpoint` as it goes, which stops a stale experiment there and shows its progress.

A finished result is cached under ``experiment.key``; asking again for a key already computed draws the cached
result at once, without the worker. Widget updates from the worker go through explicit trait assignments
(``LiveFigure.update``, ``HTML.value``), which ipywidgets sends from any thread; nothing is printed or
displayed from the worker (an ``Output`` capture context is per thread of the kernel's parent message).

Outside a running kernel (tests, scripts, static-figure exports) the runner is synchronous by default: a request
runs to its end before :meth:`Runner.submit` returns.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any

#: progress of one chunk: (partial result, fraction done in [0, 1], a short note such as "width 256")
Chunk = tuple[Any, float, str]


class Superseded(Exception):
    """Raised by :func:`checkpoint` inside a running experiment once a newer request of its kind has made it
    stale; the runner ends the experiment there (nothing cached, nothing drawn)."""


_MISSING = object()

#: the experiment this thread is running: (runner, experiment, start time), set by :meth:`Runner._run_one`
_current = threading.local()


def checkpoint(note: str | None = None, fraction: float | None = None, partial: Any = _MISSING) -> None:
    """A point inside one chunk of a running experiment where it may stop: raises :class:`Superseded` when a
    newer request has arrived, and with ``note`` shows it (and ``fraction`` of the whole, in [0, 1]) in the
    panel's status line. Pass it as the progress callback of long work inside a chunk, e.g. a training loop
    (``train(..., callback=...)``), so that a stale experiment stops within one training chunk rather than at
    the end of its chunk. ``partial``: a partial result to draw now (``experiment.draw(partial, False)``), as a
    yielded chunk would be: a long chunk streams its progress into the figures (e.g. a training's curves so far,
    from ``train(..., partial_callback=...)``). Outside a running experiment it does nothing.
    """
    current = getattr(_current, "value", None)
    if current is None:
        return
    runner, exp, start = current
    if runner.stale(exp):
        raise Superseded(f"{exp.label}: a newer request arrived")
    if partial is not _MISSING and not runner._draw_if_current(exp, partial, False):
        raise Superseded(f"{exp.label}: a newer request arrived")
    if note is not None:
        runner._report(exp, note, 0.0 if fraction is None else max(0.0, min(1.0, float(fraction))), start)


@dataclass
class Experiment:
    """One background computation.

    ``key``: the parameters the result depends on (the cache key; hashable). ``label``: what is computed, for the
    status line. ``chunks``: a function returning an iterator of ``(partial, fraction_done, note)``; the last
    partial is the result. ``draw(partial, done)``: shows a partial (``done=False``) or the final result.
    """

    key: Hashable
    label: str
    chunks: Callable[[], Iterator[Chunk]]
    draw: Callable[[Any, bool], None]
    #: which cache the result goes to (a panel may run several kinds of experiment)
    kind: str = "experiment"
    #: set by :meth:`Runner.submit`: the request's number (a newer request of the same kind makes this stale)
    generation: int = 0


class Runner:
    """Runs the newest :class:`Experiment` of a panel on a worker thread; see the module docstring.

    ``on_status(text, fraction, state)``: ``state`` is "running", "done", "cached", "superseded" or "error".
    ``threaded``: None picks a worker thread in a running kernel and synchronous runs elsewhere.
    ``debounce_s``: how long the worker waits for a newer request before starting one (a burst of slider moves
    starts one computation).
    ``shown``: an event the worker waits for (at most ``shown_timeout_s``) before its first experiment: a panel
    sets it once its view is on its way to the browser, so that the first paint (the instant theory) does not
    compete with the compilation of the experiment for the kernel's two cores.
    """

    def __init__(self, on_status: Callable[[str, float, str], None], *, threaded: bool | None = None,
                 debounce_s: float = 0.15, max_cache: int = 64, shown: threading.Event | None = None,
                 shown_timeout_s: float = 2.0) -> None:
        self.on_status = on_status
        self.threaded = threaded
        self.debounce_s = debounce_s
        self.shown = shown
        self.shown_timeout_s = shown_timeout_s
        self.max_cache = max_cache
        self.cache: dict[tuple[str, Hashable], Any] = {}
        #: every request started and how it ended, e.g. [("experiment", key, "superseded"), ...] (for tests)
        self.history: list[tuple[str, Hashable, str]] = []
        self._cond = threading.Condition()
        self._pending: dict[str, Experiment] = {}
        self._running: Experiment | None = None
        self._thread: threading.Thread | None = None
        self._generation = 0
        self._latest: dict[str, int] = {}
        self._computing_thread: int | None = None
        #: held while a result is drawn; a panel holds it too when it redraws from the main thread
        self.draw_lock = threading.RLock()
        self.error: BaseException | None = None

    # ------------------------------------------------------------------ requests
    def is_threaded(self) -> bool:
        if self.threaded is not None:
            return self.threaded
        from workbench import config
        from workbench.panels.base import _in_kernel

        return _in_kernel() and config.static_figures() is None

    def submit(self, exp: Experiment) -> None:
        """Ask for ``exp``: drawn from the cache at once if computed before, else computed (in the background).

        Any older request of the same ``kind`` becomes stale: dropped if it has not started, stopped at its next
        chunk if it has (its partial results are no longer drawn)."""
        with self.draw_lock:
            with self._cond:
                self._generation += 1
                exp.generation = self._generation
                self._latest[exp.kind] = exp.generation
                cached = self.cache.get((exp.kind, exp.key), _MISSING)
                if cached is _MISSING:
                    self._pending[exp.kind] = exp
                else:
                    self._pending.pop(exp.kind, None)
                self._cond.notify_all()
            if cached is not _MISSING:
                exp.draw(cached, True)
                self.history.append((exp.kind, exp.key, "cached"))
                self.on_status(f"{exp.label}: from cache", 1.0, "cached")
                return
        if not self.is_threaded():
            self._drain()
            return
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="workbench-panel-worker", daemon=True)
                self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every requested experiment is finished (or superseded); False on timeout."""
        if threading.get_ident() == self._computing_thread:
            return True  # called from a draw of the running experiment itself: waiting would never end
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending or self._running is not None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left if left is not None else 1.0)
        return True

    @property
    def busy(self) -> bool:
        with self._cond:
            return bool(self._pending) or self._running is not None

    def stale(self, exp: Experiment) -> bool:
        """True once a newer request of ``exp.kind`` was submitted."""
        with self._cond:
            return self._latest.get(exp.kind) != exp.generation

    # ------------------------------------------------------------------ the work
    def _take(self) -> Experiment | None:
        with self._cond:
            if not self._pending:
                return None
            kind = min(self._pending, key=lambda k: self._pending[k].generation)
            exp = self._pending.pop(kind)
            self._running = exp
            self._computing_thread = threading.get_ident()
            return exp

    def _work(self) -> None:
        if self.shown is not None:
            self.shown.wait(self.shown_timeout_s)
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
            # let a burst of requests settle: the newest replaces older pending ones of its kind
            time.sleep(self.debounce_s)
            self._drain()

    def _drain(self) -> None:
        while (exp := self._take()) is not None:
            try:
                self._run_one(exp)
            finally:
                with self._cond:
                    self._running = None
                    self._computing_thread = None
                    self._cond.notify_all()

    def _draw_if_current(self, exp: Experiment, partial: Any, done: bool) -> bool:
        with self.draw_lock:
            if self.stale(exp):
                return False
            exp.draw(partial, done)
            return True

    def _report(self, exp: Experiment, note: str, fraction: float, start: float) -> None:
        """Progress of the running ``exp``: its note, the fraction done and the time since ``start``."""
        self.on_status(f"computing {exp.label}: {note} ({100 * fraction:.0f}%, {time.perf_counter() - start:.1f} s)",
                       fraction, "running")

    def _run_one(self, exp: Experiment) -> None:
        start = time.perf_counter()
        partial: Any = _MISSING
        self.on_status(f"computing {exp.label}...", 0.0, "running")
        _current.value = (self, exp, start)
        gen = exp.chunks()
        try:
            for partial, fraction, note in gen:
                if not self._draw_if_current(exp, partial, False):
                    self.history.append((exp.kind, exp.key, "superseded"))
                    return
                self._report(exp, note, fraction, start)
        except Superseded:  # a checkpoint inside a chunk saw a newer request
            self.history.append((exp.kind, exp.key, "superseded"))
            return
        except Exception as exc:  # shown in the panel's status and output area, not swallowed
            self.error = exc
            self.history.append((exp.kind, exp.key, "error"))
            if not self.stale(exp):
                self.on_status(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}", 0.0, "error")
            return
        finally:
            _current.value = None
            close = getattr(gen, "close", None)  # a generator is closed (its finally blocks run); any iterator works
            if close is not None:
                close()
        if partial is _MISSING:
            return
        with self._cond:
            self.cache[(exp.kind, exp.key)] = partial
            while len(self.cache) > self.max_cache:
                self.cache.pop(next(iter(self.cache)))
        if not self._draw_if_current(exp, partial, True):
            self.history.append((exp.kind, exp.key, "superseded"))
            return
        self.history.append((exp.kind, exp.key, "done"))
        self.on_status(f"{exp.label} done in {time.perf_counter() - start:.1f} s", 1.0, "done")

