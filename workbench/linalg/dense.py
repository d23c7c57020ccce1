"""Dense symmetric linear algebra for kernels: checked eigendecomposition, top-k by Lanczos, diagnostics.

Every function takes a concrete symmetric matrix (numpy or JAX) and checks it: square, finite and
symmetric to a relative tolerance, else a ``ValueError`` saying what is wrong. Eigenvalues are
returned in descending order (the order spectra are plotted in).

* :func:`eigenpairs`: all eigenpairs (LAPACK through numpy), or the largest k by implicitly restarted Lanczos
  (ARPACK, ``scipy.sparse.linalg.eigsh`` on a ``LinearOperator``: O(n^2) per iteration instead of O(n^3)),
  descending, as the one :class:`Eigenpairs` type (eigenvectors as rows); ``psd=True`` checks and clips.
  (``eigh`` and ``top_eigenpairs``, with column eigenvectors, are deprecated aliases.)
* :func:`condition_number`, :func:`effective_rank`, :func:`kernel_target_alignment`,
  :func:`check_psd`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse.linalg

from workbench._compat import warn_deprecated
from workbench.linalg.krylov import Eigenpairs
from workbench.validation import check_choice, check_finite, check_positive_int, check_square_symmetric

__all__ = ["SYMMETRY_RTOL", "check_psd", "condition_number", "effective_rank", "eigh", "eigvalsh",
           "kernel_target_alignment", "top_eigenpairs", "Eigenpairs", "eigenpairs"]

#: symmetric to this relative tolerance (max |K - K^T| / max |K|): float32 kernels are symmetric to ~1e-6
SYMMETRY_RTOL = 1e-5


def _matrix(name: str, k: Any, rtol: float) -> np.ndarray:
    arr = np.asarray(k)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real matrix, got dtype {arr.dtype}")
    return check_square_symmetric(name, arr.astype(np.result_type(arr.dtype, np.float32)), rtol=rtol)


def _eigh(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LAPACK eigenpairs of the symmetrized checked matrix, descending, eigenvectors as columns."""
    with np.errstate(all="ignore"):
        vals, vecs = np.linalg.eigh(0.5 * (arr + arr.T))
    return vals[::-1], vecs[:, ::-1]


def eigenpairs(k: Any, num: int | None = None, *, psd: bool = False, psd_rtol: float = 1e-8, tol: float = 0.0,
               rtol: float = SYMMETRY_RTOL, seed: int = 0, name: str = "k") -> Eigenpairs:
    """Eigenpairs of the symmetric matrix ``k`` as the workbench's one :class:`Eigenpairs` type
    (docs/conventions.md): ``eigenvalues`` (m,) descending and ``eigenvectors`` (m, n) as unit ROWS
    (``eigenvectors[i]`` belongs to ``eigenvalues[i]``, the orientation of :func:`workbench.linalg.krylov.top_eigenvalues`),
    ``residuals`` |K v - lambda v|, ``num_matvecs`` 0 (a dense solver), ``converged`` True.

    ``num=None``: all pairs by LAPACK on (k + k^T)/2. ``num`` < n - 1: the largest ``num`` by implicitly restarted
    Lanczos (ARPACK ``eigsh(which="LA")`` on x -> K x, ``tol=0`` meaning machine precision, start vector drawn
    from ``seed``); otherwise LAPACK. ``psd=True`` (all pairs only): the matrix must be positive semi-definite
    (smallest eigenvalue >= -max(psd_rtol, 100 n eps) max |lambda|, else a ValueError) and eigenvalues are
    clipped at 0.
    """
    arr = _matrix(name, k, rtol)
    n = arr.shape[0]
    if num is not None:
        num = check_positive_int("num", num)
        if num > n:
            raise ValueError(f"num must be <= the matrix size {n}, got {num}")
        if psd:
            raise ValueError("psd=True needs the whole spectrum (num=None): the smallest eigenvalue decides")
    if num is None or num >= n - 1:
        vals, vecs = _eigh(arr)
        if num is not None:
            vals, vecs = vals[:num], vecs[:, :num]
    else:
        op = scipy.sparse.linalg.LinearOperator((n, n), matvec=lambda v: arr @ v, dtype=arr.dtype)
        v0 = np.random.default_rng(seed).standard_normal(n).astype(arr.dtype)
        vals, vecs = scipy.sparse.linalg.eigsh(op, k=num, which="LA", tol=tol, v0=v0)
        order = np.argsort(vals)[::-1]
        vals, vecs = vals[order], vecs[:, order]
    if psd:
        _check_psd_spectrum(name, vals, psd_rtol)
        vals = np.clip(vals, 0.0, None)
    with np.errstate(all="ignore"):
        residuals = np.linalg.norm(arr @ vecs - vecs * vals, axis=0)
    return Eigenpairs(vals, vecs.T, residuals, 0, True)


