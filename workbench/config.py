"""Explicit configuration: numeric precision, the device report, and fast mode.

Nothing here is hidden global state of the workbench itself: precision is JAX's
own ``jax_enable_x64`` flag (set through :func:`set_precision`), and fast mode is
read from the environment variable ``WORKBENCH_FAST`` each time it is asked for.

* float32 is the default (speed); float64 is for verification
  (``set_precision("float64")`` or the ``precision("float64")`` context manager).
* On GPUs, float32 matmuls default to reduced (TF32) precision: verification code
  wraps its work in :func:`matmul_precision` (``"highest"``) and says so in its result.
* ``WORKBENCH_FAST=1`` shrinks problem sizes in notebooks and tests (every cell still
  runs); :func:`pick` chooses between the fast and the full value.
* ``WORKBENCH_STATIC_FIGURES=png`` (or ``svg``), or :func:`workbench.plots.use_static_renderer`, makes
  displayed figures and panels carry a static image too, for GitHub and nbconvert HTML
  (:func:`static_figures` says which format is on).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Literal, TypeVar

import jax
import jax.numpy as jnp

__all__ = ["STATIC_FORMATS", "default_dtype", "device_info", "device_report", "fast_mode", "get_precision",
           "matmul_precision", "pick", "precision", "set_precision", "set_static_figures", "static_figures"]

Precision = Literal["float32", "float64"]
_PRECISIONS = ("float32", "float64")
_MATMUL_PRECISIONS = ("default", "high", "highest")

T = TypeVar("T")


def set_precision(precision: Precision) -> None:
    """Set JAX's default float width: ``"float32"`` (speed) or ``"float64"`` (verification)."""
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
    jax.config.update("jax_enable_x64", precision == "float64")


def get_precision() -> Precision:
    """The float width JAX currently uses for new arrays."""
    return "float64" if jax.config.read("jax_enable_x64") else "float32"


@contextlib.contextmanager
def precision(value: Precision) -> Iterator[None]:
    """Context manager: run a block with the given float width, then restore the old one."""
    old = get_precision()
    set_precision(value)
    try:
        yield
    finally:
        set_precision(old)


def default_dtype() -> jnp.dtype:
    """``float64`` when x64 is enabled, else ``float32``."""
    return jnp.dtype(jnp.float64 if get_precision() == "float64" else jnp.float32)


@contextlib.contextmanager
def matmul_precision(value: str = "highest") -> Iterator[None]:
    """Run a block with the given matmul precision (``"highest"`` disables TF32 on GPUs)."""
    if value not in _MATMUL_PRECISIONS:
        raise ValueError(f"matmul precision must be one of {_MATMUL_PRECISIONS}, got {value!r}")
    with jax.default_matmul_precision(value):
        yield


def device_info(devices: list | None = None) -> dict[str, object]:
    """Platform, device kind, device count and names, float width and matmul precision, as a dict.

    ``devices``: the devices a run used (default ``jax.devices()``); ``visible``: ``CUDA_VISIBLE_DEVICES``
    when set (a worker started with one GPU sees it as ``cuda:0``; this says which physical GPU it is).
    """
    devices = list(jax.devices()) if devices is None else list(devices)
    if not devices:
        raise ValueError("devices must not be empty (None reports jax.devices())")
    return {
        "platform": devices[0].platform,
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "devices": [str(d) for d in devices],
        "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "precision": get_precision(),
        "matmul_precision": jax.config.jax_default_matmul_precision or "default",
        "jax_version": jax.__version__,
    }


def device_report(devices: list | None = None) -> str:
    """One line: ``jax 0.x on cpu (cpu) x1 [cpu:0], float32, matmul precision default``.

    Names the devices (``devices``, default ``jax.devices()``) and ``CUDA_VISIBLE_DEVICES`` when it is set.
    """
    i = device_info(devices)
    names = ", ".join(i["devices"][:8]) + (", ..." if len(i["devices"]) > 8 else "")
    visible = f" (CUDA_VISIBLE_DEVICES={i['visible']})" if i["visible"] is not None else ""
    return (
        f"jax {i['jax_version']} on {i['platform']} ({i['device_kind']}) x{i['device_count']} [{names}]{visible}, "
        f"{i['precision']}, matmul precision {i['matmul_precision']}"
    )


def fast_mode() -> bool:
    """True when the environment variable ``WORKBENCH_FAST`` is set to 1/true/yes/on."""
    value = os.environ.get("WORKBENCH_FAST", "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"WORKBENCH_FAST must be 0/1 (or true/false, yes/no, on/off), got {value!r}")


def pick(fast: T, full: T) -> T:
    """Return ``fast`` in fast mode (``WORKBENCH_FAST=1``), else ``full``."""
    return fast if fast_mode() else full


STATIC_FORMATS = ("png", "svg")
_static_override: list[str | None] = []  # set by set_static_figures; empty: follow the environment


def static_figures() -> str | None:
    """The static image format figures carry besides their interactive JSON (``"png"``, ``"svg"``), or None.

    Set by :func:`set_static_figures` (via :func:`workbench.plots.use_static_renderer`), else read from the
    environment variable ``WORKBENCH_STATIC_FIGURES`` (empty or ``0``: off).
    """
    if _static_override:
        return _static_override[-1]
    value = os.environ.get("WORKBENCH_STATIC_FIGURES", "").strip().lower()
    if value in ("", "0", "off", "none", "false", "no"):
        return None
    if value not in STATIC_FORMATS:
        raise ValueError(f"WORKBENCH_STATIC_FIGURES must be one of {STATIC_FORMATS} or empty, got {value!r}")
    return value


def set_static_figures(fmt: str | None) -> None:
    """Turn static figure images on (``"png"`` or ``"svg"``) or off (None), overriding the environment."""
    if fmt is not None and fmt not in STATIC_FORMATS:
        raise ValueError(f"fmt must be one of {STATIC_FORMATS} or None, got {fmt!r}")
    _static_override[:] = [fmt]
