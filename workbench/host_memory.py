"""Host memory: the XLA compiler's freed working memory handed back to the operating system.

Compiling a large program for the CPU takes tens of MB of working memory (about 50 MB for the analytic
kernels' program of ``workbench.kernels.analytic``), which the compiler frees when it is done. glibc's
allocator keeps such freed pages in its arenas instead of returning them, so a first call that compiles and
then allocates an n x n output peaked at the sum of the two: 113-126 MB at n = 4096 (float32, 64 MB of output)
with jax 0.10, where the output alone is 65 MB (``benchmarks/ntk.py``). Inside :func:`trim_after_compiling`,
each backend compilation (in any thread) is followed by glibc's ``malloc_trim(0)`` before the program runs,
and the first call peaks at the output plus what the compiled program keeps (about 79 MB).

The hook is one listener on jax's public monitoring events (``/jax/core/compile/backend_compile_duration``),
registered the first time the context is entered; it does nothing outside the context, on a persistent
compilation-cache hit (no backend compilation), or where the C library has no ``malloc_trim`` (macOS, musl).
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Callable, Iterator

import jax

__all__ = ["BACKEND_COMPILE_EVENT", "trim_after_compiling", "trim_available"]

BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


def _find_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim`` (returns freed heap pages to the OS), or None where the C library has none."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


_malloc_trim = _find_malloc_trim()
_lock = threading.Lock()
_active = 0  # contexts open now, in any thread
_registered = False


def trim_available() -> bool:
    """True where the C library can return freed heap memory (glibc's ``malloc_trim``)."""
    return _malloc_trim is not None


def _on_event_duration(event: str, duration: float, **kwargs) -> None:
    if event == BACKEND_COMPILE_EVENT and _active > 0 and _malloc_trim is not None:
        _malloc_trim(0)


@contextlib.contextmanager
def trim_after_compiling() -> Iterator[None]:
    """While open, every XLA backend compilation is followed by ``malloc_trim(0)`` (see the module docstring).

    Costs about 10-15 ms per compilation (nothing for a call that does not compile); results are unchanged.
    Re-entrant and thread-safe (a count of open contexts)."""
    global _active, _registered
    with _lock:
        if not _registered:
            jax.monitoring.register_event_duration_secs_listener(_on_event_duration)
            _registered = True
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
