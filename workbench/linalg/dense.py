"""Dense symmetric linear algebra for kernels: checked eigendecomposition, top-k by Lanczos, diagnostics.

Every function takes a concrete symmetric matrix (numpy or JAX) and checks it: square, finite and
symmetric to a relative tolerance, else a ``ValueError`` saying what is wrong. Eigenvalues are
returned in descending order (the order spectra are plotted in).

* :func:`eigh`: all eigenpairs (LAPACK through numpy), descending.
* :func:`top_eigenpairs`: the largest k by implicitly restarted Lanczos (ARPACK,
  ``scipy.sparse.linalg.eigsh`` on a ``LinearOperator``): O(n^2) per iteration instead of O(n^3).
* :func:`condition_number`, :func:`effective_rank`, :func:`kernel_target_alignment`,
  :func:`check_psd`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse.linalg

from workbench.validation import check_choice, check_finite, check_positive_int, check_square_symmetric

#: symmetric to this relative tolerance (max |K - K^T| / max |K|): float32 kernels are symmetric to ~1e-6
SYMMETRY_RTOL = 1e-5


def _matrix(name: str, k: Any, rtol: float) -> np.ndarray:
    arr = np.asarray(k)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real matrix, got dtype {arr.dtype}")
    return check_square_symmetric(name, arr.astype(np.result_type(arr.dtype, np.float32)), rtol=rtol)


def eigh(k: Any, *, rtol: float = SYMMETRY_RTOL) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (columns) of the symmetric matrix ``k``.

    ``k`` is symmetrized as (k + k^T)/2 after the check (removing round-off asymmetry).
    """
    arr = _matrix("k", k, rtol)
    vals, vecs = np.linalg.eigh(0.5 * (arr + arr.T))
    return vals[::-1], vecs[:, ::-1]


def eigvalsh(k: Any, *, rtol: float = SYMMETRY_RTOL) -> np.ndarray:
    """Eigenvalues of the symmetric matrix ``k``, descending."""
    arr = _matrix("k", k, rtol)
    return np.linalg.eigvalsh(0.5 * (arr + arr.T))[::-1]


def top_eigenpairs(k: Any, num: int, *, tol: float = 0.0, rtol: float = SYMMETRY_RTOL,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The ``num`` largest eigenvalues (descending) and eigenvectors of symmetric ``k`` by Lanczos.

    ARPACK's implicitly restarted Lanczos (``eigsh(which="LA")``) on a ``LinearOperator`` doing
    x -> K x; ``tol=0`` means machine precision. The start vector is drawn from ``seed`` so that
    results are reproducible. For ``num >= n - 1`` the dense :func:`eigh` is used.
    """
    arr = _matrix("k", k, rtol)
    n = arr.shape[0]
    num = check_positive_int("num", num)
    if num > n:
        raise ValueError(f"num must be <= the matrix size {n}, got {num}")
    if num >= n - 1:
        vals, vecs = eigh(arr, rtol=rtol)
        return vals[:num], vecs[:, :num]
    op = scipy.sparse.linalg.LinearOperator((n, n), matvec=lambda v: arr @ v, dtype=arr.dtype)
    v0 = np.random.default_rng(seed).standard_normal(n).astype(arr.dtype)
    vals, vecs = scipy.sparse.linalg.eigsh(op, k=num, which="LA", tol=tol, v0=v0)
    order = np.argsort(vals)[::-1]
    return vals[order], vecs[:, order]


def check_psd(k: Any, *, rtol: float = 1e-8, name: str = "k") -> np.ndarray:
    """Eigenvalues (descending) of ``k``, or a ``ValueError`` if one is below -rtol * lambda_max."""
    vals = eigvalsh(k)
    scale = max(float(np.max(np.abs(vals))), np.finfo(float).tiny)
    if vals[-1] < -rtol * scale:
        raise ValueError(f"{name} is not positive semi-definite: smallest eigenvalue {vals[-1]:.3g} < "
                         f"-{rtol:g} * max |lambda| = {-rtol * scale:.3g}")
    return vals


def condition_number(k: Any) -> float:
    """lambda_max / lambda_min of a PSD matrix (inf when lambda_min <= 0)."""
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
