"""Dense symmetric linear algebra: eigenpairs against constructed spectra, Lanczos vs dense, diagnostics."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.linalg.dense import (
    check_psd,
    condition_number,
    effective_rank,
    eigenpairs,
    eigh,
    kernel_target_alignment,
    top_eigenpairs,
)


def _with_spectrum(vals, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(vals), len(vals))))
    return (q * vals) @ q.T, q


def test_eigh_recovers_constructed_spectrum():
    vals = np.array([5.0, 3.0, 2.0, 0.5, 0.1])
    k, q = _with_spectrum(vals)
    pairs = eigenpairs(k)
    ev, vec = pairs.eigenvalues, pairs.eigenvectors.T  # rows -> columns, to compare with q's columns
    np.testing.assert_allclose(ev, vals, rtol=1e-12)  # LAPACK backward error ~ n eps ||K||
    np.testing.assert_allclose(np.abs(np.sum(vec * q, axis=0)), 1.0, rtol=1e-10)
    assert pairs.converged and np.all(pairs.residuals < 1e-12 * vals[0])  # |K v - lambda v|, same backward error
    with pytest.deprecated_call():  # the old name: same numbers, eigenvectors as columns
        old_ev, old_vec = eigh(k)
    np.testing.assert_array_equal(old_ev, ev)
    np.testing.assert_array_equal(old_vec, vec)


def test_top_eigenpairs_lanczos_matches_dense():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((200, 60))
    k = a @ a.T
    top = eigenpairs(k, 6)
    ev, vec = top.eigenvalues, top.eigenvectors.T
    dense = eigenpairs(k)
    dense_ev, dense_vec = dense.eigenvalues, dense.eigenvectors.T
    np.testing.assert_allclose(ev, dense_ev[:6], rtol=1e-10)  # ARPACK with tol=0 converges to machine precision
    np.testing.assert_allclose(np.abs(np.sum(vec * dense_vec[:, :6], axis=0)), 1.0, rtol=1e-8)
    np.testing.assert_allclose(k @ vec, vec * ev, atol=1e-9 * ev[0])


def test_diagnostics():
    n = 6
    assert effective_rank(np.eye(n)) == pytest.approx(n, rel=1e-12)
    assert effective_rank(np.eye(n), kind="participation") == pytest.approx(n, rel=1e-12)
    y = np.arange(1.0, n + 1)
    assert effective_rank(np.outer(y, y)) == pytest.approx(1.0, rel=1e-9)
    assert kernel_target_alignment(np.outer(y, y), y) == pytest.approx(1.0, rel=1e-12)
    # alignment of the identity with y: y.y / (sqrt(n) |y|^2) = 1/sqrt(n)
    assert kernel_target_alignment(np.eye(n), y) == pytest.approx(1 / np.sqrt(n), rel=1e-12)
    k, _ = _with_spectrum(np.array([8.0, 4.0, 2.0, 1.0]))
    assert condition_number(k) == pytest.approx(8.0, rel=1e-10)
    # entropy effective rank of eigenvalues (1/2, 1/4, 1/8, 1/8) / ... : exp(H)
    p = np.array([8, 4, 2, 1]) / 15
    assert effective_rank(k) == pytest.approx(np.exp(-np.sum(p * np.log(p))), rel=1e-10)


def test_bad_inputs():
    with pytest.raises(ValueError, match="not symmetric"):
        eigenpairs(np.array([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="non-finite"):
        eigenpairs(np.array([[1.0, np.nan], [np.nan, 1.0]]))
    with pytest.raises(ValueError, match="square"):
        eigenpairs(np.ones((2, 3)))
    with pytest.raises(ValueError, match="not positive semi-definite"):
        eigenpairs(np.diag([1.0, -0.5]), psd=True)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        check_psd(np.diag([1.0, -0.5]))
    with pytest.raises(ValueError, match="num must be <="):
        eigenpairs(np.eye(3), 4)
    with pytest.deprecated_call(), pytest.raises(ValueError, match="num must be <="):
        top_eigenpairs(np.eye(3), 4)
    with pytest.raises(ValueError, match=r"y must have shape \(3,\)"):
        kernel_target_alignment(np.eye(3), np.ones(4))
    with pytest.raises(ValueError, match="kind must be one of"):
        effective_rank(np.eye(3), kind="stable")
