"""Reproductions of papers' headline claims, each with measured numbers, derived tolerances and a verdict.

    from workbench import papers
    papers.names()                                    # the registered entries
    r = papers.reproduce("yang_hu_2021_mup", fast=True)
    r.passed, r.checks, r.summary()                   # verdict, measured vs predicted, tolerances and why
    papers.reproduce("yang_hu_2021_mup", fast=True, predicted={"ntk_drift_slope": 0.0}).passed  # False

One module per entry (``workbench.papers.<name>``) defines ``REFERENCE``, ``CLAIM`` and
``run(*, fast, key) -> Reproduction``; :data:`REGISTRY` maps names to modules and :func:`register` adds
entries (the second papers issue adds its own). Figures: :mod:`workbench.plots.papers`; command line:
``workbench reproduce NAME [--fast] [--out r.html]`` and ``workbench reproduce --all [--fast]``.

Caching: with ``cache`` (a folder; default the environment variable ``WORKBENCH_PAPERS_CACHE``, unset: no
cache) a result is stored under a key made of the entry, ``fast``, ``key``, the float width, the JAX version
and a hash of every source file of the ``workbench`` package, so a cached result is exactly what the current
code computes (any code change invalidates it). Notebooks and tests share fast-mode results this way.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import pickle
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workbench import config
from workbench.papers.base import SIGMAS, Check, Reproduction, slope_with_stderr

#: registry name -> module defining ``REFERENCE``, ``CLAIM`` and ``run(*, fast, key)``
REGISTRY: dict[str, str] = {
    "jacot_2018_ntk": "workbench.papers.jacot_2018_ntk",
    "advani_saxe_2017": "workbench.papers.advani_saxe_2017",
    "roberts_yaida_kurtosis": "workbench.papers.roberts_yaida_kurtosis",
    "yang_hu_2021_mup": "workbench.papers.yang_hu_2021_mup",
    "roberts_yaida_finite_width": "workbench.papers.roberts_yaida_finite_width",
    "wu_su_2023_stability": "workbench.papers.wu_su_2023_stability",
    "granziol_2022_lr_batch": "workbench.papers.granziol_2022_lr_batch",
    "step_law_2025": "workbench.papers.step_law_2025",
    "yang_2019_tensor_programs_1": "workbench.papers.yang_2019_tensor_programs_1",
    "favero_2021_locality": "workbench.papers.favero_2021_locality",
    "giapitzakis_2025_permutations": "workbench.papers.giapitzakis_2025_permutations",
    "scale_mixtures_nngp": "workbench.papers.scale_mixtures_nngp",
    "simon_2023_more_is_better": "workbench.papers.simon_2023_more_is_better",
    "mok_2022_lga": "workbench.papers.mok_2022_lga",
    "li_2018_intrinsic_dimension": "workbench.papers.li_2018_intrinsic_dimension",
    "rosenfeld_2023_opposing_signals": "workbench.papers.rosenfeld_2023_opposing_signals",
}

CACHE_ENV = "WORKBENCH_PAPERS_CACHE"


def names() -> list[str]:
    """The registered entries, in registry order."""
    return list(REGISTRY)


def register(name: str, module: str) -> None:
    """Add an entry: ``module`` (an importable dotted path) defines ``REFERENCE``, ``CLAIM`` and ``run``."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be a Python identifier, got {name!r}")
    if not isinstance(module, str) or not module:
        raise TypeError(f"module must be a dotted module path, got {module!r}")
    REGISTRY[name] = module


def load(name: str):
    """The module of entry ``name``; a ValueError listing the entries for an unknown name."""
    if name not in REGISTRY:
        raise ValueError(f"unknown paper {name!r}; choose one of {', '.join(REGISTRY)}")
    return importlib.import_module(REGISTRY[name])


def _source_hash() -> str:
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _cache_path(folder: Path, name: str, fast: bool, key: int) -> Path:
    import jax
    import numpy
    import optax
    import scipy

    versions = f"jax{jax.__version__}-np{numpy.__version__}-sp{scipy.__version__}-optax{optax.__version__}"
    tag = f"{name}-{'fast' if fast else 'full'}-k{key}-{config.get_precision()}-{versions}-{_source_hash()}"
    return folder / f"{tag}.pkl"


def reproduce(name: str, *, fast: bool = False, key: int | None = None,
              predicted: Mapping[str, float] | None = None, cache: str | os.PathLike[str] | None = None
              ) -> Reproduction:
    """Run entry ``name`` and return its :class:`Reproduction`.

    Args:
      name: one of :func:`names`.
      fast: the small sizes (seconds, for tests and notebooks in fast mode); the checks stay meaningful and
        their tolerances follow the smaller samples.
      key: integer seed (default 0).
      predicted: other predicted values by check name (to see a wrong prediction fail).
      cache: a folder for cached results (default: ``$WORKBENCH_PAPERS_CACHE``; unset: no cache).
    """
    module = load(name)
    if not isinstance(fast, bool):
        raise TypeError(f"fast must be True or False, got {fast!r}")
    key = 0 if key is None else key
    if isinstance(key, bool) or not isinstance(key, int) or key < 0:
        raise ValueError(f"key must be a non-negative integer seed, got {key!r}")
    if predicted is not None and not isinstance(predicted, Mapping):
        raise TypeError(f"predicted must be a mapping from check names to numbers, got {type(predicted).__name__}")
    folder = cache if cache is not None else os.environ.get(CACHE_ENV) or None
    result = None
    path = None
    if folder:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = _cache_path(folder, name, fast, key)
        if path.exists():
            try:
                with open(path, "rb") as fh:
                    result = pickle.load(fh)
            except Exception:  # a damaged cache file is recomputed, never trusted
                result = None
    if result is None:
        start = time.perf_counter()
        result = module.run(fast=fast, key=key)
        result.elapsed_s = time.perf_counter() - start
        if path is not None:
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(result, fh)
            os.replace(tmp, path)
    if predicted:
        result = result.with_predictions({k: float(v) for k, v in predicted.items()})
    return result


def verdict_table(results: list[Reproduction]) -> str:
    """A plain-text table: entry, verdict, checks passed, seconds, device and precision."""
    rows = [("entry", "verdict", "checks", "seconds", "device, precision")]
    for r in results:
        v = r.verdict_checks
        rows.append((r.name, "passed" if r.passed else "FAILED", f"{sum(c.passed for c in v)}/{len(v)}",
                     f"{r.elapsed_s:.1f}" if r.elapsed_s is not None else "-",
                     f"{r.device.split(',')[0]}, {r.precision}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


__all__ = ["CACHE_ENV", "REGISTRY", "SIGMAS", "Check", "Reproduction", "load", "names", "register", "reproduce",
           "slope_with_stderr", "verdict_table"]
