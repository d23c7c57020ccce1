"""Deprecated aliases: an old public name keeps working for one release and says where its new home is."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["deprecated_alias", "warn_deprecated"]


def warn_deprecated(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Emit the workbench's one DeprecationWarning text: ``old`` is deprecated, use ``new``."""
    warnings.warn(f"{old} is deprecated and will be removed in the next release; use {new}",
                  DeprecationWarning, stacklevel=stacklevel)


def deprecated_alias(func: Callable[..., Any], old: str, new: str) -> Callable[..., Any]:
    """``func`` under its old name ``old``: same arguments and results, plus a DeprecationWarning naming ``new``."""
    @functools.wraps(func)
    def alias(*args: Any, **kwargs: Any) -> Any:
        warn_deprecated(old, new)
        return func(*args, **kwargs)

    alias.__doc__ = f"Deprecated alias of :func:`{new}` (this name goes in the next release).\n\n" + (func.__doc__ or "")
    alias.__deprecated__ = new  # type: ignore[attr-defined]
    return alias
