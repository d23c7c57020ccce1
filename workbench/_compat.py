"""Deprecated aliases: an old public name keeps working for one release and says where its new home is."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["deprecated_alias", "is_prng_key", "keyword_only_since", "warn_deprecated"]


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


def keyword_only_since(*names: str, legacy_order: Callable[[tuple], tuple | None] | None = None
                       ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator for a function whose trailing positional arguments ``names`` became keyword-only: a call that
    still passes them positionally works for one release, with a DeprecationWarning (docs/conventions.md).

    ``legacy_order(args)``: for a function whose arguments were also reordered, maps an old-style positional
    tuple to ``(new positional args, keywords)``, or returns None when ``args`` is a new-style call.
    """
    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        import inspect

        params = inspect.signature(func).parameters.values()
        num_positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)

        @functools.wraps(func)
        def call(*args: Any, **kwargs: Any) -> Any:
            if legacy_order is not None:
                mapped = legacy_order(args)
                if mapped is not None:
                    args, extra = mapped
                    warn_deprecated(f"{func.__name__} with {', '.join(extra)} positional",
                                    f"{func.__name__}(..., {', '.join(f'{k}=...' for k in extra)})")
                    return func(*args, **{**extra, **kwargs})
            if len(args) > num_positional:
                extra = args[num_positional:]
                if len(extra) > len(names):
                    raise TypeError(f"{func.__name__}() takes {num_positional} positional arguments "
                                    f"(then keywords {', '.join(names)}), got {len(args)}")
                given = dict(zip(names, extra))
                clash = sorted(set(given) & set(kwargs))
                if clash:
                    raise TypeError(f"{func.__name__}() got {clash} both positionally and as keywords")
                warn_deprecated(f"{func.__name__} with {', '.join(given)} positional",
                                f"{func.__name__}(..., {', '.join(f'{k}=...' for k in given)})")
                return func(*args[:num_positional], **given, **kwargs)
            return func(*args, **kwargs)

        return call

    return wrap


def is_prng_key(x: Any) -> bool:
    """True for a JAX PRNG key: a typed key array, or a raw uint32 key of shape (2,)."""
    import jax
    import numpy as np

    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return False
    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return True
    return np.dtype(dtype) == np.uint32 and tuple(getattr(x, "shape", ())) == (2,)