def eigh(k: Any, *, rtol: float = SYMMETRY_RTOL) -> tuple[np.ndarray, np.ndarray]:
    """Deprecated: :func:`eigenpairs` (the one eigenpair type, eigenvectors as rows). Eigenvalues (descending)
    and eigenvectors (columns) of the symmetric matrix ``k`` symmetrized as (k + k^T)/2 after the check."""
    warn_deprecated("workbench.linalg.dense.eigh", "workbench.linalg.dense.eigenpairs (eigenvectors as rows)")
    return _eigh(_matrix("k", k, rtol))


def eigvalsh(k: Any, *, rtol: float = SYMMETRY_RTOL) -> np.ndarray:
    """Eigenvalues of the symmetric matrix ``k``, descending."""
    arr = _matrix("k", k, rtol)
    return np.linalg.eigvalsh(0.5 * (arr + arr.T))[::-1]


def top_eigenpairs(k: Any, num: int, *, tol: float = 0.0, rtol: float = SYMMETRY_RTOL,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deprecated: :func:`eigenpairs` with ``num`` (eigenvectors as rows). The ``num`` largest eigenvalues
    (descending) and eigenvectors (columns) of symmetric ``k`` by Lanczos (ARPACK)."""
    warn_deprecated("workbench.linalg.dense.top_eigenpairs", "workbench.linalg.dense.eigenpairs(k, num)")
    res = eigenpairs(k, num, tol=tol, rtol=rtol, seed=seed)
    return res.eigenvalues, res.eigenvectors.T


def _check_psd_spectrum(name: str, vals: np.ndarray, rtol: float) -> None:
    """The one PSD test: the smallest eigenvalue must not be below -max(rtol, 100 n eps) * max |lambda|
    (the second term is the round-off of a dense eigensolver on an n x n matrix)."""
    scale = max(float(np.max(np.abs(vals))), np.finfo(float).tiny)
    tol = max(rtol, 100 * vals.size * np.finfo(vals.dtype).eps) * scale
    if vals[-1] < -tol:
        raise ValueError(f"{name} is not positive semi-definite: smallest eigenvalue {vals[-1]:.3g} < "
                         f"-{tol:.3g} (largest {vals[0]:.3g}); a kernel or curvature matrix must be PSD")


def check_psd(k: Any, *, rtol: float = 1e-8, name: str = "k") -> np.ndarray:
    """Eigenvalues (descending) of ``k``, or a ``ValueError`` if one is below -max(rtol, 100 n eps) * max |lambda|."""
    vals = eigvalsh(k)
    _check_psd_spectrum(name, vals, rtol)
    return vals


def condition_number(k: Any) -> float:
    """lambda_max / lambda_min of a PSD matrix (inf when lambda_min <= 0)."""
    if np.size(k) == 0:
        raise ValueError(f"k must be a non-empty square matrix, got shape {np.shape(k)}")
    vals = check_psd(k)
    return float(vals[0] / vals[-1]) if vals[-1] > 0 else float("inf")


def effective_rank(k: Any, *, kind: str = "entropy") -> float:
    """Effective rank of a PSD matrix from its eigenvalues p_i = lambda_i / sum lambda.

    ``"entropy"``: exp(-sum p_i log p_i) (Roy & Vetterli 2007); ``"participation"``:
    (sum lambda)^2 / sum lambda^2. Both are n for a multiple of the identity and 1 for rank one.
    """
    check_choice("kind", kind, ("entropy", "participation"))
    vals = np.clip(check_psd(k), 0.0, None)
    total = float(np.sum(vals))
    if total <= 0:
        raise ValueError("k is zero: its effective rank is undefined")
    if kind == "participation":
        return float(total**2 / np.sum(vals**2))
    p = vals[vals > 0] / total
    return float(np.exp(-np.sum(p * np.log(p))))


def kernel_target_alignment(k: Any, y: Any) -> float:
    """A(K, y) = <K, y y^T>_F / (||K||_F ||y y^T||_F) (Cristianini et al. 2002), in [-1, 1].

    ``y`` has shape (n,) or (n, c); for several targets y y^T sums over them.
    """
    arr = _matrix("k", k, SYMMETRY_RTOL)
    y = np.asarray(y, float)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != arr.shape[0]:
        raise ValueError(f"y must have shape ({arr.shape[0]},) or ({arr.shape[0]}, c), got {y.shape}")
    check_finite("y", y)
    yy = y @ y.T
    denom = np.linalg.norm(arr) * np.linalg.norm(yy)
    if denom == 0:
        raise ValueError("kernel_target_alignment is undefined for a zero kernel or zero targets")
    return float(np.sum(arr * yy) / denom)
